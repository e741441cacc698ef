"""Evaluation pieces on hand-made cases, and the planted synonym property end to end."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recflow.zsl.ensemble import PriorEnsembleScorer, standardize, tune_prior_weight
from recflow.zsl.evaluate import (
    constant_similarity_fn,
    cosine_similarity_fn,
    planted_synonym_queries,
    query_retrieval,
    reconstruction_recall,
)
from recflow.zsl.models import ZslConfig, train
from recflow.zsl.queries import QuerySplit, eval_queries, part_of, tag_text
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import PopularityScorer, RandomScorer, TfidfScorer, VectorScorer
from recflow.zsl.sparse import CsrMatrix


def test_top_k_ties_and_exclude():
    s = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_k(s, 2).tolist() == [1, 2]
    assert top_k(s, 4).tolist() == [1, 2, 4, 3]
    assert top_k(s, 2, exclude=1).tolist() == [2, 4]
    assert top_k(s, 10).tolist() == [1, 2, 4, 3, 0]


def test_reconstruction_recall_by_hand():
    # item 0's neighbours {1, 2}; item 1's {0}; item 3 has none (skipped)
    m = CsrMatrix.from_coo(np.array([0, 0, 1]), np.array([1, 2, 0]), np.ones(3), (4, 4))
    v = np.array([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [1.0, -0.1]])
    # 0's top-2 by cosine: 1 and 3 → 1/2 ; 1's top-1: 0 → 1 ; mean 0.75
    got = reconstruction_recall(m, cosine_similarity_fn(v), max_items=None)
    assert got == {"recall": 0.75, "items": 2}
    # popularity [0, 1, 2, 3] top scores: row 0 → {3, 2} (1/2); row 1 → {3} (0)
    got = reconstruction_recall(m, constant_similarity_fn(np.arange(4.0)), max_items=None)
    assert got["recall"] == 0.25


def test_query_split_is_stable_and_exclusive():
    split = QuerySplit(text_share=0.5, validation_share=0.25, seed=1)
    q = pl.DataFrame(
        {
            "query": ["Funny", "funny ", "dark", "twist", "space", "Space"],
            "item_id": [1, 2, 1, 3, 3, 4],
        }
    )
    parts = {s: part_of(s, split) for s in ["funny", "dark", "twist", "space"]}
    assert part_of(" FUNNY", split) == parts["funny"]
    text = tag_text(q, split)
    text_tags = {t for tags in text.get_column("tags").to_list() for t in tags.split("|")}
    assert text_tags == {s for s, p in parts.items() if p == "text"}
    evaluated = set()
    for part in ("validation", "test"):
        evaluated |= {
            s for s, _ in eval_queries(q, np.array([1, 2, 3, 4]), split, part, min_relevant=1)
        }
    assert evaluated == {s for s, p in parts.items() if p != "text"}
    assert not evaluated & text_tags


def test_shares_over_many_strings():
    split = QuerySplit(text_share=0.5, validation_share=0.25)
    parts = [part_of(f"tag {i}", split) for i in range(4000)]
    assert abs(parts.count("text") / 4000 - 0.5) < 0.03
    assert abs(parts.count("validation") / 4000 - 0.25) < 0.03


def test_tune_prior_weight_and_fallback():
    pop = np.array([100, 1, 1, 50])

    class Fixed:
        name = "fixed"

        def scores(self, q):
            return None if q == "unknown" else np.array([0.0, 1.0, 0.9, 0.0])

    # relevant items are popular ones: the text score alone ranks them last
    queries = [("a", np.array([0, 3])), ("unknown", np.array([0]))]
    beta, grid = tune_prior_weight(Fixed(), pop, queries, grid=(0.0, 5.0))
    assert beta == 5.0 and grid[5.0] == 1.0 and grid[0.0] < 1.0
    ens = PriorEnsembleScorer(Fixed(), pop, 0.5)
    np.testing.assert_allclose(
        ens.scores("a"), standardize(np.array([0.0, 1, 0.9, 0])) + 0.5 * standardize(np.log1p(pop))
    )
    assert not ens.last_fallback
    assert top_k(ens.scores("unknown"), 1).tolist() == [0] and ens.last_fallback


def test_summary_counts_unknown_and_pairs_with_popularity():
    pop = np.array([3, 2, 1, 0])

    class Nothing:
        name = "nothing"

        def scores(self, q):
            return None

    summary, per_query = query_retrieval(
        [PopularityScorer(pop), Nothing()],
        [("q1", np.array([0, 1, 2])), ("q2", np.array([3, 0, 1]))],
    )
    row = summary.filter(pl.col("method") == "nothing").to_dicts()[0]
    assert row["no_known_term"] == 2 and row["ndcg@100"] == 0.0
    pop_row = summary.filter(pl.col("method") == "popularity").to_dicts()[0]
    assert pop_row["r_precision"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert row["ndcg@100_minus_popularity"] == pytest.approx(-pop_row["ndcg@100"])
    assert per_query.height == 4


def test_planted_synonyms_need_co_consumption(small_world):
    """Query = word_b; relevant = items with word_a: ZSL_TE must find them, TF-IDF cannot."""
    inputs, tables = small_world
    queries = planted_synonym_queries(
        tables.extras["item_truth"], tables.extras["synonyms"], inputs.item_ids
    )
    assert len(queries) == 10
    cfg = dict(dim=16, lam=1.0, omega0=0.01, text_omega0=0.01, iterations=6)
    te = train(inputs, ZslConfig(method="zsl_te", **cfg))
    stl = train(inputs, ZslConfig(method="stl", **cfg))
    scorers = [
        VectorScorer("zsl_te", te.item_vectors, te.word_vectors, inputs.vocab),
        VectorScorer("stl", stl.item_vectors, stl.word_vectors, inputs.vocab),
        TfidfScorer(inputs.item_terms, inputs.vocab),
        RandomScorer(inputs.n_items),
    ]
    summary, _ = query_retrieval(scorers, queries, reference=None)
    r = {row["method"]: row for row in summary.to_dicts()}
    # the query word is in no relevant item's text: keyword match ranks none of them on top
    assert r["tfidf"]["recall@10"] == 0.0
    assert r["zsl_te"]["r_precision"] > 0.25
    assert r["zsl_te"]["ndcg@100"] > r["stl"]["ndcg@100"] + 0.2
    assert r["zsl_te"]["ndcg@100"] > r["tfidf"]["ndcg@100"] + 0.2
    assert r["zsl_te"]["ndcg@100"] > r["random"]["ndcg@100"] + 0.2
