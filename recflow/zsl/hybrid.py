"""Hybrid search: BM25 over item text, ZSL vectors and a popularity prior, fused by score.

    s_i = a · bm25_i / max_j bm25_j + c · z(vec_i) + β · p_i

with z(·) standardizing over items (``ensemble.standardize``), so the weights compare
across queries, and p the prior of ``ensemble.item_prior``: z(log(1 + pop_i)), mixed with
ρ · z(log(1 + tags_i)) when the items' text-tag counts are given. Title hits (``lexical.LexicalIndex``) are then lifted above every other
item, the fullest title match first, each tier ordered by s. A query that neither the
lexical index nor the model knows falls back to the prior alone (flagged), or to nothing
when the prior is off. Weights are chosen on validation queries by ``tune_fusion`` for
each (model, scoring, prior on/off) separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from recflow.metrics import ndcg_at_k
from recflow.text import encode_query
from recflow.zsl.ensemble import item_prior, standardize
from recflow.zsl.lexical import LexicalIndex, LexicalMatch
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import VectorScorer

WEIGHT_GRID = (0.0, 0.125, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0)  # ×√2 steps
MAX_WIDENINGS = 8
TITLE_SCALE = 1e4  # coverage steps (≥ 1/400 for titles under 20 words) outweigh any s-span


@dataclass(frozen=True)
class FusionWeights:
    """a (lexical), c (vector) and β (prior) of the fused score, and ρ (tags): the weight of
    the text-tag counts inside the prior (``ensemble.item_prior``)."""

    lexical: float = 1.0
    vector: float = 1.0
    prior: float = 1.0
    tags: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class HybridParts:
    """One query, decomposed: the weighted parts per item and what matched."""

    lexical: np.ndarray  # a · bm25 / max bm25
    vector: np.ndarray  # c · z(vec)
    prior: np.ndarray  # β · z(prior)
    match: LexicalMatch
    vector_known: list[str]  # model-vocabulary terms of the query
    fallback: bool  # nothing known: the prior alone
    empty: bool  # nothing known and no prior: no answer

    @property
    def fused(self) -> np.ndarray:
        return self.lexical + self.vector + self.prior


def lexical_scale(scores: np.ndarray) -> np.ndarray:
    """BM25 / its maximum over items, in [0, 1]. Not z-scores: BM25 is sparse, so one item
    matching a rare word gets z ≈ √n (~100 on ml_small) and swamps every other part at any
    weight; on ml_small's validation queries the max scale beat z-scores and log1p z-scores
    (geometric mean of tag NDCG@100 and known-item MRR 0.346 vs 0.340 and 0.340)."""
    top = float(scores.max()) if len(scores) else 0.0
    return scores / top if top > 0 else np.zeros_like(scores, dtype=np.float64)


def title_first(fused: np.ndarray, match: LexicalMatch) -> np.ndarray:
    """Scores that rank title hits first (fuller title coverage first), then by ``fused``."""
    hit = match.title_hit
    if not hit.any():
        return fused
    lo, hi = float(fused.min()), float(fused.max())
    span = hi - lo + 1.0
    out = fused.copy()
    out[hit] = hi + span + TITLE_SCALE * span * match.title_coverage[hit] + (fused[hit] - lo)
    return out


class HybridScorer:
    """``QueryScorer`` of the fused score; ``parts`` explains it."""

    def __init__(
        self,
        lexical: LexicalIndex,
        vector: VectorScorer | None,
        popularity: np.ndarray | None,
        weights: FusionWeights,
        name: str | None = None,
        tag_counts: np.ndarray | None = None,
    ) -> None:
        if popularity is not None and len(popularity) != lexical.n_items:
            raise ValueError("popularity and the lexical index disagree on the item count")
        if tag_counts is not None and len(tag_counts) != lexical.n_items:
            raise ValueError("tag counts and the lexical index disagree on the item count")
        self.lexical = lexical
        self.vector = vector
        self.weights = weights
        self.prior = (
            None if popularity is None else item_prior(popularity, tag_counts, weights.tags)
        )
        model = vector.name if vector is not None else "bm25"
        self.name = name or (f"hybrid:{model}" if vector is not None else "bm25")
        if self.prior is not None and name is None:
            self.name += "+prior"
        self.last_fallback = False

    def parts(self, query: str) -> HybridParts:
        w = self.weights
        n = self.lexical.n_items
        match = self.lexical.match(query)
        zeros = np.zeros(n)
        lex = w.lexical * lexical_scale(match.scores) if match.known and w.lexical else zeros
        vec, vector_known = zeros, []
        if self.vector is not None:
            enc = encode_query(query, self.vector.vocab, self.vector.bigrams)
            vector_known = [self.vector.vocab.terms[i] for i in dict.fromkeys(enc.known)]
            s = self.vector.scores(query) if w.vector else None
            if s is not None:
                vec = w.vector * standardize(s)
        known = bool(match.known) or bool(vector_known)
        if not known:  # the popularity fallback, as tune_fusion scores it
            has_prior = self.prior is not None
            prior = self.prior.copy() if has_prior else zeros
            return HybridParts(zeros, zeros, prior, match, [], has_prior, not has_prior)
        prior = w.prior * self.prior if self.prior is not None else zeros
        return HybridParts(lex, vec, prior, match, vector_known, False, False)

    def scores(self, query: str) -> np.ndarray | None:
        p = self.parts(query)
        self.last_fallback = p.fallback
        if p.empty:
            return None
        return title_first(p.fused, p.match)


def batch_ranked(totals: np.ndarray, match: LexicalMatch, k: int) -> list[np.ndarray]:
    """The top ``k`` of each row of ``totals`` (G, n) as ``title_first`` ranks it: title
    hits first (fuller coverage, then higher score), then the rest by score (ties within a
    row are broken by index, as ``top_k`` does; tuning does not rely on them)."""
    g, n = totals.shape
    hits = np.flatnonzero(match.title_hit)
    rest_k = min(k - min(len(hits), k), n - len(hits))
    rest = totals
    if len(hits):
        rest = totals.copy()
        rest[:, hits] = -np.inf
    if rest_k > 0:
        part = np.argpartition(-rest, rest_k - 1, axis=1)[:, :rest_k]
        vals = np.take_along_axis(rest, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)
        top_rest = np.take_along_axis(part, order, axis=1)
    else:
        top_rest = np.empty((g, 0), dtype=np.int64)
    out = []
    for row in range(g):
        if len(hits):
            # coverage first, then score, then index: the order title_first gives
            order = np.lexsort((hits, -totals[row, hits], -match.title_coverage[hits]))
            out.append(np.concatenate([hits[order][:k], top_rest[row]]))
        else:
            out.append(top_rest[row])
    return out


def batch_ndcg(totals: np.ndarray, match: LexicalMatch, relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of each row of ``totals`` (G, n) ranked as ``title_first`` ranks it."""
    return _ndcg(batch_ranked(totals, match, k), totals.shape[1], relevant, k)


def batch_overlap(totals: np.ndarray, match: LexicalMatch, popular: np.ndarray) -> np.ndarray:
    """Share of each row's top ``len(popular)`` (ranked as ``title_first`` ranks it) that
    is in ``popular``, the popularity top list: how little the answer depends on the query."""
    return _overlap(batch_ranked(totals, match, len(popular)), totals.shape[1], popular)


def _ndcg(ranked: list[np.ndarray], n: int, relevant: np.ndarray, k: int) -> np.ndarray:
    rel = np.zeros(n, dtype=bool)
    rel[relevant] = True
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return np.array([(rel[r[:k]] * discounts[: len(r[:k])]).sum() / ideal for r in ranked])


def _overlap(ranked: list[np.ndarray], n: int, popular: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[popular] = True
    return np.array([mask[r[: len(popular)]].sum() / len(popular) for r in ranked])


def batch_rr(totals: np.ndarray, match: LexicalMatch, target: int) -> np.ndarray:
    """1 / rank of ``target`` in each row of ``totals`` (G, n) as ``title_first`` ranks
    it (ties by index, as ``top_k``)."""
    idx = np.arange(totals.shape[1])
    t = totals[:, target][:, None]
    ahead_score = (totals > t) | ((totals == t) & (idx < target))
    hit = match.title_hit
    if hit[target]:
        cov = match.title_coverage
        fuller = hit & (cov > cov[target])
        same = hit & (cov == cov[target])
        ahead = fuller[None, :] | (same[None, :] & ahead_score)
    else:
        ahead = hit[None, :] | (~hit[None, :] & ahead_score)
    return 1.0 / (ahead.sum(axis=1) + 1.0)


def _widen(grid: list[float]) -> list[float]:
    return [*grid, grid[-1] * 2**0.5, grid[-1] * 2]


def tune_fusion(
    lexical: LexicalIndex,
    vector: VectorScorer | None,
    popularity: np.ndarray | None,
    queries: Sequence[tuple[str, np.ndarray]],
    use_prior: bool = True,
    grid: Sequence[float] = WEIGHT_GRID,
    k: int = 100,
    known_items: Sequence[tuple[str, int]] = (),
    tag_counts: np.ndarray | None = None,
    tag_weight: float = 0.0,
    max_overlap: float | None = None,
) -> tuple[FusionWeights, list[dict[str, float]]]:
    """Weights with the best mean NDCG@k on validation (query, relevant) pairs — or, with
    validation ``known_items`` (query, item index), the best geometric mean of that NDCG
    and the known-item MRR: a search serves topic and title queries, and MRR (~0.9) and
    tag NDCG (~0.1) differ tenfold in scale, so each counts by its relative change.

    The vector weight is fixed at 1 (the scale of s does not change a ranking), the
    lexical weight and β range over ``grid``; when the best value of either is the top of
    its grid, that grid is doubled and the search repeated (up to ``MAX_WIDENINGS``
    times), so the winner is never on an edge that could move. Ties go to the smaller
    weights. Without a vector part, a = 1 and β is searched. The prior is
    ``item_prior(popularity, tag_counts, tag_weight)`` (ρ = ``tag_weight`` is chosen
    before, by ``ensemble.tune_tag_weight``).

    ``max_overlap``: a requirement on the answers, not a target to trade: only points
    whose validation queries (those with a known word) share on average at most this
    share of their top 10 with the popularity top 10 compete, nor (when ρ > 0) with the
    prior's own top 10, the most-tagged popular films (tag queries are mostly about
    popular, much-tagged films, so the objective alone rewards a prior that answers every
    query with the same list). When no point qualifies, the one with the least overlap is
    taken.
    Returns the weights and every evaluated point with its objective, overlap and
    whether it was chosen (for the asset metadata).
    """
    if not queries:
        raise ValueError("need at least one validation query to tune the fusion weights")
    n = lexical.n_items
    prior = (
        item_prior(popularity, tag_counts, tag_weight)
        if popularity is not None and use_prior
        else None
    )
    rho = tag_weight if prior is not None and tag_counts is not None else 0.0

    def parts(q: str):
        m = lexical.match(q)
        zl = lexical_scale(m.scores) if m.known else np.zeros(n)
        s = vector.scores(q) if vector is not None else None
        zv = standardize(s) if s is not None else np.zeros(n)
        return m, zl, zv, bool(m.known) or s is not None

    cached = [(*parts(q), rel) for q, rel in queries]
    cached_items = [(*parts(q), int(target)) for q, target in known_items]

    # the query-blind lists an answer must not collapse to: the popularity top 10, and
    # the fused prior's own top 10 when text-tag counts move it away from popularity
    blind: list[np.ndarray] = []
    if popularity is not None:
        blind.append(top_k(popularity, 10))
        if prior is not None and rho:
            blind.append(top_k(prior, 10))

    def evaluate(points: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean NDCG@k (+ mean known-item RR) of each (a, c, β), and its mean top-10
        overlap over the queries with a known word with the popularity top 10 or the
        prior's, whichever is larger; all points of one query at once."""
        a = np.array([p[0] for p in points])[:, None]
        cc = np.array([p[1] for p in points])[:, None]
        b = np.array([p[2] for p in points])[:, None]

        def fused(zl: np.ndarray, zv: np.ndarray) -> np.ndarray:
            return a * zl + cc * zv + (b * prior if prior is not None else 0.0)

        sums = np.zeros(len(points))
        overlap = np.zeros((len(blind), len(points)))
        n_known = 0
        for m, zl, zv, known, rel in cached:
            if known:
                ranked = batch_ranked(fused(zl, zv), m, max(k, 10))
                sums += _ndcg(ranked, n, rel, k)
                for i, top in enumerate(blind):
                    overlap[i] += _overlap(ranked, n, top)
                n_known += 1
            elif prior is not None:
                sums += ndcg_at_k(top_k(prior, k), rel, k)
        out = sums / len(cached)
        if cached_items:
            rr = np.zeros(len(points))
            for m, zl, zv, known, target in cached_items:
                if known:
                    rr += batch_rr(fused(zl, zv), m, target)
                elif prior is not None:
                    rr += batch_rr(prior[None, :], m, target)
            # geometric mean: each task counts by its relative change, whatever its scale
            out = np.sqrt(out * rr / len(cached_items))
        worst = overlap.max(axis=0) if blind else np.zeros(len(points))
        return out, worst / max(n_known, 1)

    results: dict[tuple[float, float, float], float] = {}
    overlaps: dict[tuple[float, float, float], float] = {}

    def choose() -> tuple[float, float, float]:
        ok = [p for p in results if max_overlap is None or overlaps[p] <= max_overlap + 1e-12]
        if not ok:  # nothing meets the requirement: the least popularity-bound answer
            return min(results, key=lambda p: (overlaps[p], -results[p], p[0] + p[2], p))
        return min(ok, key=lambda p: (-results[p], p[0] + p[2], p))

    lex_grid = list(grid) if vector is not None else [1.0]
    prior_grid = list(grid) if prior is not None else [0.0]
    c = 1.0 if vector is not None else 0.0
    for _ in range(MAX_WIDENINGS + 1):
        todo = [(a, c, b) for a in lex_grid for b in prior_grid if (a, c, b) not in results]
        if todo:
            obj, ovl = evaluate(todo)
            results |= dict(zip(todo, obj.tolist(), strict=True))
            overlaps |= dict(zip(todo, ovl.tolist(), strict=True))
        best = choose()
        widened = False
        if vector is not None and best[0] == lex_grid[-1] and lex_grid[-1] > 0:
            lex_grid, widened = _widen(lex_grid), True
        if prior is not None and best[2] == prior_grid[-1] and prior_grid[-1] > 0:
            prior_grid, widened = _widen(prior_grid), True
        if not widened:
            break
    # objective: mean NDCG@k, or its geometric mean with the known-item MRR
    table = [
        {"lexical": a, "vector": cc, "prior": b, "objective": v}
        | {"blind_overlap@10": overlaps[(a, cc, b)], "chosen": (a, cc, b) == best}
        for (a, cc, b), v in sorted(results.items())
    ]
    return FusionWeights(best[0], best[1], best[2], rho), table
