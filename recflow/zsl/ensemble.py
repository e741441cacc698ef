"""A text score combined with a popularity prior, and a flagged fallback.

score_i = z(s_i) + β · z(log(1 + pop_i)), with z(·) standardizing over items, so β is
comparable across models and queries. A query with no known term falls back to the
popularity ranking and says so (``last_fallback``). β is chosen on validation queries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recflow.metrics import ndcg_at_k
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import QueryScorer

DEFAULT_PRIOR_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)


def standardize(x: np.ndarray) -> np.ndarray:
    """(x − mean) / std over items; a constant vector becomes zeros."""
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x, dtype=np.float64)


class PriorEnsembleScorer:
    """``base`` plus β times a popularity prior; popularity alone when ``base`` has nothing."""

    def __init__(self, base: QueryScorer, popularity: np.ndarray, prior_weight: float) -> None:
        self.base = base
        self.name = f"{base.name}+prior"
        self.prior = standardize(np.log1p(popularity.astype(np.float64)))
        self.prior_weight = prior_weight
        self.last_fallback = False

    def scores(self, query: str) -> np.ndarray | None:
        s = self.base.scores(query)
        self.last_fallback = s is None
        if s is None:
            return self.prior.copy()
        return standardize(s) + self.prior_weight * self.prior


def tune_prior_weight(
    base: QueryScorer,
    popularity: np.ndarray,
    queries: Sequence[tuple[str, np.ndarray]],
    grid: Sequence[float] = DEFAULT_PRIOR_GRID,
    k: int = 100,
    max_widenings: int = 8,
) -> tuple[float, dict[float, float]]:
    """β with the best mean NDCG@k on (query, relevant item indices) pairs; ties → smaller β.

    When the best β is the top of the grid, the grid is extended by doublings (up to
    ``max_widenings``) until it is not, so the choice never sits on an edge that could
    move. Returns β and the mean NDCG@k of every grid value (for the asset metadata).
    """
    if not queries:
        raise ValueError("need at least one validation query to tune the prior weight")
    by_weight: dict[float, float] = {}
    base_scores = [base.scores(q) for q, _ in queries]
    prior = standardize(np.log1p(popularity.astype(np.float64)))
    grid = [float(b) for b in grid]
    for _ in range(max_widenings + 1):
        for beta in grid:
            if beta in by_weight:
                continue
            vals = []
            for s, (_, rel) in zip(base_scores, queries, strict=True):
                total = prior if s is None else standardize(s) + beta * prior
                vals.append(ndcg_at_k(top_k(total, k), rel, k))
            by_weight[beta] = float(np.mean(vals))
        best = min(by_weight, key=lambda b: (-by_weight[b], b))
        if best < grid[-1] or grid[-1] <= 0:
            break
        grid.append(grid[-1] * 2)
    return best, by_weight
