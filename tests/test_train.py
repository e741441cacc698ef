"""The shared training loop: it learns, trains only what requires grad, and resumes exactly."""

from pathlib import Path

import pytest
import torch
from torch import nn

from recflow.train import TrainConfig, count_parameters, train


def _regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return x, x @ w + 0.01 * torch.randn(256, 1, generator=g)


def _setup(seed: int = 0) -> tuple[nn.Module, object, object]:
    x, y = _regression_data()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.1), nn.Linear(8, 1))

    def batches(epoch: int, gen: torch.Generator):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 32):
            idx = perm[i : i + 32]
            yield x[idx], y[idx]

    def loss_fn(m: nn.Module, batch) -> torch.Tensor:
        xb, yb = batch
        return nn.functional.mse_loss(m(xb), yb)

    return model, loss_fn, batches


def test_loss_decreases_and_history_is_recorded() -> None:
    model, loss_fn, batches = _setup()
    res = train(model, loss_fn, batches, TrainConfig(epochs=8, lr=1e-2, device="cpu"))
    losses = [r["loss"] for r in res.history]
    assert len(losses) == 8
    assert losses[-1] < 0.2 * losses[0]
    assert res.samples == 8 * 256


def test_only_parameters_that_require_grad_change() -> None:
    model, loss_fn, batches = _setup()
    for p in model[0].parameters():
        p.requires_grad_(False)
    frozen = {k: v.clone() for k, v in model[0].state_dict().items()}
    before_head = model[2].weight.detach().clone()
    res = train(model, loss_fn, batches, TrainConfig(epochs=1, lr=1e-2, device="cpu"))
    for k, v in model[0].state_dict().items():
        assert torch.equal(v, frozen[k])
    assert not torch.equal(model[2].weight, before_head)
    assert (res.trained_params, res.total_params) == (9, 49)
    assert count_parameters(model) == (9, 49)


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path: Path) -> None:
    model_a, loss_fn, batches = _setup()
    train(model_a, loss_fn, batches, TrainConfig(epochs=4, lr=1e-2, device="cpu"))

    ckpt = tmp_path / "ckpt"
    model_b, loss_fn, batches = _setup()
    train(
        model_b, loss_fn, batches, TrainConfig(epochs=2, lr=1e-2, device="cpu"), checkpoint_dir=ckpt
    )
    # A new process would rebuild the model from scratch and find the checkpoint.
    model_c, loss_fn, batches = _setup(seed=123)
    res = train(
        model_c, loss_fn, batches, TrainConfig(epochs=4, lr=1e-2, device="cpu"), checkpoint_dir=ckpt
    )
    assert res.resumed_from_epoch == 2
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]
    for pa, pc in zip(model_a.parameters(), model_c.parameters(), strict=True):
        torch.testing.assert_close(pa, pc)


def test_nothing_to_train_is_an_error() -> None:
    model, loss_fn, batches = _setup()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        train(model, loss_fn, batches, TrainConfig(epochs=1, device="cpu"))


def _scripted(values: list[float], start: int = 0):
    """An ``evaluate`` that reports ``values[epoch - 1]`` as "valid_auc" (epochs from start+1)."""
    calls = [start]

    def evaluate(m: nn.Module) -> dict[str, float]:
        calls[0] += 1
        return {"valid_auc": values[calls[0] - 1]}

    return evaluate


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_select_by_restores_the_best_epochs_weights() -> None:
    """Validation peaks at epoch 2 of 4: the model handed back equals a 2-epoch run's."""
    model_2, loss_fn, batches = _setup()
    train(model_2, loss_fn, batches, TrainConfig(epochs=2, lr=1e-2, device="cpu"))

    model, loss_fn, batches = _setup()
    cfg = TrainConfig(epochs=4, lr=1e-2, device="cpu", select_by="valid_auc")
    res = train(model, loss_fn, batches, cfg, evaluate=_scripted([0.6, 0.8, 0.7, 0.75]))
    assert (res.best_epoch, res.best_value) == (2, 0.8)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]  # no patience: all epochs ran
    assert not res.stopped_early
    for a, b in zip(_weights(model), _weights(model_2), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_select_mode_min_and_nan_never_wins() -> None:
    model, loss_fn, batches = _setup()
    cfg = TrainConfig(epochs=3, lr=1e-2, device="cpu", select_by="valid_auc", select_mode="min")
    res = train(model, loss_fn, batches, cfg, evaluate=_scripted([0.5, float("nan"), 0.4]))
    assert (res.best_epoch, res.best_value) == (3, 0.4)


def test_patience_stops_after_epochs_without_gain() -> None:
    model, loss_fn, batches = _setup()
    cfg = TrainConfig(epochs=10, lr=1e-2, device="cpu", select_by="valid_auc", patience=2)
    res = train(model, loss_fn, batches, cfg, evaluate=_scripted([0.6, 0.8, 0.7, 0.79, 0.9]))
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]  # epoch 5 never ran
    assert res.stopped_early and res.best_epoch == 2


def test_resume_keeps_the_best_epoch_across_processes(tmp_path: Path) -> None:
    """Interrupted after epoch 3 (best = 2), resumed to 5: same best weights as one run."""
    values = [0.6, 0.8, 0.7, 0.75, 0.65]
    cfg = TrainConfig(epochs=5, lr=1e-2, device="cpu", select_by="valid_auc")
    model_a, loss_fn, batches = _setup()
    full = train(model_a, loss_fn, batches, cfg, evaluate=_scripted(values))

    ckpt = tmp_path / "ckpt"
    model_b, loss_fn, batches = _setup()
    cfg_3 = TrainConfig(epochs=3, lr=1e-2, device="cpu", select_by="valid_auc")
    train(model_b, loss_fn, batches, cfg_3, evaluate=_scripted(values), checkpoint_dir=ckpt)
    assert (ckpt / "epoch-000003" / "best_model.pt").exists()
    model_c, loss_fn, batches = _setup(seed=123)
    res = train(
        model_c, loss_fn, batches, cfg, evaluate=_scripted(values, start=3), checkpoint_dir=ckpt
    )
    assert res.resumed_from_epoch == 3
    assert (res.best_epoch, full.best_epoch) == (2, 2)
    for a, c in zip(_weights(model_a), _weights(model_c), strict=True):
        torch.testing.assert_close(a, c)


def test_selection_settings_are_checked() -> None:
    model, loss_fn, batches = _setup()
    with pytest.raises(ValueError, match="needs an evaluate"):
        train(model, loss_fn, batches, TrainConfig(epochs=1, device="cpu", select_by="x"))
    with pytest.raises(KeyError, match="valid_gauc"):
        train(
            model,
            loss_fn,
            batches,
            TrainConfig(epochs=1, device="cpu", select_by="valid_gauc"),
            evaluate=_scripted([0.5]),
        )
    with pytest.raises(ValueError, match="patience needs select_by"):
        TrainConfig(patience=2)
    with pytest.raises(ValueError, match="select_mode"):
        TrainConfig(select_mode="best")


def test_a_checkpoint_epoch_another_run_wrote_first_is_kept(tmp_path: Path) -> None:
    """Two runs on one checkpoint folder (same data and config) both write epoch 2: the
    second rename finds the folder there and keeps it instead of failing the run."""
    ckpt = tmp_path / "ckpt"
    model, loss_fn, batches = _setup()

    def other_run_writes_epoch_2(step: int, total: int, values: dict[str, float]) -> None:
        if step == 1:
            (ckpt / "epoch-000002").mkdir()
            (ckpt / "epoch-000002" / "meta.json").write_text('{"epoch": 2, "by": "other"}')

    cfg = TrainConfig(epochs=3, lr=1e-2, device="cpu", log_every=10_000)
    res = train(
        model, loss_fn, batches, cfg, checkpoint_dir=ckpt, on_progress=other_run_writes_epoch_2
    )
    assert [r["epoch"] for r in res.history] == [1, 2, 3]
    assert "other" in (ckpt / "epoch-000002" / "meta.json").read_text()
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-000002", "epoch-000003"]
