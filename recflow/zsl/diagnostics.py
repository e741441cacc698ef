"""Does a model's ranking depend on the query? Measurements of query independence.

A weighted-ALS model whose regularization outweighs the data collapses onto one shared
direction: every word vector points the same way, so every query ranks items by their
projection on that direction. ``query_dependence`` measures this on one-word queries:

- ``pc1_share``: share of the (per-query centred) item-score variance explained by the
  first principal direction across queries (1.0 = every query ranks alike);
- ``word_cos_to_mean``: mean cosine of a word vector to the mean word vector;
- ``norm_popularity_corr``: correlation of ‖v_i‖ with log(1 + popularity);
- ``popularity_overlap@10``: mean share of a query's top 10 in the popularity top 10;
- ``pairwise_jaccard@10``: mean Jaccard of the top 10 of two different queries.
"""

from __future__ import annotations

import numpy as np

from recflow.text import Vocabulary
from recflow.zsl.ranking import top_k


def top10_overlap_and_jaccard(
    rankings: list[np.ndarray], popular: np.ndarray, k: int = 10
) -> tuple[float, float]:
    """Mean |top-k ∩ popular top-k| / k, and mean pairwise Jaccard of the top-k sets."""
    if not rankings:
        return float("nan"), float("nan")
    pop = set(popular[:k].tolist())
    sets = [set(r[:k].tolist()) for r in rankings]
    overlap = float(np.mean([len(s & pop) / k for s in sets]))
    pairs = [len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1 :] if a | b]
    return overlap, float(np.mean(pairs)) if pairs else float("nan")


def query_dependence(
    item_vectors: np.ndarray,
    word_vectors: np.ndarray,
    vocab: Vocabulary,
    popularity: np.ndarray | None = None,
    n_queries: int = 300,
    min_item_count: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """The measurements above on up to ``n_queries`` one-word queries (words in at least
    ``min_item_count`` items, drawn with ``seed``), scoring v_i · w_t."""
    words = np.array(
        [
            i
            for i, t in enumerate(vocab.terms)
            if " " not in t and vocab.item_counts[i] >= min_item_count
        ],
        dtype=np.int64,
    )
    if len(words) < 2:
        raise ValueError(f"need >= 2 words in >= {min_item_count} items, found {len(words)}")
    rng = np.random.default_rng(seed)
    words = np.sort(rng.choice(words, min(n_queries, len(words)), replace=False))
    w = word_vectors[words].astype(np.float64)
    scores = item_vectors.astype(np.float64) @ w.T  # (n_items, queries)
    centred = scores - scores.mean(axis=0, keepdims=True)
    sv = np.linalg.svd(centred, compute_uv=False)
    total = float((sv**2).sum())
    mean_w = w.mean(axis=0)
    norms = np.linalg.norm(w, axis=1) * np.linalg.norm(mean_w)
    cos = (w @ mean_w) / np.where(norms > 0, norms, 1.0)
    out = {
        "queries": float(len(words)),
        "pc1_share": float(sv[0] ** 2 / total) if total > 0 else 1.0,
        "word_cos_to_mean": float(cos.mean()),
    }
    rankings = [top_k(scores[:, j], 10) for j in range(scores.shape[1])]
    if popularity is not None:
        logpop = np.log1p(popularity.astype(np.float64))
        item_norm = np.linalg.norm(item_vectors, axis=1)
        out["norm_popularity_corr"] = float(np.corrcoef(item_norm, logpop)[0, 1])
        overlap, jaccard = top10_overlap_and_jaccard(rankings, top_k(logpop, 10))
        out["popularity_overlap@10"] = overlap
    else:
        _, jaccard = top10_overlap_and_jaccard(rankings, rankings[0])
    out["pairwise_jaccard@10"] = jaccard
    return out
