"""Evaluations a searcher would agree with: known-item queries and query sensitivity.

- ``known_item_queries``: from the items table, for a seeded sample of items, the film's
  title with its year ("Toy Story (1995)"), its title alone ("Toy Story") and its title
  with one word dropped ("Story"); the answer is that film. ``known_item_eval`` reports
  MRR and hit@3 per method (bootstrap CIs over items, paired differences to references).
- ``query_sensitivity``: for the queries a method knows a word of, the mean share of its
  top 10 that is the popularity top 10, and the mean Jaccard between the top 10s of two
  different queries (a ranking that ignores the query scores 1.0 on both).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import polars as pl

from recflow.zsl.diagnostics import top10_overlap_and_jaccard
from recflow.zsl.evaluate import bootstrap_mean_ci
from recflow.zsl.lexical import title_field
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import QueryScorer

KINDS = ("title_year", "title", "drop_word")


def item_part(item_id: int) -> str:
    """ "validation" or "test" by a stable hash of the item id (half each): the known-item
    queries that tune the fusion never name a film the evaluation asks for."""
    digest = hashlib.blake2b(f"known-item:{int(item_id)}".encode(), digest_size=8).digest()
    return "validation" if int.from_bytes(digest, "little") < 2**63 else "test"


def known_item_queries(
    items: pl.DataFrame,
    item_ids: np.ndarray,
    n_items: int = 300,
    seed: int = 0,
    part: str | None = "test",
) -> pl.DataFrame:
    """(kind, query, item_id, index) for a seeded sample of ``n_items`` indexed items with
    a title (of ``part``'s items; None: all): "title (year)", "title", and the title with
    one seeded word dropped (titles of two or more words only). ``item_ids``: index →
    item id of the model."""
    pos = pl.DataFrame({"item_id": item_ids.astype(np.int64), "index": np.arange(len(item_ids))})
    cols = ["item_id", "title"] + (["year"] if "year" in items.columns else [])
    pool = (
        items.select(cols)
        .join(pos, on="item_id", how="inner")
        .filter(pl.col("title").is_not_null() & (pl.col("title").str.strip_chars() != ""))
        .sort("item_id")
    )
    if part is not None:
        keep = [item_part(i) == part for i in pool.get_column("item_id").to_list()]
        pool = pool.filter(pl.Series(keep, dtype=pl.Boolean))
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(pool.height, min(n_items, pool.height), replace=False))
    rows = []
    for r in pool[take].iter_rows(named=True):
        title, year = r["title"], r.get("year")
        base = {"item_id": r["item_id"], "index": r["index"]}
        if year is not None:
            rows.append({"kind": "title_year", "query": title_field(title, year)} | base)
        rows.append({"kind": "title", "query": title} | base)
        words = title.split()
        if len(words) >= 2:
            drop = int(rng.integers(len(words)))
            rows.append(
                {"kind": "drop_word", "query": " ".join(words[:drop] + words[drop + 1 :])} | base
            )
    return pl.DataFrame(
        rows,
        schema={"kind": pl.String, "query": pl.String, "item_id": pl.Int64, "index": pl.Int64},
    )


def rank_of(scores: np.ndarray | None, target: int) -> int:
    """1-based rank of ``target`` under ``top_k``'s order (ties → smaller index first);
    a scorer with nothing to say ranks it last."""
    if scores is None:
        return -1
    s = scores[target]
    idx = np.arange(len(scores))
    ahead = (scores > s) | ((scores == s) & (idx < target))
    return int(ahead.sum()) + 1


def known_item_per_query(scorers: Sequence[QueryScorer], queries: pl.DataFrame) -> pl.DataFrame:
    """One row per (method, query): rank, reciprocal rank, hit@3 (no answer: 0)."""
    rows = []
    for sc in scorers:
        for kind, q, _, index in queries.iter_rows():
            rank = rank_of(sc.scores(q), int(index))
            rr = 1.0 / rank if rank > 0 else 0.0
            rows.append(
                {
                    "method": sc.name,
                    "kind": kind,
                    "query": q,
                    "index": int(index),
                    "rank": rank,
                    "rr": rr,
                    "hit@3": float(0 < rank <= 3),
                }
            )
    return pl.DataFrame(rows)


def paired_summary(
    per_query: pl.DataFrame,
    metrics: Sequence[str],
    keys: Sequence[str],
    references: Sequence[str] = (),
    n_boot: int = 2000,
    seed: int = 0,
) -> pl.DataFrame:
    """Mean of each metric per method with a 95% bootstrap CI, and the paired difference
    of the first metric to each reference method (rows matched on ``keys``) with its CI."""
    methods = per_query.get_column("method").unique(maintain_order=True).to_list()
    by = {m: per_query.filter(pl.col("method") == m).sort(*keys) for m in methods}
    out = []
    first = metrics[0]
    for m in methods:
        df = by[m]
        row: dict[str, float | int | str] = {"method": m, "queries": df.height}
        for metric in metrics:
            v = df.get_column(metric).to_numpy().astype(np.float64)
            lo, hi = bootstrap_mean_ci(v, n_boot, seed)
            row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = float(v.mean()), lo, hi
        for ref in references:
            if ref not in by:
                continue
            other = by[ref]
            if other.select(keys).to_dicts() != df.select(keys).to_dicts():
                raise ValueError(f"{m} and {ref} were not scored on the same queries")
            diff = df.get_column(first).to_numpy() - other.get_column(first).to_numpy()
            lo, hi = bootstrap_mean_ci(diff, n_boot, seed)
            row[f"{first}_minus_{ref}"] = float(diff.mean())
            row[f"{first}_minus_{ref}_lo"], row[f"{first}_minus_{ref}_hi"] = lo, hi
        out.append(row)
    return pl.DataFrame(out)


def known_item_eval(
    scorers: Sequence[QueryScorer],
    queries: pl.DataFrame,
    references: Sequence[str] = ("popularity",),
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(summary over all queries, summary per kind, per-query table): MRR and hit@3."""
    if queries.height == 0:
        raise ValueError("no known-item queries (does the items table have titles?)")
    per_query = known_item_per_query(scorers, queries)
    per_query = per_query.rename({"rr": "mrr"})
    summary = paired_summary(
        per_query, ["mrr", "hit@3"], ["kind", "index"], references, n_boot, seed
    )
    by_kind = pl.concat(
        [
            paired_summary(
                per_query.filter(pl.col("kind") == k), ["mrr", "hit@3"], ["index"], (), n_boot, seed
            ).with_columns(pl.lit(k).alias("kind"))
            for k in KINDS
            if per_query.filter(pl.col("kind") == k).height
        ],
        how="diagonal",
    )
    return summary, by_kind, per_query


def _known(scorer: QueryScorer, query: str) -> np.ndarray | None:
    """The scorer's scores when it knows a word of ``query``, else None (fallbacks count
    as not knowing: a popularity fallback is not an answer to the query)."""
    s = scorer.scores(query)
    if s is None or getattr(scorer, "last_fallback", False):
        return None
    return s


def query_sensitivity(
    scorers: Sequence[QueryScorer],
    queries: Sequence[str],
    popularity: np.ndarray,
    k: int = 10,
    n_boot: int = 2000,
    seed: int = 0,
    prior: np.ndarray | None = None,
) -> pl.DataFrame:
    """Per method, over the queries it knows a word of: mean overlap of the top ``k`` with
    the popularity top ``k`` (with a bootstrap CI), mean pairwise Jaccard of top ``k``s,
    and, given the search's query-blind ``prior`` (when it is not popularity alone), the
    mean overlap with that prior's top ``k``: the list a query would get if it did not
    matter."""
    popular = top_k(np.log1p(popularity.astype(np.float64)), k)
    pop_set = set(popular.tolist())
    prior_top = top_k(prior, k) if prior is not None else None
    rows = []
    for sc in scorers:
        rankings = []
        for q in queries:
            s = _known(sc, q)
            if s is not None:
                rankings.append(top_k(s, k))
        overlap, jaccard = top10_overlap_and_jaccard(rankings, popular, k)
        per = np.array([len(set(r.tolist()) & pop_set) / k for r in rankings])
        lo, hi = bootstrap_mean_ci(per, n_boot, seed)
        rows.append(
            {
                "method": sc.name,
                "queries": len(queries),
                "known_queries": len(rankings),
                f"popularity_overlap@{k}": overlap,
                f"popularity_overlap@{k}_lo": lo,
                f"popularity_overlap@{k}_hi": hi,
                f"pairwise_jaccard@{k}": jaccard,
            }
        )
        if prior_top is not None:
            rows[-1][f"prior_overlap@{k}"] = top10_overlap_and_jaccard(rankings, prior_top, k)[0]
    return pl.DataFrame(rows)
