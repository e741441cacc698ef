"""The fused score by hand, title hits first, fallbacks, and tuning that leaves no edge."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recflow.metrics import ndcg_at_k
from recflow.text import Vocabulary
from recflow.zsl.ensemble import (
    PriorEnsembleScorer,
    PriorScorer,
    item_prior,
    standardize,
    tune_tag_weight,
)
from recflow.zsl.hybrid import (
    FusionWeights,
    HybridScorer,
    batch_ndcg,
    batch_overlap,
    batch_rr,
    title_first,
    tune_fusion,
)
from recflow.zsl.lexical import LexicalIndex, LexicalMatch, title_field
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import VectorScorer
from recflow.zsl.searcher_evals import (
    item_part,
    known_item_eval,
    known_item_queries,
    query_sensitivity,
    rank_of,
)

TITLES = [
    title_field("The Godfather", 1972),
    title_field("Goodfellas", 1990),
    title_field("Toy Story", 1995),
    title_field("Dark City", 1998),
]
FIELDS = [[TITLES[0], "mafia", "Crime"], [TITLES[1], "mafia", "Crime"], [TITLES[2]], [TITLES[3]]]
POP = np.array([10, 50, 100, 5])
VOCAB = Vocabulary(["mafia", "toys"], np.array([2, 1]))
WORDS = np.array([[1.0, 0.0], [0.0, 1.0]])
ITEMS = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.5, 0.5]])


def scorer(weights, popularity=POP):
    index = LexicalIndex.build(FIELDS, TITLES)
    vs = VectorScorer("toy", ITEMS, WORDS, VOCAB)
    return HybridScorer(index, vs, popularity, weights), index


def test_fused_score_by_hand():
    sc, index = scorer(FusionWeights(lexical=0.5, vector=2.0, prior=0.25))
    p = sc.parts("mafia")
    bm25 = index.match("mafia").scores
    lex = 0.5 * bm25 / bm25.max()
    vec = 2.0 * standardize(ITEMS @ WORDS[0])
    prior = 0.25 * standardize(np.log1p(POP.astype(float)))
    np.testing.assert_allclose(p.fused, lex + vec + prior)
    assert not p.match.title_hit.any()
    np.testing.assert_allclose(sc.scores("mafia"), lex + vec + prior)
    assert sc.name == "hybrid:toy+prior"


def test_title_hits_rank_first_whatever_the_weights():
    sc, _ = scorer(FusionWeights(lexical=0.0, vector=1.0, prior=100.0))
    # by prior alone Toy Story (100) leads; "godfather" names The Godfather's title
    assert top_k(sc.scores("godfather"), 1).tolist() == [0]
    assert top_k(sc.scores("goodfellas 1990"), 1).tolist() == [1]
    assert top_k(sc.scores("mafia"), 1).tolist() == [2]  # no title hit: the prior decides


def test_fallbacks():
    sc, _ = scorer(FusionWeights(1.0, 1.0, 1.0))
    s = sc.scores("zombies")
    assert sc.last_fallback and top_k(s, 1).tolist() == [2]  # the most popular
    no_prior, _ = scorer(FusionWeights(1.0, 1.0, 0.0), popularity=None)
    assert no_prior.scores("zombies") is None and no_prior.name == "hybrid:toy"
    # a word only the lexical index knows still answers (no fallback)
    assert top_k(no_prior.scores("city"), 1).tolist() == [3] and not no_prior.last_fallback


class Adversarial:
    """A vector part that ranks the relevant (popular) items last."""

    name = "adversarial"

    def __init__(self, popularity):
        self.s = -np.log1p(popularity.astype(float))

    def scores(self, query):
        return self.s


def test_tuning_widens_a_grid_whose_top_wins():
    rng = np.random.default_rng(0)
    n = 60
    pop = rng.integers(1, 1000, n)
    fields = [[f"item{i}"] for i in range(n)]
    index = LexicalIndex.build(fields, [None] * n)
    relevant = top_k(np.log1p(pop.astype(float)), 5)
    queries = [("anything", relevant)]
    # total = z(vec) + β z(prior) = (β − 1) z(prior): only β > 1 ranks the relevant first
    w, table = tune_fusion(index, Adversarial(pop), pop, queries, grid=(0.0, 0.5, 1.0))
    assert w.prior > 1.0 and w.lexical == 0.0
    assert max(r["prior"] for r in table) > w.prior  # the winner is not the top edge
    best = max(r["objective"] for r in table)
    assert best == pytest.approx(1.0)


class Noise:
    """A vector part that knows every query and ranks items by fixed noise."""

    name = "noise"

    def __init__(self, n: int, seed: int) -> None:
        self.s = np.random.default_rng(seed).normal(size=n)

    def scores(self, query):
        return self.s


def test_tuning_keeps_answers_off_the_popularity_list():
    """Tag queries about popular films reward a prior that answers every query with the
    popular list; the overlap requirement takes the best weights that do not."""
    rng = np.random.default_rng(3)
    n = 60
    pop = rng.integers(1, 1000, n)
    index = LexicalIndex.build([[f"item{i}"] for i in range(n)], [None] * n)
    popular = top_k(np.log1p(pop.astype(float)), 10)
    queries = [(f"q{i}", rng.choice(popular, 5, replace=False)) for i in range(4)]
    free, free_table = tune_fusion(index, Noise(n, 0), pop, queries)
    held, table = tune_fusion(index, Noise(n, 0), pop, queries, max_overlap=0.3)
    chosen = [r for r in table if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["prior"] == held.prior
    assert chosen[0]["blind_overlap@10"] <= 0.3
    assert max(r["blind_overlap@10"] for r in free_table if r["chosen"]) > 0.3
    assert held.prior < free.prior
    # every point that scores better breaks the requirement
    better = [r for r in table if r["objective"] > chosen[0]["objective"]]
    assert better and all(r["blind_overlap@10"] > 0.3 for r in better)
    # the overlap is the share of the ranked top 10 in the popular top 10, by brute force
    row = chosen[0]
    prior = item_prior(pop)
    noise = standardize(Noise(n, 0).s)
    match = index.match("q0")
    ranked = top_k(title_first(row["vector"] * noise + row["prior"] * prior, match), 10)
    assert row["blind_overlap@10"] == pytest.approx(np.isin(ranked, popular).mean())


def test_tuning_keeps_answers_off_the_tag_prior_list_too():
    """With text-tag counts in the prior, its own top 10 (the most-tagged films, not the
    most popular) is a query-blind list as well: the requirement bounds the overlap with
    whichever of the two lists the answers share more of."""
    rng = np.random.default_rng(4)
    n = 80
    pop = rng.integers(1, 1000, n)
    tags = np.zeros(n, dtype=np.int64)
    unpopular = np.argsort(pop)[:20]
    tags[unpopular] = rng.integers(5, 50, 20)  # the taggers tag films few others watch
    index = LexicalIndex.build([[f"item{i}"] for i in range(n)], [None] * n)
    rho = 3.0
    prior = item_prior(pop, tags, rho)
    popular, tagged = top_k(np.log1p(pop.astype(float)), 10), top_k(prior, 10)
    assert len(set(popular.tolist()) & set(tagged.tolist())) <= 2
    queries = [(f"q{i}", rng.choice(tagged, 5, replace=False)) for i in range(4)]
    kw = {"tag_counts": tags, "tag_weight": rho}
    free, _ = tune_fusion(index, Noise(n, 1), pop, queries, **kw)
    held, table = tune_fusion(index, Noise(n, 1), pop, queries, max_overlap=0.3, **kw)
    assert held.tags == rho and held.prior < free.prior
    noise = standardize(Noise(n, 1).s)

    def overlaps(row):
        ranked = top_k(
            title_first(row["vector"] * noise + row["prior"] * prior, index.match("q0")), 10
        )
        return np.isin(ranked, popular).mean(), np.isin(ranked, tagged).mean()

    for row in table:  # brute force: the larger of the two shares
        assert row["blind_overlap@10"] == pytest.approx(max(overlaps(row)))
    chosen = next(r for r in table if r["chosen"])
    assert chosen["blind_overlap@10"] <= 0.3
    # the free choice stays off the popular list but answers with the tagged one, which
    # the popularity list alone would not have caught
    free_row = next(r for r in table if r["prior"] == free.prior and r["lexical"] == free.lexical)
    pop_share, tag_share = overlaps(free_row)
    assert pop_share <= 0.3 < tag_share


@pytest.mark.parametrize("n_hits", [0, 4, 15])
def test_batch_overlap_equals_ranking_then_counting(n_hits):
    rng = np.random.default_rng(10 + n_hits)
    n = 200
    totals = rng.normal(size=(4, n))
    hit = np.zeros(n, dtype=bool)
    hit[rng.choice(n, n_hits, replace=False)] = True
    coverage = np.where(hit, rng.choice([0.5, 1.0], n), 0.0)
    match = LexicalMatch(np.zeros(n), [0], hit, coverage)
    popular = rng.choice(n, 10, replace=False)
    expected = [np.isin(top_k(title_first(t, match), 10), popular).mean() for t in totals]
    np.testing.assert_allclose(batch_overlap(totals, match, popular), expected)


def test_known_item_queries_and_ranks():
    items = pl.DataFrame(
        {
            "item_id": [7, 8, 9],
            "title": ["Toy Story", "Heat", None],
            "year": [1995, 1995, 2000],
        }
    )
    q = known_item_queries(items, np.array([9, 8, 7]), n_items=10, seed=0, part=None)
    got = {(k, s) for k, s, _, _ in q.iter_rows()}
    assert ("title_year", "Toy Story (1995)") in got and ("title", "Heat") in got
    drops = q.filter(pl.col("kind") == "drop_word").get_column("query").to_list()
    assert drops in (["Toy"], ["Story"])  # "Heat" has one word: no dropped-word query
    assert set(q.get_column("index").to_list()) == {1, 2}  # index order of the model
    # rank_of agrees with top_k's order, ties included
    s = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    order = top_k(s, 5).tolist()
    assert [rank_of(s, i) for i in range(5)] == [order.index(i) + 1 for i in range(5)]


def test_known_item_eval_by_hand():
    class Fixed:
        name = "fixed"

        def scores(self, query):
            return np.array([0.0, 1.0, 2.0]) if query == "a" else None

    q = pl.DataFrame(
        {"kind": ["title", "title"], "query": ["a", "b"], "item_id": [1, 2], "index": [1, 2]}
    )
    summary, by_kind, per_query = known_item_eval([Fixed()], q, references=())
    # "a": item 1 at rank 2 (rr 0.5, hit@3); "b": no answer (0, 0)
    row = summary.to_dicts()[0]
    assert row["mrr"] == pytest.approx(0.25) and row["hit@3"] == pytest.approx(0.5)
    assert per_query.get_column("rank").to_list() == [2, -1]
    assert by_kind.get_column("kind").to_list() == ["title"]


def test_query_sensitivity_by_hand():
    pop = np.arange(20)

    class Popular:
        name = "popular"

        def scores(self, query):
            return pop.astype(float)

    class PerQuery:
        name = "per_query"

        def scores(self, query):
            s = np.zeros(20)
            s[:10] = 1.0 if query == "a" else 0.0
            s[10:] = 0.0 if query == "a" else 1.0
            return s

    out = {
        r["method"]: r
        for r in query_sensitivity([Popular(), PerQuery()], ["a", "b"], pop).to_dicts()
    }
    assert out["popular"]["popularity_overlap@10"] == 1.0
    assert out["popular"]["pairwise_jaccard@10"] == 1.0
    # "a" → items 0..9 (none popular), "b" → items 10..19 (the popular top 10)
    assert out["per_query"]["popularity_overlap@10"] == pytest.approx(0.5)
    assert out["per_query"]["pairwise_jaccard@10"] == 0.0
    assert "prior_overlap@10" not in out["popular"]  # no prior besides popularity
    # a search prior whose top 10 is items 5..14: half of each answer, half of popularity's
    prior = -np.abs(np.arange(20) - 9.5)
    rows = query_sensitivity([Popular(), PerQuery()], ["a", "b"], pop, prior=prior).to_dicts()
    assert [r["prior_overlap@10"] for r in rows] == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("n_hits", [0, 3, 120])
def test_batch_ndcg_equals_ranking_then_ndcg(n_hits):
    rng = np.random.default_rng(n_hits)
    n, k = 500, 100
    totals = rng.normal(size=(6, n))
    hit = np.zeros(n, dtype=bool)
    hit[rng.choice(n, n_hits, replace=False)] = True
    coverage = np.where(hit, rng.choice([0.5, 2 / 3, 1.0], n), 0.0)
    match = LexicalMatch(np.zeros(n), [0], hit, coverage)
    relevant = rng.choice(n, 40, replace=False)
    expected = [ndcg_at_k(top_k(title_first(t, match), k), relevant, k) for t in totals]
    np.testing.assert_allclose(batch_ndcg(totals, match, relevant, k), expected)


@pytest.mark.parametrize("target_hit", [False, True])
def test_batch_rr_equals_rank_of_the_title_first_order(target_hit):
    rng = np.random.default_rng(int(target_hit))
    n = 300
    totals = np.round(rng.normal(size=(5, n)), 1)  # rounded: ties happen
    hit = np.zeros(n, dtype=bool)
    hit[rng.choice(n, 30, replace=False)] = True
    target = int(np.flatnonzero(hit)[0] if target_hit else np.flatnonzero(~hit)[0])
    coverage = np.where(hit, rng.choice([0.5, 1.0], n), 0.0)
    match = LexicalMatch(np.zeros(n), [0], hit, coverage)
    expected = [1 / rank_of(title_first(t, match), target) for t in totals]
    np.testing.assert_allclose(batch_rr(totals, match, target), expected)


def test_known_item_halves_are_disjoint_and_stable():
    items = pl.DataFrame(
        {"item_id": list(range(1, 401)), "title": [f"Film {i}" for i in range(1, 401)]}
    )
    ids = np.arange(1, 401)
    val = known_item_queries(items, ids, n_items=400, part="validation")
    test = known_item_queries(items, ids, n_items=400, part="test")
    v, t = set(val.get_column("item_id")), set(test.get_column("item_id"))
    assert not v & t and len(v | t) == 400 and 150 < len(v) < 250
    assert all(item_part(i) == "validation" for i in v)


def test_tag_prior_mixes_tag_counts_into_the_prior():
    tags = np.array([0, 0, 0, 40])
    pop_z = standardize(np.log1p(POP.astype(float)))
    # ρ = 0 (or no counts) is the popularity prior exactly
    np.testing.assert_array_equal(item_prior(POP, tags, 0.0), pop_z)
    np.testing.assert_array_equal(item_prior(POP, None, 2.0), pop_z)
    mixed = standardize(pop_z + 2.0 * standardize(np.log1p(tags.astype(float))))
    np.testing.assert_allclose(item_prior(POP, tags, 2.0), mixed)
    index = LexicalIndex.build(FIELDS, TITLES)
    vs = VectorScorer("toy", ITEMS, WORDS, VOCAB)
    w = FusionWeights(lexical=0.0, vector=0.0, prior=1.0, tags=2.0)
    sc = HybridScorer(index, vs, POP, w, tag_counts=tags)
    np.testing.assert_allclose(sc.parts("mafia").prior, mixed)
    assert top_k(sc.scores("mafia"), 1).tolist() == [3]  # the much-tagged, least popular film
    # without the counts the same weights rank by popularity
    assert top_k(HybridScorer(index, vs, POP, w).scores("mafia"), 1).tolist() == [2]
    with pytest.raises(ValueError, match="tag counts"):
        HybridScorer(index, vs, POP, w, tag_counts=tags[:2])


def test_tag_weight_is_tuned_on_the_prior_alone():
    pop = np.array([100, 50, 1, 1])
    tags = np.array([0, 0, 9, 5])
    # the relevant items are the tagged ones: any ρ > 0 that lifts them wins, the smallest first
    rho, grid = tune_tag_weight(pop, tags, [("q", np.array([2, 3]))], grid=(0.0, 0.5, 8.0))
    assert grid[0.0] < grid[rho] == max(grid.values())
    assert rho == min(r for r, v in grid.items() if v == grid[rho])
    # popular relevant items: ρ = 0
    rho, _ = tune_tag_weight(pop, tags, [("q", np.array([0, 1]))], grid=(0.0, 0.5, 8.0))
    assert rho == 0.0
    sc = PriorScorer(pop, tags, 1.0)
    np.testing.assert_allclose(sc.scores("anything"), item_prior(pop, tags, 1.0))
    assert PriorEnsembleScorer(sc, pop, 1.0, tags, 1.0).name.endswith("+tag prior")


def test_tuned_weights_carry_the_tag_weight():
    index = LexicalIndex.build(FIELDS, TITLES)
    vs = VectorScorer("toy", ITEMS, WORDS, VOCAB)
    tags = np.array([0, 0, 0, 40])
    queries = [("mafia", np.array([0, 1]))]
    w, _ = tune_fusion(index, vs, POP, queries, tag_counts=tags, tag_weight=1.4)
    assert w.tags == 1.4
    w, _ = tune_fusion(index, vs, POP, queries, use_prior=False, tag_counts=tags, tag_weight=1.4)
    assert w.tags == 0.0  # no prior, nothing to mix into
