"""Fine-tuning a pretrained NextItNet on a downstream task: the methods of PeterRec's Table 3.

Every method is the same network with a new head on the CLS position and differs only in
which parameters require grad; all train through ``recflow.train.train``:

- ``fine_all``: every weight (embedding, blocks, head);
- ``fine_last``: the last residual block and the head;
- ``fine_cls``: the new head only;
- ``peterrec_serial`` / ``peterrec_parallel``: model patches (zero-initialised, see
  ``patches.py``), every layer norm and the head; the rest stays frozen;
- ``scratch``: "no pretraining", the same architecture freshly initialised, all weights.
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
from recflow.seq.nextitnet import ChannelLayerNorm, NextItNet, NextItNetEncoder, init_weights
from recflow.seq.patches import Insertion, insert_patches, patch_parameters
from recflow.seq.sequences import as_long
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


class SequenceClassifier(nn.Module):
    """NextItNet encoder + a new linear head on the hidden state at the last (CLS) position."""

    def __init__(self, encoder: NextItNetEncoder, n_outputs: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.channels, n_outputs)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(tokens)[:, -1]  # (B, C) at CLS
        return self.head(h)  # (B, n_outputs)


def _seeded_init(module: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
) -> SequenceClassifier:
    """A fresh classifier for ``method`` built on a copy of ``pretrained`` (left untouched)."""
    method = Method(method)
    encoder = copy.deepcopy(pretrained.encoder).cpu()
    if method is Method.SCRATCH:
        _seeded_init(encoder, seed)
    elif method is Method.PETERREC_SERIAL:
        insert_patches(encoder, Insertion.SERIAL, reduction, seed)
    elif method is Method.PETERREC_PARALLEL:
        insert_patches(encoder, Insertion.PARALLEL, reduction, seed)
    model = SequenceClassifier(encoder, n_outputs)
    _seeded_init(model.head, seed + 1)
    set_trainable(model, method)
    return model


def classification_batches(data: LabelledSequences, batch_size: int) -> BatchFn:
    """Shuffled (tokens (B, T), labels (B,)) batches for ``train``."""

    def batches(
        epoch: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(data), generator=generator).numpy()
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield as_long(data.tokens[idx]), as_long(data.labels[idx])

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
    evaluate: EvalFn | None = None,
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> TrainResult:
    """Train ``model`` (prepared by ``prepare_finetune``) on ``data`` with the shared loop."""
    return train(
        model,
        classification_loss,
        classification_batches(data, batch_size),
        train_config,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
        evaluate=evaluate,
    )
