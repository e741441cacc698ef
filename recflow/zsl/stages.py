"""The ZSL stages (Wu et al., CIKM 2020) as plain functions: what each asset runs.

vocabulary → model (train, tune the popularity prior per scoring, measure query
dependence, save) → checks; the evaluations (reconstruction, test queries, known items,
query sensitivity, planted synonyms), the hybrid search index and the daily warm-start
refresh. Each ``run_<stage>`` takes typed inputs and a config, writes into the folder it
is given and returns what the caller shows; nothing here knows about Dagster, so a
method change is made in this package only.

An evaluation writes ``summary.parquet`` (the rows a report reads: floats rounded to 4
places) into its folder, plus the tables its charts need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from recflow.cooc import CoocArtifact
from recflow.data.dataset import CanonicalDataset
from recflow.progress import ProgressFn
from recflow.store import read_json, write_json
from recflow.text import TextConfig
from recflow.zsl.artifact import SavedModel, save_model
from recflow.zsl.diagnostics import query_dependence
from recflow.zsl.ensemble import (
    PriorEnsembleScorer,
    PriorScorer,
    item_prior,
    tune_prior_weight,
    tune_tag_weight,
)
from recflow.zsl.evaluate import (
    constant_similarity_fn,
    context_similarity_fn,
    cosine_similarity_fn,
    planted_synonym_queries,
    planted_synonym_test,
    query_retrieval,
    random_similarity_fn,
    recall_curve,
    reconstruction_recall,
    sparse_cosine_similarity_fn,
)
from recflow.zsl.hybrid import HybridScorer
from recflow.zsl.inputs import ZslInputs
from recflow.zsl.models import ZslConfig, ZslModel, train
from recflow.zsl.pipeline import (
    VocabularyArtifact,
    build_lexical_index,
    build_vocabulary_folder,
    item_titles,
    load_inputs,
    text_tag_counts,
)
from recflow.zsl.queries import QuerySplit, check_query_split, eval_queries
from recflow.zsl.refresh import RefreshConfig, RefreshStats, warm_start_refresh
from recflow.zsl.scorers import (
    SCORINGS,
    PopularityScorer,
    QueryScorer,
    RandomScorer,
    TfidfScorer,
    VectorScorer,
)
from recflow.zsl.search_index import (
    SearchConfig,
    SearchIndex,
    load_search_index,
    save_search_index,
    tune_all,
)
from recflow.zsl.searcher_evals import known_item_eval, known_item_queries, query_sensitivity

TFIDF_PRIOR = "tfidf+prior"
TFIDF_TAG_PRIOR = "tfidf+tag prior"
BM25_PRIOR = "bm25+prior"
MAX_PC1_SHARE = 0.9
"""A model whose first principal direction explains this share of the item-score variance
across one-word queries ranks every query alike (``check_model``'s query_dependent)."""
QUERY_DEPENDENCE_FILE = "query_dependence.json"
SUMMARY = "summary"


@dataclass(frozen=True)
class ModelSettings:
    """What the model stage sets around the solver.

    target: y_ij on co-consumed pairs, ``binary`` (1) or ``count`` (log(1 + count));
    scoring: how the saved model scores a query by default (``dot`` or ``cosine``), the
    scoring whose tuned prior weight becomes the model's ``prior_weight``.
    """

    target: str = "binary"
    scoring: str = "dot"

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")


def zsl_inputs(
    dataset: CanonicalDataset,
    cooc: CoocArtifact,
    vocabulary: VocabularyArtifact,
    target: str = "binary",
) -> ZslInputs:
    """The solver inputs: the matrix, the vocabulary's item–term table, the popularity."""
    return load_inputs(
        Path(cooc.matrix),
        Path(cooc.item_index),
        vocabulary.folder,
        dataset.interactions_path,
        target,
    )


def rounded_rows(df: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``df`` with floats rounded to 4 places (what reports and tables show)."""
    return [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
        for r in df.to_dicts()
    ]


def write_table(out_dir: Path, name: str, rows: list[dict[str, Any]] | pl.DataFrame) -> Path:
    """``<out_dir>/<name>.parquet`` from rows (or a frame)."""
    df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows)
    path = Path(out_dir) / f"{name}.parquet"
    df.write_parquet(path)
    return path


def _write_summary(out_dir: Path, summary: pl.DataFrame) -> list[dict[str, Any]]:
    rows = rounded_rows(summary)
    write_table(out_dir, SUMMARY, pl.DataFrame(rows, schema=summary.schema))
    return rows


# --- vocabulary --------------------------------------------------------------------------


@dataclass(frozen=True)
class VocabularyResult:
    """Vocabulary numbers (terms, items with text, …) and evaluation queries per part."""

    stats: dict[str, int | float]
    query_counts: dict[str, int]


def run_vocabulary(
    dataset: CanonicalDataset,
    out_dir: Path,
    text: TextConfig,
    split: QuerySplit,
    check_split: bool = True,
) -> VocabularyResult:
    """Write the vocabulary folder into ``out_dir``.

    With ``check_split`` (and a queries table), first raise ``ValueError`` when the split
    leaves too few validation or test queries: a second here rather than a failed
    evaluation after every model trained. The synthetic world's queries are planted
    synonyms, not tags, so it skips the check.
    """
    queries = dataset.queries()
    counts: dict[str, int] = {}
    if check_split and queries is not None:
        item_ids = dataset.items().get_column("item_id").to_numpy()
        counts = check_query_split(queries, item_ids, split)
    stats = build_vocabulary_folder(dataset, out_dir, text, split)
    return VocabularyResult(stats, counts)


# --- models ------------------------------------------------------------------------------


@dataclass
class ModelResult:
    """A trained model and what was measured on it.

    prior_weights / prior_grids: β per scoring and its validation NDCG@100 per grid value
    (empty without validation queries); prior_weight: β of the shipped scoring;
    dependence: ``diagnostics.query_dependence``.
    """

    model: ZslModel
    prior_weight: float | None
    prior_weights: dict[str, float]
    prior_grids: dict[str, dict[float, float]]
    dependence: dict[str, float]


def tune_priors(
    method: str,
    item_vectors: np.ndarray,
    word_vectors: np.ndarray,
    inputs: ZslInputs,
    validation: Sequence[tuple[str, np.ndarray]],
) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    """β per scoring on the validation queries (each scoring ranks differently, so each
    gets its own), and the grid behind each choice; empty without validation queries."""
    betas: dict[str, float] = {}
    grids: dict[str, dict[float, float]] = {}
    for scoring in SCORINGS if validation else ():
        scorer = VectorScorer(method, item_vectors, word_vectors, inputs.vocab, scoring)
        betas[scoring], grids[scoring] = tune_prior_weight(scorer, inputs.popularity, validation)
    return betas, grids


def run_model(
    method: str,
    dataset: CanonicalDataset,
    cooc: CoocArtifact,
    vocabulary: VocabularyArtifact,
    config: ZslConfig,
    settings: ModelSettings,
    out_dir: Path,
    device: torch.device | str = "cpu",
    on_progress: ProgressFn | None = None,
) -> ModelResult:
    """Train ``method``, tune its prior per scoring on the vocabulary's validation queries,
    measure query dependence, and save it all into ``out_dir`` (``artifact.save_model``
    plus ``query_dependence.json``)."""
    if config.method != method:
        raise ValueError(f"config is for {config.method!r}, the stage trains {method!r}")
    inputs = zsl_inputs(dataset, cooc, vocabulary, settings.target)
    model = train(inputs, config, device, on_progress)
    text_config, split = vocabulary.text_config(), vocabulary.query_split()
    queries = dataset.queries()
    val = (
        eval_queries(queries, inputs.item_ids, split, "validation")
        if queries is not None and split is not None
        else []
    )
    betas, grids = tune_priors(method, model.item_vectors, model.word_vectors, inputs, val)
    dependence = query_dependence(
        model.item_vectors, model.word_vectors, inputs.vocab, inputs.popularity
    )
    beta = betas.get(settings.scoring)
    save_model(
        out_dir,
        model,
        inputs.vocab,
        inputs.item_ids,
        text_config,
        item_titles(dataset, inputs.item_ids),
        inputs.popularity,
        beta,
        settings.scoring,
        betas,
    )
    write_json(dependence, Path(out_dir) / QUERY_DEPENDENCE_FILE)
    return ModelResult(model, beta, betas, grids, dependence)


@dataclass(frozen=True)
class CheckOutcome:
    """One named check of a saved model: passed or not, and the numbers behind it."""

    name: str
    passed: bool
    metadata: dict[str, float]


MODEL_CHECKS = ("finite_vectors", "loss_decreasing", "query_dependent")


def check_model(model: SavedModel, max_pc1_share: float = MAX_PC1_SHARE) -> list[CheckOutcome]:
    """The outcomes of ``MODEL_CHECKS`` on a saved model, in that order.

    finite_vectors: every item and word vector entry is finite; loss_decreasing: each
    iteration's loss is at most the one before (relative slack 1e-6); query_dependent:
    the saved ``pc1_share`` is below ``max_pc1_share`` (fails when it was not measured).
    """
    finite = bool(np.isfinite(model.item_vectors).all() and np.isfinite(model.word_vectors).all())
    h = np.asarray(model.meta["loss_history"], dtype=np.float64)
    decreasing = bool(len(h) < 2 or (np.diff(h) <= 1e-6 * np.abs(h[:-1])).all())
    dep_path = model.root / QUERY_DEPENDENCE_FILE
    dep = {k: float(v) for k, v in read_json(dep_path).items()} if dep_path.exists() else {}
    return [
        CheckOutcome("finite_vectors", finite, {}),
        CheckOutcome("loss_decreasing", decreasing, {"first": float(h[0]), "last": float(h[-1])}),
        CheckOutcome("query_dependent", bool(dep) and dep["pc1_share"] < max_pc1_share, dep),
    ]


# --- evaluation inputs and scorers -------------------------------------------------------


@dataclass
class EvaluationInputs:
    """What every evaluation reads: the dataset, the solver inputs (binary target), the
    saved models by method, and the vocabulary's query split."""

    dataset: CanonicalDataset
    inputs: ZslInputs
    models: dict[str, SavedModel]
    split: QuerySplit | None

    def tag_queries(self, part: str) -> list[tuple[str, np.ndarray]]:
        """The (query, relevant indices) of one part of the split; raises without a
        queries table or a split."""
        queries = self.dataset.queries()
        if queries is None or self.split is None:
            raise ValueError(f"{self.dataset.root}: no queries table to evaluate on")
        return eval_queries(queries, self.inputs.item_ids, self.split, part)


def load_evaluation_inputs(
    dataset: CanonicalDataset,
    cooc: CoocArtifact,
    vocabulary: VocabularyArtifact,
    models: Mapping[str, SavedModel],
) -> EvaluationInputs:
    """``EvaluationInputs`` from the declared upstream artifacts."""
    return EvaluationInputs(
        dataset, zsl_inputs(dataset, cooc, vocabulary), dict(models), vocabulary.query_split()
    )


def model_scorer(name: str, model: SavedModel, scoring: str | None = None) -> VectorScorer:
    """``model``'s vectors as a scorer, at ``scoring`` or the model's shipped one."""
    scoring = scoring or model.meta.get("scoring", "dot")
    return VectorScorer(name, model.item_vectors, model.word_vectors, model.vocab, scoring)


def baseline_scorers(inputs: ZslInputs) -> list[QueryScorer]:
    """Popularity and random: the floors every text method must beat."""
    return [PopularityScorer(inputs.popularity), RandomScorer(inputs.n_items)]


def text_scorers(inputs: ZslInputs, models: Mapping[str, SavedModel]) -> list[QueryScorer]:
    """TF-IDF and each model's vectors: the scorers that read the query's words (and so
    the ones a popularity prior is tuned for)."""
    tfidf: QueryScorer = TfidfScorer(inputs.item_terms, inputs.vocab)
    return [tfidf, *(model_scorer(m, sm) for m, sm in models.items())]


def with_tuned_prior(
    scorer: QueryScorer,
    popularity: np.ndarray,
    validation: Sequence[tuple[str, np.ndarray]],
    tag_counts: np.ndarray | None = None,
    tag_weight: float = 0.0,
) -> PriorEnsembleScorer:
    """``scorer`` + β · prior, β tuned on ``validation`` (0 without validation queries);
    the prior is popularity, or its mix with the text-tag counts at ρ = ``tag_weight``."""
    beta = (
        tune_prior_weight(
            scorer, popularity, validation, tag_counts=tag_counts, tag_weight=tag_weight
        )[0]
        if validation
        else 0.0
    )
    return PriorEnsembleScorer(scorer, popularity, beta, tag_counts, tag_weight)


def tag_prior_scorers(
    index: SearchIndex, ev: EvaluationInputs, validation: Sequence[tuple[str, np.ndarray]]
) -> list[QueryScorer]:
    """The index's tag+popularity prior alone and TF-IDF with it (β tuned on
    ``validation``): query-blind and keyword references for the tag-query evaluation,
    which show how far knowing which films the taggers tag goes on its own. Empty when
    the index has no tag counts."""
    rho = index.tag_weight if index.tag_counts is not None else 0.0
    if not rho:
        return []
    pop, tags = ev.inputs.popularity, index.tag_counts
    tfidf = TfidfScorer(ev.inputs.item_terms, ev.inputs.vocab)
    return [PriorScorer(pop, tags, rho), with_tuned_prior(tfidf, pop, validation, tags, rho)]


def hybrid_scorers(
    index: SearchIndex, ev: EvaluationInputs, with_no_prior: bool = False
) -> list[QueryScorer]:
    """bm25+prior and hybrid:<model>+prior at each model's shipped scoring, with the
    search index's weights (tuned on validation queries only); the no-prior hybrids too
    when asked."""
    pop, tags = ev.inputs.popularity, index.tag_counts
    out: list[QueryScorer] = [
        HybridScorer(index.lexical, None, pop, index.weights("bm25", "none", True), tag_counts=tags)
    ]
    priors = (True, False) if with_no_prior else (True,)
    for m, sm in ev.models.items():
        vs = model_scorer(m, sm)
        for prior in priors:
            w = index.weights(m, vs.scoring, prior)
            out.append(HybridScorer(index.lexical, vs, pop if prior else None, w, tag_counts=tags))
    return out


def searcher_scorers(
    ev: EvaluationInputs,
    index: SearchIndex,
    validation: Sequence[tuple[str, np.ndarray]],
    with_no_prior: bool = False,
) -> list[QueryScorer]:
    """Popularity, TF-IDF+prior, each model alone (when ``with_no_prior``) and with its
    saved prior weight, the tag-prior references (``tag_prior_scorers``) and the hybrids:
    the rows of the searcher-facing evaluations."""
    pop = ev.inputs.popularity
    out: list[QueryScorer] = [
        PopularityScorer(pop),
        with_tuned_prior(TfidfScorer(ev.inputs.item_terms, ev.inputs.vocab), pop, validation),
    ]
    for m, sm in ev.models.items():
        vs = model_scorer(m, sm)
        if with_no_prior:
            out.append(vs)
        out.append(PriorEnsembleScorer(vs, pop, sm.prior_weight_for(vs.scoring) or 0.0))
    out += tag_prior_scorers(index, ev, validation)
    return out + hybrid_scorers(index, ev, with_no_prior)


# --- evaluations -------------------------------------------------------------------------


def run_reconstruction(ev: EvaluationInputs, out_dir: Path) -> list[dict[str, Any]]:
    """Correlation reconstruction recall (paper table 1) per similarity: each model's
    cosine v_i·v_j (and v_i·u_j where it has context vectors), TF-IDF cosine, popularity
    and random. Writes and returns the summary rows."""
    inputs = ev.inputs
    sims = {
        f"{m} (cosine v_i·v_j)": cosine_similarity_fn(sm.item_vectors)
        for m, sm in ev.models.items()
    }
    sims |= {
        f"{m} (v_i·u_j)": context_similarity_fn(sm.item_vectors, sm.context_vectors)
        for m, sm in ev.models.items()
        if sm.context_vectors is not None
    }
    sims["tfidf (cosine)"] = sparse_cosine_similarity_fn(
        TfidfScorer(inputs.item_terms, inputs.vocab).items
    )
    sims["popularity"] = constant_similarity_fn(np.log1p(inputs.popularity.astype(float)))
    sims["random"] = random_similarity_fn(inputs.n_items, 0)
    rows = [{"method": name} | reconstruction_recall(inputs.cooc, fn) for name, fn in sims.items()]
    write_table(out_dir, SUMMARY, rows)
    return rows


@dataclass
class RetrievalResult:
    """Summary rows (as written to summary.parquet), the recall@K curve, query counts."""

    summary: list[dict[str, Any]]
    curve: pl.DataFrame
    test_queries: int
    validation_queries: int


def run_query_eval(ev: EvaluationInputs, index: SearchIndex, out_dir: Path) -> RetrievalResult:
    """Zero-shot retrieval on the test tag queries: popularity, random, TF-IDF and each
    model alone, the same text scorers with a prior tuned on the validation queries, and
    the index's tag prior alone and with TF-IDF (when it has one), and the hybrid search;
    paired NDCG differences to popularity, TF-IDF+prior, BM25+prior and TF-IDF+tag prior."""
    test, val = ev.tag_queries("test"), ev.tag_queries("validation")
    pop = ev.inputs.popularity
    text = text_scorers(ev.inputs, ev.models)
    scorers = [
        *baseline_scorers(ev.inputs),
        *text,
        *(with_tuned_prior(s, pop, val) for s in text),
        *tag_prior_scorers(index, ev, val),
        *hybrid_scorers(index, ev),
    ]
    refs = [TFIDF_PRIOR, BM25_PRIOR, TFIDF_TAG_PRIOR]
    summary, _ = query_retrieval(scorers, test, more_references=refs)
    curve = recall_curve(scorers, test)
    write_table(out_dir, "recall_curve", curve)
    return RetrievalResult(_write_summary(out_dir, summary), curve, len(test), len(val))


def run_synonyms(ev: EvaluationInputs, out_dir: Path) -> RetrievalResult:
    """The planted-synonym test (synthetic world): each query word occurs in no relevant
    item's text, so only co-consumption can link them."""
    queries = planted_synonym_queries(
        ev.dataset.extra("item_truth"), ev.dataset.extra("synonyms"), ev.inputs.item_ids
    )
    scorers = [*baseline_scorers(ev.inputs), *text_scorers(ev.inputs, ev.models)]
    summary = planted_synonym_test(scorers, queries)
    curve = recall_curve(scorers, queries)
    write_table(out_dir, "recall_curve", curve)
    return RetrievalResult(_write_summary(out_dir, summary), curve, len(queries), 0)


@dataclass
class SearchIndexResult:
    """The index as saved, and how it was tuned (the grid rows, the query counts)."""

    index: SearchIndex
    grid: list[dict[str, Any]]
    validation_queries: int
    validation_known_item_queries: int


def run_search_index(
    ev: EvaluationInputs,
    out_dir: Path,
    config: SearchConfig = SearchConfig(),  # noqa: B008 (frozen, so a shared default is safe)
) -> SearchIndexResult:
    """Build the BM25 index over all item text and tune the fusion weights of every
    (model, scoring, prior) on the validation tag queries plus title queries of the
    validation half of the items (the known-item evaluation asks only for the test half);
    save into ``out_dir``.

    Each item's count of text-part tags is saved too, with the weight ρ that mixes it into
    the prior best on the validation tags (``ensemble.tune_tag_weight``): the evaluations
    show that prior as a reference, and ``config.tag_prior`` fuses it into the search's
    prior as well (``SearchConfig``).
    """
    queries = ev.dataset.queries()
    val = ev.tag_queries("validation") if queries is not None and ev.split is not None else []
    if not val:
        raise ValueError(f"{ev.dataset.root}: no validation queries to tune the search on")
    lexical = build_lexical_index(ev.dataset, ev.inputs.item_ids, ev.split)
    pop = ev.inputs.popularity
    tags = text_tag_counts(ev.dataset, ev.inputs.item_ids, ev.split)
    rho, rho_grid = tune_tag_weight(pop, tags, val) if tags is not None else (0.0, {})
    fused_rho = rho if config.tag_prior else 0.0
    known = known_item_queries(ev.dataset.items(), ev.inputs.item_ids, 100, part="validation")
    pairs = list(zip(known.get_column("query"), known.get_column("index"), strict=True))
    weights, val_objective, grid = tune_all(
        lexical,
        ev.models,
        pop,
        val,
        known_items=pairs,
        tag_counts=tags if fused_rho else None,
        tag_weight=fused_rho,
        max_overlap=config.max_popularity_overlap,
    )
    grid += [{"config": "tag_prior", "tags": r, "objective": v} for r, v in rho_grid.items()]
    model_dirs = {m: str(sm.root) for m, sm in ev.models.items()}
    tag_meta = {"weight": rho, "fused": bool(fused_rho), "validation_ndcg@100": rho_grid}
    save_search_index(
        out_dir, lexical, model_dirs, weights, val_objective, len(val), tags, tag_meta
    )
    return SearchIndexResult(load_search_index(out_dir), grid, len(val), len(pairs))


@dataclass
class KnownItemResult:
    """Summary and per-kind rows (rounded, as written) and the queries asked."""

    summary: list[dict[str, Any]]
    by_kind: list[dict[str, Any]]
    queries: pl.DataFrame


def run_known_items(ev: EvaluationInputs, index: SearchIndex, out_dir: Path) -> KnownItemResult:
    """Known-item search for 300 seeded items of the test half: MRR and hit@3 with CIs and
    paired differences to popularity, TF-IDF+prior and BM25+prior."""
    val = ev.tag_queries("validation")
    queries = known_item_queries(ev.dataset.items(), ev.inputs.item_ids, part="test")
    scorers = searcher_scorers(ev, index, val)
    summary, by_kind, _ = known_item_eval(
        scorers, queries, references=["popularity", TFIDF_PRIOR, BM25_PRIOR]
    )
    write_table(out_dir, "by_kind", pl.DataFrame(rounded_rows(by_kind), schema=by_kind.schema))
    return KnownItemResult(_write_summary(out_dir, summary), rounded_rows(by_kind), queries)


def run_query_sensitivity(
    ev: EvaluationInputs, index: SearchIndex, out_dir: Path
) -> tuple[list[dict[str, Any]], int]:
    """Over the test tag queries: mean share of each method's top 10 in the popularity
    top 10 (and in the search prior's top 10 when that prior counts text tags), and mean
    Jaccard between two queries' top 10s. Returns (rows, queries)."""
    test, val = ev.tag_queries("test"), ev.tag_queries("validation")
    scorers = searcher_scorers(ev, index, val, with_no_prior=True)
    pop, rho = ev.inputs.popularity, index.fused_tag_weight
    prior = item_prior(pop, index.tag_counts, rho) if rho else None
    summary = query_sensitivity(scorers, [q for q, _ in test], pop, prior=prior)
    return _write_summary(out_dir, summary), len(test)


# --- refresh -----------------------------------------------------------------------------


def run_refresh(
    previous: SavedModel,
    dataset: CanonicalDataset,
    cooc: CoocArtifact,
    vocabulary: VocabularyArtifact,
    config: RefreshConfig,
    out_dir: Path,
    device: torch.device | str = "cpu",
    on_progress: ProgressFn | None = None,
) -> tuple[ZslModel, RefreshStats]:
    """Warm-start ``previous`` on today's matrix and vocabulary (paper §5.4) and save the
    result into ``out_dir`` with the previous model's scoring and prior weights."""
    inputs = zsl_inputs(dataset, cooc, vocabulary)
    model, stats = warm_start_refresh(
        previous, inputs, config.iterations, device, on_progress=on_progress
    )
    save_model(
        out_dir,
        model,
        inputs.vocab,
        inputs.item_ids,
        vocabulary.text_config(),
        item_titles(dataset, inputs.item_ids),
        inputs.popularity,
        previous.prior_weight,
        previous.meta.get("scoring", "dot"),
        previous.meta.get("prior_weights"),
    )
    return model, stats
