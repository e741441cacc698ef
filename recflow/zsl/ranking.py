"""Scores → a ranking of item indices."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int, exclude: int | None = None) -> np.ndarray:
    """Indices of the k highest scores, best first; ties go to the smaller index.

    ``exclude``: one index never returned (the item itself, for neighbour lists).
    """
    s = np.asarray(scores, dtype=np.float64)
    if exclude is not None:
        s = s.copy()
        s[exclude] = -np.inf
        k = min(k, len(s) - 1)
    k = min(k, len(s))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(s):
        # keep everything tied with the k-th score so the tie-break below is exact
        kth = np.partition(-s, k - 1)[k - 1]
        cand = np.flatnonzero(-s <= kth)
    else:
        cand = np.arange(len(s))
    order = np.lexsort((cand, -s[cand]))
    return cand[order][:k]
