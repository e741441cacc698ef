"""The three evaluations of issue 3, each returning polars tables for the asset metadata.

1. ``reconstruction_recall`` (paper table 1): for an item with k neighbours in M, the share
   of them among its k nearest items by the method's similarity.
2. ``query_retrieval`` (paper §5.2): per query R-precision, recall@10/100, NDCG@100, with
   bootstrap confidence intervals over queries and paired differences to a reference.
3. ``planted_synonym_test``: queries made of a word absent from every relevant item's own
   text (synthetic data) — retrieval here must come from co-consumption.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from recflow.metrics import ndcg_at_k, r_precision, recall_at_k
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import QueryScorer, unit_rows
from recflow.zsl.sparse import CsrMatrix

RECALL_CURVE_KS = (1, 5, 10, 20, 50, 100, 200, 500)
METRICS = ("r_precision", "recall@10", "recall@100", "ndcg@100")

# (rows (b,), ) → (b, n) similarity of each row item to every item
SimilarityFn = Callable[[np.ndarray], np.ndarray]


def cosine_similarity_fn(vectors: np.ndarray) -> SimilarityFn:
    """Item–item cosine of dense vectors (n, d)."""
    unit = unit_rows(vectors)
    return lambda rows: unit[rows] @ unit.T


def context_similarity_fn(item_vectors: np.ndarray, context_vectors: np.ndarray) -> SimilarityFn:
    """The model's own prediction of m_ij: v_i·u_j."""
    return lambda rows: item_vectors[rows] @ context_vectors.T


def sparse_cosine_similarity_fn(rows_matrix) -> SimilarityFn:
    """Item–item cosine of l2-normalized sparse rows (e.g. TF-IDF)."""
    m = rows_matrix.tocsr()
    return lambda rows: np.asarray((m[rows] @ m.T).todense())


def constant_similarity_fn(scores: np.ndarray) -> SimilarityFn:
    """The same scores for every row item (popularity)."""
    return lambda rows: np.broadcast_to(scores, (len(rows), len(scores)))


def random_similarity_fn(n: int, seed: int) -> SimilarityFn:
    rng = np.random.default_rng(seed)
    return lambda rows: rng.random((len(rows), n))


def reconstruction_recall(
    cooc: CsrMatrix,
    similarity: SimilarityFn,
    max_items: int | None = 2000,
    seed: int = 0,
    batch: int = 256,
) -> dict[str, float]:
    """Mean over items with ≥ 1 neighbour of |top-k by similarity ∩ N_i| / k, k = |N_i|.

    The item itself is never its own neighbour. ``max_items`` samples items (seeded) to
    bound the cost; None uses all.
    """
    rows = np.flatnonzero(cooc.row_nnz > 0)
    if max_items is not None and len(rows) > max_items:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_items, replace=False))
    recalls = []
    for s in range(0, len(rows), batch):
        chunk = rows[s : s + batch]
        sims = similarity(chunk)
        for r, row_sims in zip(chunk, sims, strict=True):
            truth = cooc.indices[cooc.indptr[r] : cooc.indptr[r + 1]]
            got = top_k(row_sims, len(truth), exclude=int(r))
            recalls.append(np.isin(got, truth).sum() / len(truth))
    return {"recall": float(np.mean(recalls)) if recalls else float("nan"), "items": len(recalls)}


def query_metrics(scores: np.ndarray | None, relevant: np.ndarray) -> dict[str, float]:
    """The four metrics of one query; a scorer with nothing to say (None) scores zero."""
    if scores is None:
        return dict.fromkeys(METRICS, 0.0)
    ranked = top_k(scores, max(100, len(relevant)))
    return {
        "r_precision": r_precision(ranked, relevant),
        "recall@10": recall_at_k(ranked, relevant, 10),
        "recall@100": recall_at_k(ranked, relevant, 100),
        "ndcg@100": ndcg_at_k(ranked, relevant, 100),
    }


def per_query_table(
    scorers: Sequence[QueryScorer], queries: Sequence[tuple[str, np.ndarray]]
) -> pl.DataFrame:
    """One row per (method, query): the metrics and whether the scorer knew any term (a
    popularity fallback, ``last_fallback``, counts as not knowing one)."""
    rows = []
    for sc in scorers:
        for q, rel in queries:
            s = sc.scores(q)
            known = s is not None and not getattr(sc, "last_fallback", False)
            rows.append(
                {"method": sc.name, "query": q, "relevant": len(rel), "known": known}
                | query_metrics(s, rel)
            )
    return pl.DataFrame(rows)


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def summarize(
    per_query: pl.DataFrame,
    reference: str | None = "popularity",
    n_boot: int = 2000,
    seed: int = 0,
    more_references: Sequence[str] = (),
) -> pl.DataFrame:
    """Mean of each metric per method with a 95% bootstrap CI, the queries without a known
    term, and NDCG@100 paired difference to ``reference`` with its CI (``diff_lo/hi``) and
    to each of ``more_references`` (``ndcg@100_minus_<ref>`` with ``_lo``/``_hi``)."""
    ref = None
    if reference is not None and reference in per_query.get_column("method").unique().to_list():
        ref = per_query.filter(pl.col("method") == reference).sort("query")
    out = []
    for method in per_query.get_column("method").unique(maintain_order=True).to_list():
        df = per_query.filter(pl.col("method") == method).sort("query")
        row: dict[str, float | int | str] = {
            "method": method,
            "queries": df.height,
            "no_known_term": int((~df.get_column("known")).sum()),
        }
        for m in METRICS:
            v = df.get_column(m).to_numpy()
            lo, hi = bootstrap_mean_ci(v, n_boot, seed)
            row[m] = float(v.mean())
            row[f"{m}_lo"], row[f"{m}_hi"] = lo, hi
        if ref is not None:
            diff = df.get_column("ndcg@100").to_numpy() - ref.get_column("ndcg@100").to_numpy()
            lo, hi = bootstrap_mean_ci(diff, n_boot, seed)
            row[f"ndcg@100_minus_{reference}"] = float(diff.mean())
            row["diff_lo"], row["diff_hi"] = lo, hi
        for other in more_references:
            ref_df = per_query.filter(pl.col("method") == other).sort("query")
            if ref_df.height != df.height:
                continue
            diff = df.get_column("ndcg@100").to_numpy() - ref_df.get_column("ndcg@100").to_numpy()
            lo, hi = bootstrap_mean_ci(diff, n_boot, seed)
            col = f"ndcg@100_minus_{other}"
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = float(diff.mean()), lo, hi
        out.append(row)
    return pl.DataFrame(out)


def query_retrieval(
    scorers: Sequence[QueryScorer],
    queries: Sequence[tuple[str, np.ndarray]],
    reference: str | None = "popularity",
    n_boot: int = 2000,
    seed: int = 0,
    more_references: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(summary per method, per-query table) for the given scorers and queries."""
    if not queries:
        raise ValueError("no evaluation queries (check min_relevant and the query split)")
    per_query = per_query_table(scorers, queries)
    return summarize(per_query, reference, n_boot, seed, more_references), per_query


def recall_curve(
    scorers: Sequence[QueryScorer],
    queries: Sequence[tuple[str, np.ndarray]],
    ks: Sequence[int] = RECALL_CURVE_KS,
) -> pl.DataFrame:
    """Mean recall@K per method for each K (a long table: method, k, recall)."""
    rows = []
    kmax = max(ks)
    for sc in scorers:
        per_k = {k: [] for k in ks}
        for q, rel in queries:
            s = sc.scores(q)
            ranked = np.empty(0, dtype=np.int64) if s is None else top_k(s, kmax)
            for k in ks:
                per_k[k].append(recall_at_k(ranked, rel, k))
        rows += [{"method": sc.name, "k": k, "recall": float(np.mean(v))} for k, v in per_k.items()]
    return pl.DataFrame(rows)


def planted_synonym_queries(
    item_truth: pl.DataFrame,
    synonyms: pl.DataFrame,
    item_ids: np.ndarray,
) -> list[tuple[str, np.ndarray]]:
    """For each planted pair (word_a, word_b): query = word_b, relevant = the cluster's
    items whose synonym word is word_a (so the query word is never in their text)."""
    pos = pl.DataFrame({"item_id": item_ids.astype(np.int64), "_i": np.arange(len(item_ids))})
    truth = item_truth.join(pos, on="item_id", how="inner")
    out = []
    for cluster, a, b in synonyms.select("cluster", "word_a", "word_b").iter_rows():
        rel = truth.filter((pl.col("cluster") == cluster) & (pl.col("synonym_word") == a))
        idx = np.sort(rel.get_column("_i").to_numpy())
        if len(idx):
            out.append((b, idx))
    return out


def planted_synonym_test(
    scorers: Sequence[QueryScorer],
    queries: Sequence[tuple[str, np.ndarray]],
    item_text_has: Mapping[str, np.ndarray] | None = None,
) -> pl.DataFrame:
    """Summary per method on planted-synonym queries (no bootstrap reference)."""
    if item_text_has:
        for q, rel in queries:
            leaked = np.intersect1d(item_text_has.get(q, np.empty(0, np.int64)), rel)
            if len(leaked):
                raise ValueError(
                    f"planted query {q!r} occurs in the text of {len(leaked)} relevant items"
                )
    summary, _ = query_retrieval(scorers, queries, reference=None)
    return summary
