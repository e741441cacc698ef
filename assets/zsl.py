"""The ZSL sub-graph of a dataset: zero-shot search from co-consumption (Wu et al., CIKM 2020).

vocabulary → stl / zsl_me / zsl_te models (+ checks) → the hybrid search index, the
reconstruction and query evaluations (+ the planted-synonym test on synthetic data) and
a warm-start refresh. Every asset loads its declared inputs, calls one
``recflow.zsl.stages.run_<stage>`` and shows the result; the method lives there.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg
import polars as pl

from assets.config import config_class, library_kwargs
from assets.cooc import cooc_key
from assets.daily import REFRESH_TAG
from assets.datasets import dataset_key
from assets.groups import group_name
from assets.metadata import bar_chart, line_chart, markdown_table, plt, png_markdown
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.artifacts import EvaluationArtifact
from recflow.cooc import CoocArtifact
from recflow.data.dataset import DatasetArtifact
from recflow.text import TextConfig
from recflow.zsl.artifact import ZslModelArtifact
from recflow.zsl.models import METHODS, ZslConfig
from recflow.zsl.pipeline import VocabularyArtifact
from recflow.zsl.queries import TagSplitConfig
from recflow.zsl.refresh import RefreshConfig
from recflow.zsl.search_index import SearchConfig, SearchIndexArtifact
from recflow.zsl.stages import (
    MAX_PC1_SHARE,
    MODEL_CHECKS,
    EvaluationInputs,
    ModelResult,
    ModelSettings,
    SearchIndexResult,
    check_model,
    load_evaluation_inputs,
    run_known_items,
    run_model,
    run_query_eval,
    run_query_sensitivity,
    run_reconstruction,
    run_refresh,
    run_search_index,
    run_synonyms,
    run_vocabulary,
)

CODE_VERSION = "4"
T = TypeVar("T")

ZslVocabularyConfig = config_class(
    "ZslVocabularyConfig",
    TextConfig,
    TagSplitConfig,
    doc="Item text → terms (TextConfig), and the split of the query strings into item "
    "text, validation and test (TagSplitConfig): a string is in exactly one part.",
)
ZslSyntheticVocabularyConfig = config_class(
    "ZslSyntheticVocabularyConfig",
    TextConfig,
    TagSplitConfig,
    overrides={"tag_text_share": 0.0},
    doc="On the synthetic world the queries are the planted synonym words: none of them "
    "may become item text, or the synonym test would measure a leak.",
)
_MODEL_EXCLUDE = {"method": "fixed by the asset: one asset per method"}
ZslModelConfig = config_class(
    "ZslModelConfig",
    ZslConfig,
    ModelSettings,
    exclude=_MODEL_EXCLUDE,
    doc="Solver settings (ZslConfig; paper: dim 200, ω0 0.001, λ 4, 10 iterations; here "
    "λ 1, ω0 0.01: at the paper's values STL and ZSL_ME collapse to one direction on "
    "ml_small), the matrix target and the shipped scoring (ModelSettings).",
)
ZslSyntheticModelConfig = config_class(
    "ZslSyntheticModelConfig",
    ZslConfig,
    ModelSettings,
    exclude=_MODEL_EXCLUDE,
    overrides={"lam": 1.0, "omega0": 0.01},
    doc="The synthetic world's settings: with the paper's λ=4, ω0=0.001 every method stays "
    "near random there; λ=1, ω0=0.01 gave ZSL_TE 0.73 NDCG@100 on the synonym queries "
    "(STL 0.08, TF-IDF 0.02).",
)
ZslRefreshConfig = config_class("ZslRefreshConfig", RefreshConfig)
ZslSearchIndexConfig = config_class(
    "ZslSearchIndexConfig",
    SearchConfig,
    doc="How the hybrid search index is built (SearchConfig): whether its prior mixes in "
    "each item's count of text-part tags.",
)


def zsl_key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, name])


def _recall_chart(curve: pl.DataFrame) -> dg.MetadataValue:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method in curve.get_column("method").unique(maintain_order=True).to_list():
        df = curve.filter(pl.col("method") == method)
        ax.plot(df.get_column("k"), df.get_column("recall"), marker="o", markersize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("recall@K")
    ax.legend(fontsize=7)
    return png_markdown(fig)


def _model_metadata(r: ModelResult, final: str) -> dict[str, Any]:
    """Loss curve, the tuned prior weights with their grid, and the query dependence."""
    method = r.model.config.method
    grid = [
        {"scoring": sc, "beta": b, "ndcg@100": v}
        for sc, g in r.prior_grids.items()
        for b, v in g.items()
    ]
    return {
        "loss": line_chart(
            {"loss": r.model.loss_history},
            f"{method} training loss",
            "iteration (1 = init)",
            "loss",
        ),
        "final_loss": r.model.loss_history[-1],
        "train_seconds": r.model.train_seconds,
        "prior_weight": -1.0 if r.prior_weight is None else r.prior_weight,
        **{f"prior_weight ({sc})": b for sc, b in r.prior_weights.items()},
        "prior_tuning (validation ndcg@100)": markdown_table(grid),
        "query_dependence": markdown_table(
            [{"measure": k, "value": round(v, 4)} for k, v in r.dependence.items()]
        ),
        "path": dg.MetadataValue.path(final),
    }


def _search_index_metadata(r: SearchIndexResult, final: str) -> dict[str, Any]:
    """Fusion weights per (model, scoring, prior) with their validation objective."""
    meta = r.index.meta
    rows = [
        {"config": k, **w, "validation objective": round(meta["validation_objective"][k], 4)}
        for k, w in meta["weights"].items()
    ]
    return {
        "weights": markdown_table(rows),
        "default": f"{r.index.default_model} ({r.index.default_scoring})",
        "lexical_terms": len(r.index.lexical.vocab),
        "tag_prior_weight": r.index.tag_weight,
        "tag_prior_fused": bool(meta.get("tag_prior", {}).get("fused", False)),
        "validation_queries": r.validation_queries,
        "validation_known_item_queries": r.validation_known_item_queries,
        "grid_points": len(r.grid),
        "path": dg.MetadataValue.path(final),
    }


def _evaluation_inputs(
    dataset: DatasetArtifact,
    cooc: CoocArtifact,
    vocab: VocabularyArtifact,
    *models: ZslModelArtifact,
) -> EvaluationInputs:
    return load_evaluation_inputs(dataset.load(), cooc, vocab, {m.method: m.load() for m in models})


def build_zsl_assets(dataset: str, synthetic: bool = False, queries: bool = True) -> list:
    """The ZSL assets and checks of ``dataset``; ``synthetic`` adds the synonym test;
    ``queries`` (the dataset has a queries table) adds the query evaluations."""
    group = group_name(dataset, "zsl")
    vocab_key = zsl_key(dataset, "zsl_vocabulary")
    model_keys = {m: zsl_key(dataset, f"{m}_model") for m in METHODS}
    index_key = zsl_key(dataset, "zsl_search_index")
    vocab_config = ZslSyntheticVocabularyConfig if synthetic else ZslVocabularyConfig
    model_config = ZslSyntheticModelConfig if synthetic else ZslModelConfig
    data_ins = {
        "dataset_artifact": dg.AssetIn(key=dataset_key(dataset)),
        "cooc": dg.AssetIn(key=cooc_key(dataset)),
        "vocab": dg.AssetIn(key=vocab_key),
    }
    eval_ins = {**data_ins, **{m: dg.AssetIn(key=k) for m, k in model_keys.items()}}
    indexed_ins = {**eval_ins, "index": dg.AssetIn(key=index_key)}

    def zsl_asset(name: str, **kwargs: Any) -> Callable:
        """``dg.asset`` for ``<dataset>/<name>`` in this sub-graph's group and code version."""
        return dg.asset(
            key=zsl_key(dataset, name), group_name=group, code_version=CODE_VERSION, **kwargs
        )

    @dg.asset(
        key=vocab_key,
        ins={"dataset_artifact": dg.AssetIn(key=dataset_key(dataset))},
        group_name=group,
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description="Vocabulary (unigrams + in-field bigrams of title, tag-text part, genres) and the item–term table.",
    )
    def vocabulary(
        config: vocab_config, dataset_artifact: DatasetArtifact, store: StoreResource
    ) -> dg.Output[VocabularyArtifact]:
        text = TextConfig(**library_kwargs(config, TextConfig))
        split = TagSplitConfig(**library_kwargs(config, TagSplitConfig)).query_split()
        try:
            final, result = store.in_new_version(
                f"{dataset}/zsl_vocabulary",
                lambda out: run_vocabulary(
                    dataset_artifact.load(), out, text, split, check_split=not synthetic
                ),
            )
        except ValueError as e:  # a split that leaves too few queries: fail before training
            raise dg.Failure(f"{dataset}/zsl_vocabulary: {e}") from e
        meta = {
            **result.stats,
            **{f"{part} queries": n for part, n in result.query_counts.items()},
            "path": dg.MetadataValue.path(final),
        }
        return dg.Output(VocabularyArtifact(final), metadata=meta)

    def make_model(method: str) -> list:
        @dg.asset(
            key=model_keys[method],
            ins=data_ins,
            group_name=group,
            kinds={"torch", "scipy"},
            code_version=CODE_VERSION,
            description=f"{method.upper()} (Wu et al. 2020 §4): weighted ALS over all implicit negatives, solved exactly; popularity prior tuned on validation queries.",
        )
        def _model(
            context: dg.AssetExecutionContext,
            config: model_config,
            dataset_artifact: DatasetArtifact,
            cooc: CoocArtifact,
            vocab: VocabularyArtifact,
            store: StoreResource,
            torch_device: TorchDeviceResource,
        ) -> dg.Output[ZslModelArtifact]:
            cfg = ZslConfig(**library_kwargs(config, ZslConfig, method=method))
            settings = ModelSettings(**library_kwargs(config, ModelSettings))
            device = torch_device.resolve(context.log)
            final, r = store.in_new_version(
                f"{dataset}/{method}_model",
                lambda out: run_model(
                    method,
                    dataset_artifact.load(),
                    cooc,
                    vocab,
                    cfg,
                    settings,
                    out,
                    device,
                    log_progress(context, method),
                ),
            )
            return dg.Output(ZslModelArtifact(final, method), metadata=_model_metadata(r, final))

        @dg.multi_asset_check(
            name=f"{dataset}__{method}_model_checks",
            specs=[
                dg.AssetCheckSpec(
                    name,
                    asset=model_keys[method],
                    blocking=name != "query_dependent",
                    description=(
                        "Rankings depend on the query: the first principal direction "
                        f"explains < {MAX_PC1_SHARE:.0%} of item-score variance across "
                        "one-word queries (a collapsed model ranks every query alike)."
                    )
                    if name == "query_dependent"
                    else None,
                )
                for name in MODEL_CHECKS
            ],
            ins={"model": dg.AssetIn(key=model_keys[method])},
        )
        def _checks(model: ZslModelArtifact):
            for outcome in check_model(model.load()):
                yield dg.AssetCheckResult(
                    asset_key=model_keys[method],
                    check_name=outcome.name,
                    passed=outcome.passed,
                    metadata=outcome.metadata,
                )

        return [_model, _checks]

    @zsl_asset(
        "zsl_reconstruction",
        ins=eval_ins,
        kinds={"sklearn"},
        description="Correlation reconstruction recall (paper table 1): share of an item's k co-consumed neighbours among its top-k by similarity.",
    )
    def reconstruction(
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, rows = store.in_new_version(
            f"{dataset}/zsl_reconstruction", lambda out: run_reconstruction(ev, out)
        )
        names, recalls = [r["method"] for r in rows], [r["recall"] for r in rows]
        meta = {
            "table": markdown_table(rows),
            "recall": bar_chart(names, recalls, "reconstruction recall", "method"),
        }
        return dg.Output(EvaluationArtifact(final), metadata=meta)

    @zsl_asset(
        "zsl_queries",
        ins=indexed_ins,
        kinds={"sklearn"},
        description="Zero-shot retrieval on held-out test queries (≥3 relevant items): R-precision, recall@10/100, NDCG@100 with bootstrap CIs; models alone, with the popularity prior + fallback, and the tag+popularity prior alone and with TF-IDF (references: how far a query-blind ranking of the most-tagged films goes), and the hybrid search; paired NDCG differences to popularity, TF-IDF+prior, BM25+prior and TF-IDF+tag prior.",
    )
    def queries_eval(
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
        index: SearchIndexArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, r = store.in_new_version(
            f"{dataset}/zsl_queries", lambda out: run_query_eval(ev, index.load(), out)
        )
        meta = {
            "summary": markdown_table(r.summary),
            "recall@K": _recall_chart(r.curve),
            "test_queries": r.test_queries,
            "validation_queries": r.validation_queries,
        }
        return dg.Output(EvaluationArtifact(final), metadata=meta)

    @zsl_asset(
        "zsl_search_index",
        ins=eval_ins,
        kinds={"scipy"},
        description="The default search: BM25 over all item text (title with year, text-part tags, genres; no word dropped for rarity; words folded to a common form, text.fold) fused with each model's vectors and a prior of popularity and text-tag counts (SearchConfig.tag_prior), title hits first; fusion weights tuned per (model, scoring, prior) on validation tag queries plus title queries of the validation half of the films (NDCG@100 + MRR), widening any grid whose edge wins, among settings whose answers keep at most 30% of the popularity top 10 and of the prior's top 10.",
    )
    def search_index(
        config: ZslSearchIndexConfig,
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
    ) -> dg.Output[SearchIndexArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, r = store.in_new_version(
            f"{dataset}/zsl_search_index",
            lambda out: run_search_index(
                ev, out, SearchConfig(**library_kwargs(config, SearchConfig))
            ),
        )
        return dg.Output(
            SearchIndexArtifact(final, r.index.default_model, r.index.default_scoring),
            metadata=_search_index_metadata(r, final),
        )

    @zsl_asset(
        "zsl_known_items",
        ins=indexed_ins,
        description="Known-item search: for 300 seeded items of the test half (by item-id hash), the title with its year, the title alone and the title with one word dropped must find that film. MRR and hit@3 with bootstrap CIs and paired differences to popularity, TF-IDF+prior and BM25+prior. The fusion was tuned on the other half's films only.",
    )
    def known_items(
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
        index: SearchIndexArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, r = store.in_new_version(
            f"{dataset}/zsl_known_items", lambda out: run_known_items(ev, index.load(), out)
        )
        meta = {
            "summary": markdown_table(r.summary),
            "by kind": markdown_table(r.by_kind),
            "queries": r.queries.height,
            "examples": markdown_table(r.queries.head(9).to_dicts()),
        }
        return dg.Output(EvaluationArtifact(final), metadata=meta)

    @zsl_asset(
        "zsl_query_sensitivity",
        ins=indexed_ins,
        description="Does the answer depend on the query? Over the test tag queries a method knows a word of: mean share of its top 10 in the popularity top 10 (CI), in the search prior's top 10 (when the prior counts text tags), and mean Jaccard between two queries' top 10s.",
    )
    def sensitivity(
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
        index: SearchIndexArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, (rows, n) = store.in_new_version(
            f"{dataset}/zsl_query_sensitivity",
            lambda out: run_query_sensitivity(ev, index.load(), out),
        )
        meta = {"summary": markdown_table(rows), "queries": n}
        return dg.Output(EvaluationArtifact(final), metadata=meta)

    @zsl_asset(
        "zsl_synonyms",
        ins=eval_ins,
        description="Planted-synonym test: query = a word that no relevant item's text contains; only co-consumption can link them.",
    )
    def synonyms(
        store: StoreResource,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        stl: ZslModelArtifact,
        zsl_me: ZslModelArtifact,
        zsl_te: ZslModelArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        ev = _evaluation_inputs(dataset_artifact, cooc, vocab, stl, zsl_me, zsl_te)
        final, r = store.in_new_version(
            f"{dataset}/zsl_synonyms", lambda out: run_synonyms(ev, out)
        )
        meta = {"summary": markdown_table(r.summary), "recall@K": _recall_chart(r.curve)}
        return dg.Output(EvaluationArtifact(final), metadata=meta)

    @dg.asset(
        key=zsl_key(dataset, "zsl_te_refresh"),
        ins={"previous": dg.AssetIn(key=model_keys["zsl_te"]), **data_ins},
        group_name=group,
        kinds={"torch"},
        tags={REFRESH_TAG: "daily"},  # the daily_refresh schedule picks it up
        code_version=CODE_VERSION,
        description="Daily warm start (paper §5.4): the previous ZSL_TE vectors carried over by id/term, new items and words added, a few solves on today's matrix.",
    )
    def refresh(
        context: dg.AssetExecutionContext,
        config: ZslRefreshConfig,
        previous: ZslModelArtifact,
        dataset_artifact: DatasetArtifact,
        cooc: CoocArtifact,
        vocab: VocabularyArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[ZslModelArtifact]:
        cfg = RefreshConfig(**library_kwargs(config, RefreshConfig))
        device = torch_device.resolve(context.log)
        final, (model, stats) = store.in_new_version(
            f"{dataset}/zsl_te_refresh",
            lambda out: run_refresh(
                previous.load(),
                dataset_artifact.load(),
                cooc,
                vocab,
                cfg,
                out,
                device,
                log_progress(context, "refresh"),
            ),
        )
        meta = dataclasses.asdict(stats) | {
            "train_seconds": model.train_seconds,
            "loss": line_chart({"loss": model.loss_history}, "refresh loss", "iteration", "loss"),
        }
        return dg.Output(ZslModelArtifact(final, previous.method), metadata=meta)

    assets: list = [vocabulary, reconstruction, refresh]
    if queries:
        assets += [queries_eval, search_index, sensitivity]
        if not synthetic:
            assets.append(known_items)
    if synthetic:
        assets.append(synonyms)
    for m in METHODS:
        assets += make_model(m)
    return assets
