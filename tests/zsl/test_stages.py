"""The ZSL stage functions on small hand-made inputs and a tiny synthetic world."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recflow.artifacts import EvaluationArtifact, decode, encode
from recflow.cooc import CoocArtifact, CoocConfig, build_cooc
from recflow.data.dataset import write_dataset
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.store import write_json
from recflow.text import TextConfig, Vocabulary
from recflow.zsl.artifact import SavedModel, ZslModelArtifact, load_model
from recflow.zsl.ensemble import PriorEnsembleScorer
from recflow.zsl.models import METHODS, ZslConfig
from recflow.zsl.pipeline import VocabularyArtifact
from recflow.zsl.queries import QuerySplit, TagSplitConfig
from recflow.zsl.refresh import RefreshConfig
from recflow.zsl.search_index import SearchConfig, SearchIndexArtifact
from recflow.zsl.stages import (
    MODEL_CHECKS,
    ModelSettings,
    check_model,
    load_evaluation_inputs,
    rounded_rows,
    run_model,
    run_query_eval,
    run_reconstruction,
    run_refresh,
    run_search_index,
    run_synonyms,
    run_vocabulary,
    tag_prior_scorers,
    text_scorers,
    with_tuned_prior,
)

# --- hand-made --------------------------------------------------------------------------


def _saved(tmp_path: Path, item_vectors, loss, dependence=None) -> SavedModel:
    vocab = Vocabulary(["a", "b"], np.array([2, 1]))
    if dependence is not None:
        write_json(dependence, tmp_path / "query_dependence.json")
    return SavedModel(
        root=tmp_path,
        meta={"method": "stl", "loss_history": loss},
        item_vectors=np.asarray(item_vectors, dtype=np.float32),
        word_vectors=np.ones((2, 2), dtype=np.float32),
        context_vectors=None,
        vocab=vocab,
        items=pl.DataFrame({"index": [0, 1], "item_id": [10, 20]}),
    )


def test_check_model_passes_a_healthy_model(tmp_path):
    model = _saved(tmp_path, [[1, 0], [0, 1]], [10.0, 8.0, 8.0], {"pc1_share": 0.3})
    outcomes = check_model(model)
    assert [o.name for o in outcomes] == list(MODEL_CHECKS)
    assert all(o.passed for o in outcomes)
    assert outcomes[1].metadata == {"first": 10.0, "last": 8.0}
    assert outcomes[2].metadata == {"pc1_share": 0.3}


def test_check_model_names_each_failure(tmp_path):
    # NaN vector; loss rises 8 → 9; pc1_share 0.95 ≥ 0.9 (a collapsed model)
    model = _saved(tmp_path, [[np.nan, 0], [0, 1]], [10.0, 8.0, 9.0], {"pc1_share": 0.95})
    passed = {o.name: o.passed for o in check_model(model)}
    assert passed == {"finite_vectors": False, "loss_decreasing": False, "query_dependent": False}
    # the threshold is a parameter: at 0.99 the same share passes
    assert check_model(model, max_pc1_share=0.99)[2].passed


def test_check_model_tolerates_float_noise_but_not_a_missing_measurement(tmp_path):
    # a rise of 1e-7 relative to 1000 is below the 1e-6 slack; one loss value always passes
    model = _saved(tmp_path, [[1, 0], [0, 1]], [1000.0, 1000.0001])
    outcomes = {o.name: o for o in check_model(model)}
    assert outcomes["loss_decreasing"].passed
    assert not outcomes["query_dependent"].passed  # no query_dependence.json: not measured
    single = _saved(tmp_path / "x", [[1, 0], [0, 1]], [5.0])
    assert check_model(single)[1].passed


def test_tag_split_config_maps_onto_query_split():
    assert TagSplitConfig().query_split() == QuerySplit(0.5, 0.25, 0)
    assert TagSplitConfig(0.0, 0.4, 7).query_split() == QuerySplit(0.0, 0.4, 7)


def test_model_settings_reject_an_unknown_scoring():
    with pytest.raises(ValueError, match="scoring"):
        ModelSettings(scoring="bm25")


def test_rounded_rows_round_floats_only():
    df = pl.DataFrame({"method": ["a"], "n": [3], "x": [0.123456]})
    assert rounded_rows(df) == [{"method": "a", "n": 3, "x": 0.1235}]


def test_artifacts_hold_only_their_own_folder_and_round_trip():
    model = ZslModelArtifact("/s/ml/stl_model/v1", "stl")
    index = SearchIndexArtifact("/s/ml/zsl_search_index/v1", "stl", "dot")
    vocab = VocabularyArtifact("/s/ml/zsl_vocabulary/v1")
    for artifact in (model, index, vocab):
        assert decode(encode(artifact)) == artifact
    assert {f.name for f in dataclasses.fields(ZslModelArtifact)} == {"path", "method"}
    assert {f.name for f in dataclasses.fields(VocabularyArtifact)} == {"path"}


# --- a tiny synthetic world through every stage ------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Dataset, matrix and vocabulary of a 150-item synthetic world (as the assets build them)."""
    root = tmp_path_factory.mktemp("stages")
    cfg = SyntheticConfig(n_users=150, n_items=150, n_events=12_000, n_clusters=6, seed=3)
    tables = generate(cfg)
    ds = write_dataset(tables, root / "dataset")
    res = build_cooc(ds.interactions_path, root / "cooc", CoocConfig(), temp_dir=root)
    cooc = CoocArtifact(
        str(root / "cooc"), str(res.matrix_path), str(res.item_index_path), CoocConfig().top_k
    )
    (root / "vocab").mkdir()
    split = TagSplitConfig(tag_text_share=0.0).query_split()
    result = run_vocabulary(ds, root / "vocab", TextConfig(), split, check_split=False)
    return root, tables, ds, cooc, VocabularyArtifact(str(root / "vocab")), result


def test_vocabulary_writes_its_split_and_checks_it_on_request(world, tmp_path):
    _, tables, ds, _, vocab, result = world
    assert vocab.query_split() == QuerySplit(0.0, 0.25, 0)
    assert vocab.text_config() == TextConfig()
    assert result.query_counts == {}  # not checked
    terms, item_terms, _, _ = vocab.load()
    assert result.stats["terms"] == len(terms) > 0
    assert result.stats["items"] == tables.items.height
    # two query rows cannot fill a validation and a test part: fail before any training
    few = write_dataset(dataclasses.replace(tables, queries=tables.queries.head(2)), tmp_path / "d")
    (tmp_path / "v").mkdir()
    with pytest.raises(ValueError, match="validation"):
        run_vocabulary(few, tmp_path / "v", TextConfig(), vocab.query_split(), check_split=True)


@pytest.fixture(scope="module")
def trained(world):
    root, _, ds, cooc, vocab, _ = world
    models = {}
    for method in METHODS:
        out = root / f"{method}_model"
        out.mkdir()
        cfg = ZslConfig(method=method, dim=8, iterations=3)
        result = run_model(method, ds, cooc, vocab, cfg, ModelSettings(scoring="cosine"), out)
        models[method] = (ZslModelArtifact(str(out), method), result)
    return models


def test_model_stage_saves_what_it_tuned(trained):
    for method, (artifact, result) in trained.items():
        saved = artifact.load()
        assert saved.method == method and saved.meta["scoring"] == "cosine"
        assert set(result.prior_weights) == {"dot", "cosine"}  # one β per scoring
        assert saved.prior_weight == result.prior_weights["cosine"] == result.prior_weight
        for scoring, grid in result.prior_grids.items():  # β is the grid's best (ties: smaller)
            best = min(grid, key=lambda b: (-grid[b], b))
            assert result.prior_weights[scoring] == best
        assert [o.name for o in check_model(saved) if not o.passed] == []
        assert saved.meta["loss_history"] == result.model.loss_history


def test_model_stage_refuses_another_methods_config(world, tmp_path):
    _, _, ds, cooc, vocab, _ = world
    with pytest.raises(ValueError, match="zsl_te"):
        run_model("stl", ds, cooc, vocab, ZslConfig(method="zsl_te"), ModelSettings(), tmp_path)


@pytest.fixture(scope="module")
def evaluation(world, trained):
    root, _, ds, cooc, vocab, _ = world
    models = {m: a.load() for m, (a, _) in trained.items()}
    return load_evaluation_inputs(ds, cooc, vocab, models)


def test_scorers_that_get_a_prior_are_named(evaluation):
    text = text_scorers(evaluation.inputs, evaluation.models)
    assert [s.name for s in text] == ["tfidf", "stl", "zsl_me", "zsl_te"]
    assert all(s.scoring == "cosine" for s in text[1:])  # each model's shipped scoring
    no_val = with_tuned_prior(text[0], evaluation.inputs.popularity, [])
    assert isinstance(no_val, PriorEnsembleScorer) and no_val.prior_weight == 0.0
    assert no_val.name == "tfidf+prior"


def test_evaluations_write_the_summary_they_return(evaluation, tmp_path):
    (tmp_path / "rec").mkdir()
    rows = run_reconstruction(evaluation, tmp_path / "rec")
    assert [r["method"] for r in rows][-3:] == ["tfidf (cosine)", "popularity", "random"]
    assert [r["method"] for r in rows][:3] == [f"{m} (cosine v_i·v_j)" for m in METHODS]
    assert EvaluationArtifact(str(tmp_path / "rec")).table() == rows

    (tmp_path / "syn").mkdir()
    syn = run_synonyms(evaluation, tmp_path / "syn")
    assert EvaluationArtifact(str(tmp_path / "syn")).table() == syn.summary
    assert [r["method"] for r in syn.summary] == [
        "popularity", "random", "tfidf", "stl", "zsl_me", "zsl_te"
    ]  # fmt: skip


def test_query_eval_over_the_search_index(evaluation, tmp_path):
    (tmp_path / "index").mkdir()
    idx = run_search_index(evaluation, tmp_path / "index")
    assert idx.validation_queries == len(evaluation.tag_queries("validation")) > 0
    assert (idx.index.default_model, idx.index.default_scoring) in {
        (m, s) for m in METHODS for s in ("dot", "cosine")
    }
    (tmp_path / "q").mkdir()
    r = run_query_eval(evaluation, idx.index, tmp_path / "q")
    names = [row["method"] for row in r.summary]
    text = ["tfidf", "stl", "zsl_me", "zsl_te"]
    assert names[:6] == ["popularity", "random", *text]
    assert names[6:10] == [f"{t}+prior" for t in text]  # the text scorers, with a prior
    assert names[10] == "bm25+prior" and len(names) == 10 + 1 + len(METHODS)
    assert EvaluationArtifact(str(tmp_path / "q")).table() == r.summary
    assert r.test_queries == len(evaluation.tag_queries("test"))


def test_refresh_keeps_the_previous_scoring_and_prior(world, trained, tmp_path):
    _, _, ds, cooc, vocab, _ = world
    previous = trained["zsl_te"][0].load()
    model, stats = run_refresh(previous, ds, cooc, vocab, RefreshConfig(iterations=1), tmp_path)
    saved = load_model(tmp_path)
    assert stats.new_items == 0 and stats.kept_items == len(previous.items)  # same data
    assert len(model.loss_history) == 2  # initial loss + one solve
    assert saved.meta["scoring"] == "cosine"
    assert saved.meta["prior_weights"] == previous.meta["prior_weights"]


def test_text_tag_counts_count_the_text_part_only(world):
    from recflow.zsl.pipeline import text_tag_counts

    _, tables, ds, _, _, _ = world
    ids = tables.items.get_column("item_id").to_numpy()[::-1].copy()  # any order of items
    assert text_tag_counts(ds, ids, QuerySplit(0.0, 0.25, 0)) is None  # no text part
    assert text_tag_counts(ds, ids, None) is None
    counts = text_tag_counts(ds, ids, QuerySplit(1.0, 0.0, 0))  # every string is text
    q = tables.queries.with_columns(pl.col("query").str.to_lowercase().str.strip_chars())
    by_hand = dict(q.group_by("item_id").agg(pl.col("query").n_unique()).iter_rows())
    assert counts.tolist() == [by_hand.get(int(i), 0) for i in ids]
    assert counts.sum() > 0


def test_search_index_saves_no_tag_prior_without_text_tags(evaluation, tmp_path):
    (tmp_path / "index").mkdir()
    idx = run_search_index(evaluation, tmp_path / "index", SearchConfig(tag_prior=True))
    assert idx.index.tag_counts is None and idx.index.tag_weight == 0.0
    assert all(w["tags"] == 0.0 for w in idx.index.meta["weights"].values())
    assert tag_prior_scorers(idx.index, evaluation, evaluation.tag_queries("validation")) == []
