"""Pretraining NextItNet by next-item prediction, through the shared training loop.

Every position predicts the following item: inputs x_1..x_T, targets x_2..x_{T+1},
p(x_{t+1} | x_≤t) = softmax(h_t W + b). With ``n_negatives > 0`` the softmax runs over
the target and a batch-shared set of uniformly sampled items instead of the whole
vocabulary (sampled softmax; uniform proposals need no log-probability correction).

An epoch draws windows of ``max_len + 1`` tokens: a user with n events contributes
ceil(n / max_len) windows at random offsets, so long histories are used in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from recflow.metrics import hit_rate_at_k, mrr, ndcg_from_rank, rank_of_positive
from recflow.progress import ProgressFn
from recflow.seeding import seed_torch
from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.sequences import FIRST_ITEM_TOKEN, PAD, RaggedTokens, as_long
from recflow.train import BatchFn, TrainConfig, TrainResult, train


@dataclass(frozen=True)
class PretrainConfig:
    """Data settings of pretraining (optimisation lives in TrainConfig)."""

    max_len: int = 50  # positions per training window
    batch_size: int = 128
    n_negatives: int = 0  # 0 = full softmax, else sampled softmax with this many negatives


def next_item_batches(tokens: RaggedTokens, n_tokens: int, config: PretrainConfig) -> BatchFn:
    """Batch function for ``train``: dicts with ``inputs`` (B, T), ``targets`` (B, T) and,
    for sampled softmax, ``negatives`` (N,), shared by the whole batch (a key of
    ``recflow.train.SHARED_KEYS``: under DDP every process gets them whole)."""
    width = config.max_len + 1
    lengths = tokens.lengths
    usable = np.flatnonzero(lengths >= 2)
    repeats = np.ceil(lengths[usable] / config.max_len).astype(np.int64)
    rows_per_epoch = np.repeat(usable, repeats)

    def batches(epoch: int, generator: torch.Generator) -> Iterator[dict[str, torch.Tensor]]:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        rows = rows_per_epoch[rng.permutation(len(rows_per_epoch))]
        span = np.maximum(lengths[rows] - width, 0)
        starts = (rng.random(len(rows)) * (span + 1)).astype(np.int64)
        for i in range(0, len(rows), config.batch_size):
            window = tokens.windows(
                rows[i : i + config.batch_size], starts[i : i + config.batch_size], width
            )
            batch = {"inputs": as_long(window[:, :-1]), "targets": as_long(window[:, 1:])}
            if config.n_negatives > 0:
                neg = rng.integers(FIRST_ITEM_TOKEN, n_tokens, size=config.n_negatives)
                batch["negatives"] = as_long(neg)
            yield batch

    return batches


def next_item_loss(model: NextItNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the next item over non-PAD targets (full or sampled softmax)."""
    inputs, targets = batch["inputs"], batch["targets"]
    keep = (targets != PAD) & (inputs != PAD)  # (B, T)
    h = model.encoder(inputs)[keep]  # (M, C) hidden states with a real next item
    y = targets[keep]  # (M,)
    negatives = batch.get("negatives")
    if negatives is None:
        return F.cross_entropy(model.head(h).float(), y)  # −log softmax(h W + b)_y
    w, b = model.head.weight, model.head.bias
    pos = (h * w[y]).sum(-1) + b[y]  # (M,) logit of the true next item
    neg = h @ w[negatives].T + b[negatives]  # (M, N) logits of the sampled items
    neg = neg.masked_fill(negatives[None, :] == y[:, None], float("-inf"))  # accidental hits
    logits = torch.cat([pos[:, None], neg], dim=1).float()  # (M, 1 + N)
    return F.cross_entropy(logits, torch.zeros_like(y))  # −log softmax over {y} ∪ negatives


@torch.no_grad()
def evaluate_next_item(
    model: NextItNet,
    contexts: RaggedTokens,
    targets: np.ndarray,
    max_len: int,
    n_negatives: int = 99,
    seed: int = 0,
    batch_size: int = 512,
) -> dict[str, float]:
    """HR@10, NDCG@10 and MRR of the true next item against ``n_negatives`` uniformly
    sampled items (seeded), from the last ``max_len`` tokens of each context."""
    rng = np.random.default_rng(seed)
    n_tokens = model.config.n_tokens
    device = next(model.parameters()).device
    ranks = []
    for i in range(0, len(contexts), batch_size):
        rows = np.arange(i, min(i + batch_size, len(contexts)))
        x = as_long(contexts.last(rows, max_len)).to(device)
        pos = targets[rows]
        neg = rng.integers(FIRST_ITEM_TOKEN, n_tokens, size=(len(rows), n_negatives))
        clash = neg == pos[:, None]
        while clash.any():
            neg[clash] = rng.integers(FIRST_ITEM_TOKEN, n_tokens, size=int(clash.sum()))
            clash = neg == pos[:, None]
        cand = as_long(np.concatenate([pos[:, None], neg], axis=1)).to(device)  # (B, 1 + N)
        h = model.encoder(x)[:, -1]  # (B, C)
        scores = (h[:, None, :] * model.head.weight[cand]).sum(-1) + model.head.bias[cand]
        s = scores.float().cpu().numpy()  # (B, 1 + N), positive first
        ranks.append(rank_of_positive(s))
    rank = np.concatenate(ranks)
    return {"hr@10": hit_rate_at_k(rank, 10), "ndcg@10": ndcg_from_rank(rank, 10), "mrr": mrr(rank)}


@dataclass
class PretrainResult:
    """The pretrained network and its training record."""

    model: NextItNet
    train: TrainResult


def pretrain(
    tokens: RaggedTokens,
    model_config: NextItNetConfig,
    config: PretrainConfig,
    train_config: TrainConfig,
    *,
    valid: tuple[RaggedTokens, np.ndarray] | None = None,
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> PretrainResult:
    """Build a NextItNet (seeded by ``train_config.seed``) and pretrain it on ``tokens``.

    ``valid`` = (contexts, next-item tokens) adds sampled HR@10/NDCG@10/MRR to every epoch.
    """
    seed_torch(train_config.seed, "nextitnet_init")
    model = NextItNet(model_config)
    evaluate = None
    if valid is not None:
        contexts, targets = valid

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            return evaluate_next_item(m, contexts, targets, config.max_len, seed=train_config.seed)

    result = train(
        model,
        next_item_loss,
        next_item_batches(tokens, model_config.n_tokens, config),
        train_config,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
        evaluate=evaluate,
    )
    return PretrainResult(model, result)
