"""Fine-tuning a pretrained NextItNet on a downstream task: the methods of PeterRec's Table 3.

Every method is the same network with a new head on the CLS position and differs only in
which parameters require grad; all train through ``recflow.train.train``:

- ``fine_all``: every weight (embedding, blocks, head);
- ``fine_last``: the last residual block and the head;
- ``fine_cls``: the new head only;
- ``peterrec_serial`` / ``peterrec_parallel``: model patches (zero-initialised, see
  ``patches.py``), every layer norm and the head; the rest stays frozen;
- ``scratch``: "no pretraining", the same architecture freshly initialised, all weights.

A task may ask for its own ``FinetuneSettings`` (readout, item dropout, steps per epoch,
the validation number that picks the epoch); the defaults are PeterRec's (CLS readout,
one pass per epoch, the shared config's selection). ``AttributeTask`` asks for the mean
readout, item dropout, ≥ 16 steps per epoch and log-loss selection: on ML-100K-shaped
data (660 train users) a CLS head memorised the train users within ~12 Adam steps (train
AUC ≥ 0.99, test AUC ~0.5); see ``recflow.seq.tasks.AttributeTask``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recflow.progress import ProgressFn
from recflow.seeding import seed_torch
from recflow.seq.nextitnet import ChannelLayerNorm, NextItNet, NextItNetEncoder, init_weights
from recflow.seq.patches import Insertion, insert_patches, patch_parameters
from recflow.seq.sequences import FIRST_ITEM_TOKEN, PAD, as_long
from recflow.train import BatchFn, EvalFn, TrainConfig, TrainResult, train


class Method(StrEnum):
    FINE_ALL = "fine_all"
    FINE_LAST = "fine_last"
    FINE_CLS = "fine_cls"
    PETERREC_SERIAL = "peterrec_serial"
    PETERREC_PARALLEL = "peterrec_parallel"
    SCRATCH = "scratch"


@dataclass(frozen=True)
class LabelledSequences:
    """Fine-tuning examples: token windows ending in CLS and one class label each."""

    tokens: np.ndarray  # (N, T) int64, CLS in the last column
    labels: np.ndarray  # (N,) int64 in [0, n_outputs)

    def __post_init__(self) -> None:
        if self.tokens.ndim != 2 or len(self.tokens) != len(self.labels):
            raise ValueError(f"tokens {self.tokens.shape} and labels {self.labels.shape} disagree")

    def __len__(self) -> int:
        return len(self.labels)


class Readout(StrEnum):
    """Which hidden state the head reads: the CLS position (PeterRec) or the mean over
    every non-PAD position (items and CLS)."""

    CLS = "cls"
    MEAN = "mean"


@dataclass(frozen=True)
class FinetuneSettings:
    """What a task asks of its fine-tunes beyond the shared ``TrainConfig``.

    ``readout``: the hidden state the head reads. ``item_dropout``: share of each training
    window's items hidden per batch (``drop_items``). ``min_steps_per_epoch``: a small task
    cycles its data so that an epoch is at least this many optimiser steps (``epochs`` and
    ``patience`` then mean similar optimisation on any task size). ``select_by`` /
    ``select_mode``: the validation number (a key of the task's ``evaluate``) that picks
    the epoch when the config selects at all; None = the config's own choice.
    """

    readout: Readout = Readout.CLS
    item_dropout: float = 0.0
    min_steps_per_epoch: int = 0
    select_by: str | None = None
    select_mode: str = "max"

    def __post_init__(self) -> None:
        object.__setattr__(self, "readout", Readout(self.readout))
        if not 0.0 <= self.item_dropout < 1.0:
            raise ValueError(f"item_dropout must be in [0, 1), got {self.item_dropout}")
        if self.min_steps_per_epoch < 0:
            raise ValueError(f"min_steps_per_epoch must be >= 0, got {self.min_steps_per_epoch}")
        if self.select_mode not in ("max", "min"):
            raise ValueError(f"select_mode must be 'max' or 'min', got {self.select_mode!r}")


class SequenceClassifier(nn.Module):
    """NextItNet encoder + a new linear head on the CLS hidden state or the mean hidden state."""

    def __init__(
        self, encoder: NextItNetEncoder, n_outputs: int, readout: Readout | str = Readout.CLS
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.readout = Readout(readout)
        self.head = nn.Linear(encoder.config.channels, n_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(tokens)  # (B, T, C)
        if self.readout is Readout.CLS:
            return self.head(h[:, -1])  # (B, n_outputs) from the CLS position
        keep = (tokens != PAD).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, C)
        return self.head(pooled)


def _seeded_init(module: nn.Module, seed: int, salt: str) -> None:
    """``init_weights`` from the stream ``salt`` of ``seed``, leaving torch's global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        seed_torch(seed, salt)
        init_weights(module)


def set_trainable(model: SequenceClassifier, method: Method | str) -> None:
    """Turn requires_grad on for exactly the parameters ``method`` trains."""
    method = Method(method)
    for p in model.parameters():
        p.requires_grad_(method in (Method.FINE_ALL, Method.SCRATCH))
    trained: list[nn.Parameter] = list(model.head.parameters())
    if method is Method.FINE_LAST:
        trained += list(model.encoder.blocks[-1].parameters())
    elif method in (Method.PETERREC_SERIAL, Method.PETERREC_PARALLEL):
        trained += patch_parameters(model)
        trained += [
            p
            for m in model.encoder.modules()
            if isinstance(m, ChannelLayerNorm)
            for p in m.parameters()
        ]
    for p in trained:
        p.requires_grad_(True)


def prepare_finetune(
    pretrained: NextItNet,
    method: Method | str,
    n_outputs: int,
    *,
    seed: int = 0,
    reduction: int = 4,
    readout: Readout | str = Readout.CLS,
) -> SequenceClassifier:
    """A fresh classifier for ``method`` built on a copy of ``pretrained`` (left untouched)."""
    method = Method(method)
    encoder = copy.deepcopy(pretrained.encoder).cpu()
    if method is Method.SCRATCH:
        _seeded_init(encoder, seed, "scratch_encoder")
    elif method is Method.PETERREC_SERIAL:
        insert_patches(encoder, Insertion.SERIAL, reduction, seed)
    elif method is Method.PETERREC_PARALLEL:
        insert_patches(encoder, Insertion.PARALLEL, reduction, seed)
    model = SequenceClassifier(encoder, n_outputs, readout)
    _seeded_init(model.head, seed, "head")
    set_trainable(model, method)
    return model


def passes_per_epoch(n: int, batch_size: int, min_steps: int = 0) -> int:
    """Passes over ``n`` examples that give an epoch at least ``min_steps`` batches:
    max(1, ⌈min_steps / ⌈n / batch_size⌉⌉)."""
    per_pass = -(-n // batch_size)  # ⌈n / batch_size⌉
    return max(1, -(-min_steps // per_pass)) if per_pass else 1


def drop_items(tokens: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``tokens`` in which every item token independently becomes PAD with
    probability ``rate`` (PAD and CLS stay). PAD positions are masked out of the encoder's
    blocks and of the mean readout, so a row reads as a random subset of its items."""
    tokens = np.array(tokens, copy=True)
    if rate > 0:
        tokens[(tokens >= FIRST_ITEM_TOKEN) & (rng.random(tokens.shape) < rate)] = PAD
    return tokens


def classification_batches(
    data: LabelledSequences, batch_size: int, min_steps: int = 0, item_dropout: float = 0.0
) -> BatchFn:
    """Shuffled (tokens (B, T), labels (B,)) batches for ``train``.

    An epoch is one pass over ``data``, or as many freshly shuffled passes as make at
    least ``min_steps`` batches (``passes_per_epoch``), so a small task gets the same
    number of optimiser steps per epoch as a large one. With ``item_dropout`` > 0 every
    batch's windows lose that share of their items (``drop_items``), drawn afresh each
    time from the epoch's generator, so runs stay reproducible.
    """
    passes = passes_per_epoch(len(data), batch_size, min_steps)

    def batches(
        epoch: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = None
        if item_dropout > 0:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        for _ in range(passes):
            order = torch.randperm(len(data), generator=generator).numpy()
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                tokens = data.tokens[idx]
                if rng is not None:
                    tokens = drop_items(tokens, item_dropout, rng)
                yield as_long(tokens), as_long(data.labels[idx])

    return batches


def classification_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    tokens, labels = batch
    return F.cross_entropy(model(tokens).float(), labels)  # −log softmax(W h_CLS + b)_y


@torch.no_grad()
def predict_scores(model: nn.Module, tokens: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Head outputs for every row of ``tokens``: (N, n_outputs) float32."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(as_long(tokens[i : i + batch_size]).to(device)).float().cpu().numpy()
        for i in range(0, len(tokens), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def finetune(
    model: SequenceClassifier,
    data: LabelledSequences,
    train_config: TrainConfig,
    *,
    batch_size: int = 128,
    min_steps_per_epoch: int = 0,
    item_dropout: float = 0.0,
    evaluate: EvalFn | None = None,
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Train ``model`` (prepared by ``prepare_finetune``) on ``data`` with the shared loop;
    each epoch takes at least ``min_steps_per_epoch`` optimiser steps and drops
    ``item_dropout`` of the training windows' items (see ``classification_batches``)."""
    return train(
        model,
        classification_loss,
        classification_batches(data, batch_size, min_steps_per_epoch, item_dropout),
        train_config,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
        evaluate=evaluate,
    )
