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
