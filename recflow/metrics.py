"""Evaluation metrics shared by every method: ranking, sampled ranking, classification.

Ranking metrics take ``ranked`` (item indices, best first) and ``relevant`` (a collection
of item indices) with binary relevance. Sampled-ranking metrics take the 0-based rank of
the one positive among its candidates. AUC comes from scikit-learn; GAUC is the
impression-weighted mean of per-user AUCs, skipping users whose labels are all one class.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np


def _as_set(relevant: Collection[int] | np.ndarray) -> set[int]:
    return {int(x) for x in relevant}


def recall_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int) -> float:
    """Share of the relevant items found in the top ``k``: |top_k ∩ S| / |S|."""
    rel = _as_set(relevant)
    if not rel:
        raise ValueError("recall is undefined for an empty relevant set")
    hits = sum(1 for x in np.asarray(ranked)[:k] if int(x) in rel)
    return hits / len(rel)


def r_precision(ranked: Sequence[int] | np.ndarray, relevant: Collection[int]) -> float:
    """Recall at k = |S| (equal to precision at |S|)."""
    return recall_at_k(ranked, relevant, len(_as_set(relevant)))


def ndcg_at_k(ranked: Sequence[int] | np.ndarray, relevant: Collection[int], k: int) -> float:
    """Binary-relevance NDCG: Σ_{i<k, r_i∈S} 1/log2(i+2) / Σ_{i<min(k,|S|)} 1/log2(i+2)."""
    rel = _as_set(relevant)
    if not rel:
        raise ValueError("NDCG is undefined for an empty relevant set")
    top = np.asarray(ranked)[:k]
    gains = np.array([1.0 if int(x) in rel else 0.0 for x in top])
    discounts = 1.0 / np.log2(np.arange(2, len(top) + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(k, len(rel)) + 2))).sum()
    return float((gains * discounts).sum() / ideal)


def hit_rate_at_k(rank: np.ndarray, k: int) -> float:
    """HR@k: share of cases whose positive is ranked within the top ``k`` (rank 0 = best)."""
    return float((np.asarray(rank) < k).mean())


def ndcg_from_rank(rank: np.ndarray, k: int) -> float:
    """NDCG@k with a single positive: mean of 1/log2(rank+2) where rank < k, else 0."""
    r = np.asarray(rank, dtype=np.float64)
    return float(np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0).mean())


def mrr(rank: np.ndarray) -> float:
    """Mean reciprocal rank of the positive: mean of 1/(rank+1)."""
    return float((1.0 / (np.asarray(rank, dtype=np.float64) + 1.0)).mean())


def rank_of_positive(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 (the positive) among each row's candidates.

    Ties count against the positive (pessimistic), so a constant scorer never looks good.
    ``scores``: (cases, 1 + negatives).
    """
    s = np.asarray(scores)
    return (s[:, 1:] >= s[:, :1]).sum(axis=1)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn)."""
    from sklearn.metrics import roc_auc_score  # imported on use: search needs no sklearn

    return float(roc_auc_score(np.asarray(labels), np.asarray(scores)))


@dataclass(frozen=True)
class GaucResult:
    """GAUC with the bookkeeping that makes it interpretable."""

    value: float
    users_used: int
    users_skipped: int
    impressions_used: int


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> GaucResult:
    """GAUC = Σ_u n_u·AUC_u / Σ_u n_u over users with both classes (n_u = impressions)."""
    users = np.asarray(users)
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    from sklearn.metrics import roc_auc_score

    order = np.argsort(users, kind="stable")
    users, labels, scores = users[order], labels[order], scores[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    total, weight, used, skipped = 0.0, 0, 0, 0
    for a, b in zip(starts, ends, strict=True):
        y = labels[a:b]
        if y.min() == y.max():
            skipped += 1
            continue
        total += (b - a) * roc_auc_score(y, scores[a:b])
        weight += b - a
        used += 1
    if used == 0:
        raise ValueError("GAUC is undefined: no user has both positive and negative labels")
    return GaucResult(total / weight, used, skipped, weight)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Share of exact matches."""
    return float((np.asarray(labels) == np.asarray(predicted)).mean())


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Unweighted mean of per-class F1 (scikit-learn), over the classes in ``labels``."""
    from sklearn.metrics import f1_score

    return float(
        f1_score(labels, predicted, average="macro", labels=np.unique(labels), zero_division=0)
    )
