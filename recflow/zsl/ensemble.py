"""A text score combined with a prior, and a flagged fallback.

score_i = z(s_i) + β · p_i, with z(·) standardizing over items, so β is comparable across
models and queries. The prior is the popularity p_i = z(log(1 + pop_i)) or, with the
items' text-tag counts, ``item_prior``'s mix of the two. A query with no known term falls
back to the prior's ranking and says so (``last_fallback``). β (and the mix ρ) are chosen
on validation queries.
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


TAG_PRIOR_GRID = (0.0, 0.125, 0.25, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)


def item_prior(
    popularity: np.ndarray, tag_counts: np.ndarray | None = None, tag_weight: float = 0.0
) -> np.ndarray:
    """What is known of each item before the query, standardized over items::

        p_i = z( z(log(1 + pop_i)) + ρ · z(log(1 + tags_i)) )

    pop: interactions; tags: distinct tag strings in the item's text (the query split's
    ``text`` part, never a validation or test string); ρ: ``tag_weight``. Tags are applied
    by a few users to the films they care about, and an item they tagged often is more
    likely to carry a held-out tag too, whatever its interaction count."""
    p = standardize(np.log1p(popularity.astype(np.float64)))
    if tag_counts is not None and tag_weight:
        p = standardize(p + tag_weight * standardize(np.log1p(tag_counts.astype(np.float64))))
    return p


def tune_tag_weight(
    popularity: np.ndarray,
    tag_counts: np.ndarray,
    queries: Sequence[tuple[str, np.ndarray]],
    grid: Sequence[float] = TAG_PRIOR_GRID,
    k: int = 100,
    max_widenings: int = 8,
) -> tuple[float, dict[float, float]]:
    """ρ of ``item_prior`` with the best mean NDCG@k of the prior's ranking alone on
    validation (query, relevant) pairs; ties → smaller ρ, the grid doubled while its top
    wins. Returns ρ and the NDCG@k of every grid value."""
    if not queries:
        raise ValueError("need at least one validation query to tune the tag prior")
    by_weight: dict[float, float] = {}
    grid = [float(r) for r in grid]
    for _ in range(max_widenings + 1):
        for rho in grid:
            if rho not in by_weight:
                ranked = top_k(item_prior(popularity, tag_counts, rho), k)
                by_weight[rho] = float(np.mean([ndcg_at_k(ranked, rel, k) for _, rel in queries]))
        best = min(by_weight, key=lambda r: (-by_weight[r], r))
        if best < grid[-1] or grid[-1] <= 0:
            break
        grid.append(grid[-1] * 2)
    return best, by_weight


class PriorScorer:
    """Every query gets the prior's ranking (``item_prior``): the query-blind floor of a
    search whose prior is not popularity alone (named as a popularity baseline)."""

    def __init__(
        self, popularity: np.ndarray, tag_counts: np.ndarray | None, tag_weight: float
    ) -> None:
        self.name = "popularity+tag prior"
        self.values = item_prior(popularity, tag_counts, tag_weight)

    def scores(self, query: str) -> np.ndarray | None:
        return self.values


class PriorEnsembleScorer:
    """``base`` plus β times a prior; the prior alone when ``base`` has nothing.

    The prior is popularity, or with ``tag_counts`` and ``tag_weight`` ρ the mix of
    ``item_prior`` (then named ``<base>+tag prior``)."""

    def __init__(
        self,
        base: QueryScorer,
        popularity: np.ndarray,
        prior_weight: float,
        tag_counts: np.ndarray | None = None,
        tag_weight: float = 0.0,
    ) -> None:
        self.base = base
        mixed = tag_counts is not None and tag_weight > 0
        self.name = f"{base.name}+tag prior" if mixed else f"{base.name}+prior"
        self.prior = item_prior(popularity, tag_counts, tag_weight)
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
    tag_counts: np.ndarray | None = None,
    tag_weight: float = 0.0,
) -> tuple[float, dict[float, float]]:
    """β with the best mean NDCG@k on (query, relevant item indices) pairs; ties → smaller β.
    The prior is ``item_prior(popularity, tag_counts, tag_weight)``.

    When the best β is the top of the grid, the grid is extended by doublings (up to
    ``max_widenings``) until it is not, so the choice never sits on an edge that could
    move. Returns β and the mean NDCG@k of every grid value (for the asset metadata).
    """
    if not queries:
        raise ValueError("need at least one validation query to tune the prior weight")
    by_weight: dict[float, float] = {}
    base_scores = [base.scores(q) for q, _ in queries]
    prior = item_prior(popularity, tag_counts, tag_weight)
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
