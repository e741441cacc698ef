"""How attribute tasks are fine-tuned: mean readout, item dropout, steps per epoch and
log-loss selection (``FinetuneSettings``), each checked by hand or by a property."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from recflow.seq.comparison import run_method
from recflow.seq.finetune import (
    FinetuneSettings,
    LabelledSequences,
    Method,
    Readout,
    SequenceClassifier,
    classification_batches,
    drop_items,
    passes_per_epoch,
    prepare_finetune,
)
from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.sequences import CLS, FIRST_ITEM_TOKEN, PAD
from recflow.seq.tasks import ATTRIBUTE_FINETUNE, AttributeTask, mean_log_loss
from recflow.train import TrainConfig

N_TOKENS = 30


def _pretrained() -> NextItNet:
    torch.manual_seed(0)
    return NextItNet(NextItNetConfig(n_tokens=N_TOKENS, channels=8, dilations=(1, 2), n_stacks=1))


def _windows(n: int, width: int, seed: int) -> np.ndarray:
    """Random left-padded item windows ending in CLS, 1..width-1 items each."""
    rng = np.random.default_rng(seed)
    tokens = np.full((n, width), PAD, dtype=np.int64)
    for r in range(n):
        k = int(rng.integers(1, width))
        tokens[r, width - 1 - k : width - 1] = rng.integers(FIRST_ITEM_TOKEN, N_TOKENS, k)
    tokens[:, -1] = CLS
    return tokens


# ---- steps per epoch ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "batch", "min_steps", "passes"),
    [
        (660, 128, 0, 1),  # 6 batches a pass; no minimum
        (660, 128, 16, 3),  # ⌈16 / 6⌉ = 3 passes = 18 steps
        (660, 128, 6, 1),  # one pass already has 6
        (10, 128, 16, 16),  # 1 batch a pass
        (7_600, 128, 16, 1),  # a cold-start-sized task: 60 batches, unchanged
        (0, 128, 16, 1),
    ],
)
def test_passes_per_epoch_by_hand(n: int, batch: int, min_steps: int, passes: int) -> None:
    assert passes_per_epoch(n, batch, min_steps) == passes


@pytest.mark.parametrize(("n", "batch", "min_steps"), [(13, 4, 10), (13, 4, 0), (5, 8, 3)])
def test_an_epoch_cycles_the_data_in_whole_shuffled_passes(
    n: int, batch: int, min_steps: int
) -> None:
    tokens = np.arange(n * 2, dtype=np.int64).reshape(n, 2) + FIRST_ITEM_TOKEN
    data = LabelledSequences(tokens, np.arange(n, dtype=np.int64))
    batches = classification_batches(data, batch, min_steps)
    got = list(batches(1, torch.Generator().manual_seed(3)))
    per_pass = math.ceil(n / batch)
    passes = passes_per_epoch(n, batch, min_steps)
    assert len(got) == per_pass * passes >= min_steps
    labels = torch.cat([y for _, y in got]).numpy()
    for p in range(passes):  # every pass is one permutation of the examples
        assert sorted(labels[p * n : (p + 1) * n].tolist()) == list(range(n))
    for x, y in got:  # tokens travel with their labels
        assert torch.equal(x[:, 0], y * 2 + FIRST_ITEM_TOKEN)
    again = list(batches(1, torch.Generator().manual_seed(3)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(got, again, strict=True))


# ---- item dropout --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.9])
def test_drop_items_only_turns_items_into_pad_at_about_the_rate(rate: float) -> None:
    tokens = _windows(400, 20, seed=1)
    out = drop_items(tokens, rate, np.random.default_rng(0))
    assert out.shape == tokens.shape and out is not tokens
    items = tokens >= FIRST_ITEM_TOKEN
    # PAD and CLS never change; an item either stays itself or becomes PAD
    assert np.array_equal(out[~items], tokens[~items])
    assert np.all((out[items] == tokens[items]) | (out[items] == PAD))
    dropped = int((out[items] == PAD).sum())
    n = int(items.sum())
    # binomial(n, rate): within 5 standard deviations
    assert abs(dropped - rate * n) <= 5 * math.sqrt(n * rate * (1 - rate)) + 1e-9
    same = drop_items(tokens, rate, np.random.default_rng(0))
    assert np.array_equal(out, same)


def test_item_dropout_in_batches_is_seeded_and_leaves_the_data_alone() -> None:
    tokens = _windows(40, 12, seed=2)
    data = LabelledSequences(tokens.copy(), np.zeros(40, dtype=np.int64))
    batches = classification_batches(data, 16, item_dropout=0.5)
    a = [x for x, _ in batches(1, torch.Generator().manual_seed(5))]
    b = [x for x, _ in batches(1, torch.Generator().manual_seed(5))]
    c = [x for x, _ in batches(2, torch.Generator().manual_seed(6))]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert np.array_equal(data.tokens, tokens)
    seen = torch.cat(a)
    assert (seen[:, -1] == CLS).all()
    assert int((seen >= FIRST_ITEM_TOKEN).sum()) < int((tokens >= FIRST_ITEM_TOKEN).sum())


# ---- readout -------------------------------------------------------------------------


def test_mean_readout_is_the_head_of_the_mean_state_over_non_pad_positions() -> None:
    model = prepare_finetune(_pretrained(), Method.FINE_ALL, n_outputs=3, readout=Readout.MEAN)
    model.eval()
    tokens = torch.as_tensor(_windows(6, 10, seed=3))
    with torch.no_grad():
        h = model.encoder(tokens)
        want = []
        for r in range(len(tokens)):
            real = tokens[r] != PAD
            want.append(model.head(h[r, real].mean(0)))
        assert torch.allclose(model(tokens), torch.stack(want), atol=1e-5)
        cls = prepare_finetune(_pretrained(), Method.FINE_ALL, n_outputs=3)
        assert cls.readout is Readout.CLS
        assert torch.allclose(cls(tokens), cls.head(cls.encoder(tokens)[:, -1]), atol=1e-6)


def test_mean_readout_does_not_depend_on_the_amount_of_left_padding() -> None:
    model = prepare_finetune(_pretrained(), Method.SCRATCH, n_outputs=2, readout="mean")
    model.eval()
    tokens = torch.as_tensor(_windows(5, 8, seed=4))
    wider = torch.cat([torch.full((5, 7), PAD), tokens], dim=1)
    with torch.no_grad():
        assert torch.allclose(model(tokens), model(wider), atol=1e-5)


def test_the_readout_changes_no_parameter() -> None:
    cls = prepare_finetune(_pretrained(), Method.PETERREC_SERIAL, 2)
    mean = prepare_finetune(_pretrained(), Method.PETERREC_SERIAL, 2, readout=Readout.MEAN)
    a, b = cls.state_dict(), mean.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    trained = [n for n, p in mean.named_parameters() if p.requires_grad]
    assert trained == [n for n, p in cls.named_parameters() if p.requires_grad]


def test_finetune_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="item_dropout"):
        FinetuneSettings(item_dropout=1.0)
    with pytest.raises(ValueError, match="min_steps_per_epoch"):
        FinetuneSettings(min_steps_per_epoch=-1)
    with pytest.raises(ValueError, match="select_mode"):
        FinetuneSettings(select_mode="best")
    with pytest.raises(ValueError):
        FinetuneSettings(readout="pool")
    assert FinetuneSettings(readout="mean").readout is Readout.MEAN


# ---- log loss and the attribute task ----------------------------------------------------


def test_mean_log_loss_by_hand() -> None:
    scores = np.array([[0.0, 0.0], [math.log(3.0), 0.0], [1000.0, 0.0]])
    labels = np.array([0, 0, 1])
    want = (math.log(2) + -math.log(3 / 4) + 1000.0) / 3
    assert mean_log_loss(labels, scores) == pytest.approx(want)
    assert mean_log_loss(labels[:1], scores[:1]) == pytest.approx(math.log(2))


class _Constant(nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(tokens), -1)


def test_attribute_evaluate_reports_the_log_loss_of_its_scores() -> None:
    data = LabelledSequences(np.full((4, 2), CLS), np.array([0, 0, 0, 1]))
    task = AttributeTask("t", ["a", "b"], {"train": data, "valid": data, "test": data}, 2)
    got = task.evaluate(_Constant([math.log(3.0), 0.0]))
    # p(a) = 3/4 for every row: three rows cost −log 3/4, one −log 1/4
    assert got["accuracy"] == 0.75
    assert got["log_loss"] == pytest.approx((3 * -math.log(0.75) - math.log(0.25)) / 4)
    assert task.finetune_settings == ATTRIBUTE_FINETUNE
    assert ATTRIBUTE_FINETUNE.readout is Readout.MEAN
    assert (ATTRIBUTE_FINETUNE.select_by, ATTRIBUTE_FINETUNE.select_mode) == ("log_loss", "min")


# ---- run_method follows the task's settings ---------------------------------------------


@dataclass
class _PlainTask:
    """A task without ``finetune_settings`` (as cold start): PeterRec's defaults apply."""

    splits: dict[str, LabelledSequences]
    name: str = "plain"
    primary_metric: str = "accuracy"

    @property
    def n_outputs(self) -> int:
        return 2

    @property
    def train(self) -> LabelledSequences:
        return self.splits["train"]

    def evaluate(self, model: nn.Module, split: str = "test") -> dict[str, float]:
        return AttributeTask("x", ["a", "b"], self.splits, N_TOKENS).evaluate(model, split)

    def baselines(self, split: str = "test", seed: int = 0) -> dict[str, dict[str, float]]:
        return {}


def _splits() -> dict[str, LabelledSequences]:
    rng = np.random.default_rng(7)
    out = {}
    for name, n in (("train", 24), ("valid", 12), ("test", 12)):
        tokens = _windows(n, 8, seed=int(rng.integers(1 << 30)))
        out[name] = LabelledSequences(tokens, (tokens[:, -2] % 2).astype(np.int64))
    return out


def _steps_per_epoch(task, settings_epochs: int = 3) -> tuple[list[int], object]:
    steps: dict[int, int] = {}

    def progress(epoch: int, epochs: int, row: dict) -> None:
        if "step" in row and "valid_accuracy" not in row:
            steps[epoch] = steps.get(epoch, 0) + 1

    cfg = TrainConfig(
        epochs=settings_epochs,
        lr=1e-2,
        device="cpu",
        log_every=1,
        select_by="valid_accuracy",
        patience=settings_epochs,
    )
    run = run_method(_pretrained(), task, Method.FINE_ALL, cfg, batch_size=8, on_progress=progress)
    return [steps[e] for e in sorted(steps)], run


@pytest.mark.parametrize("mode", ["min", "max"])
def test_run_method_uses_the_attribute_settings(mode: str) -> None:
    splits = _splits()
    settings = FinetuneSettings(Readout.MEAN, 0.5, 10, "log_loss", mode)
    task = AttributeTask("attribute:x", ["a", "b"], splits, N_TOKENS, finetune_settings=settings)
    steps, run = _steps_per_epoch(task)
    assert steps == [12, 12, 12]  # 24 users / 8 = 3 batches a pass; ⌈10 / 3⌉ = 4 passes
    assert isinstance(run.model, SequenceClassifier) and run.model.readout is Readout.MEAN
    losses = np.array([r["valid_log_loss"] for r in run.history])
    # the task's number and direction pick the epoch, not the config's valid_accuracy
    # ("max" is perverse on purpose: there the two choices differ on this data)
    best = np.argmin(losses) if mode == "min" else np.argmax(losses)
    assert run.row["best_epoch"] == 1 + int(best)
    assert "log_loss" in run.row


def test_run_method_keeps_peterrec_defaults_for_a_task_without_settings() -> None:
    task = _PlainTask(_splits())
    steps, run = _steps_per_epoch(task)
    assert steps == [3, 3, 3]  # one pass per epoch
    assert run.model.readout is Readout.CLS
    accs = [r["valid_accuracy"] for r in run.history]
    assert run.row["best_epoch"] == 1 + int(np.argmax(accs))  # the config's own choice


def test_seeded_attribute_runs_repeat_exactly() -> None:
    task = AttributeTask("attribute:x", ["a", "b"], _splits(), N_TOKENS)
    cfg = TrainConfig(epochs=2, lr=1e-2, device="cpu", select_by="valid_accuracy", patience=2)
    a = run_method(_pretrained(), task, Method.FINE_ALL, cfg, batch_size=8)
    b = run_method(_pretrained(), task, Method.FINE_ALL, cfg, batch_size=8)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.history == b.history
