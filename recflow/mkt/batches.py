"""Mini-batches over the tensor dict of ``FeatureTables.tensors``, and batched scoring."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from recflow.train import BatchFn, to_device


def shuffled_batches(tensors: dict[str, torch.Tensor], batch_size: int) -> BatchFn:
    """A ``train`` batch function: each epoch a fresh permutation from the loop's generator."""
    n = int(tensors["label"].shape[0])
    if n == 0:
        raise ValueError("no training rows")

    def batches(epoch: int, generator: torch.Generator) -> Iterator[dict[str, torch.Tensor]]:
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            yield {k: v[idx] for k, v in tensors.items()}

    return batches


def predict_scores(
    model: nn.Module, tensors: dict[str, torch.Tensor], batch_size: int = 4096
) -> np.ndarray:
    """Click probabilities σ(logit) for every row, in row order (eval mode, no grad)."""
    device = next(model.parameters()).device
    model.eval()
    n = int(tensors["label"].shape[0])
    out = []
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = to_device({k: v[i : i + batch_size] for k, v in tensors.items()}, device)
            out.append(torch.sigmoid(model(batch).float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)
