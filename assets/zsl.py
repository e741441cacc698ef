"""The ``zsl`` group: zero-shot search from co-consumption (Wu et al., CIKM 2020).

vocabulary → stl / zsl_me / zsl_te models (+ checks) → reconstruction and query
evaluations (+ the planted-synonym test on synthetic data) and a warm-start refresh.
Everything here is a thin call into ``recflow.zsl``.
"""

import dataclasses
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.cooc import cooc_key
from assets.daily import REFRESH_TAG
from assets.datasets import dataset_from_handle, dataset_key
from assets.defaults import library_defaults
from assets.metadata import bar_chart, line_chart, markdown_table, plt, png_markdown
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.store import read_json, write_json
from recflow.text import TextConfig
from recflow.zsl.artifact import load_model, save_model
from recflow.zsl.diagnostics import query_dependence
from recflow.zsl.ensemble import PriorEnsembleScorer, tune_prior_weight
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
from recflow.zsl.models import METHODS, ZslConfig, train
from recflow.zsl.pipeline import (
    build_lexical_index,
    build_vocabulary_folder,
    item_titles,
    load_inputs,
    read_vocabulary_folder,
)
from recflow.zsl.queries import QuerySplit, check_query_split, eval_queries
from recflow.zsl.refresh import warm_start_refresh
from recflow.zsl.scorers import (
    SCORINGS,
    PopularityScorer,
    RandomScorer,
    TfidfScorer,
    VectorScorer,
)
from recflow.zsl.search_index import load_search_index, save_search_index, tune_all
from recflow.zsl.searcher_evals import known_item_eval, known_item_queries, query_sensitivity
from recflow.cooc import CoocArtifact
from recflow.data.dataset import DatasetArtifact

_TEXT = library_defaults(TextConfig)
_ZSL = library_defaults(ZslConfig)
CODE_VERSION = "2"
TFIDF_PRIOR = "tfidf+prior"
BM25_PRIOR = "bm25+prior"
MAX_PC1_SHARE = 0.9


def zsl_key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, name])


class ZslVocabularyConfig(dg.Config):
    """Item text → terms. ``tag_text_share``: share of query (tag) strings used as item text
    (0 = title and genres only); ``validation_share``: share that tunes the popularity prior;
    the rest are test queries. A string is in exactly one part."""

    min_item_count: int = _TEXT["min_item_count"]
    min_terms_per_item: int = _TEXT["min_terms_per_item"]
    bigrams: bool = _TEXT["bigrams"]
    tag_text_share: float = 0.5
    validation_share: float = 0.25
    split_seed: int = 0


class ZslSyntheticVocabularyConfig(ZslVocabularyConfig):
    """On the synthetic world the queries are the planted synonym words: none of them may
    become item text, or the synonym test would measure a leak."""

    tag_text_share: float = 0.0


class ZslModelConfig(dg.Config):
    """Solver settings (paper: dim 200, ω0 0.001, λ 4, 10 iterations; here λ 1, ω0 0.01:
    at the paper's values STL and ZSL_ME collapse to one direction on ml_small)."""

    dim: int = _ZSL["dim"]
    lam: float = _ZSL["lam"]
    omega0: float = _ZSL["omega0"]
    text_omega0: float = _ZSL["text_omega0"]
    text_task_weight: float = _ZSL["text_task_weight"]
    iterations: int = _ZSL["iterations"]
    cg_iterations: int = _ZSL["cg_iterations"]
    seed: int = _ZSL["seed"]
    target: str = "binary"
    scoring: str = "dot"


class ZslSyntheticModelConfig(ZslModelConfig):
    """The synthetic world's settings (the library defaults since they fixed ml_small too):
    with the paper's λ=4, ω0=0.001 every method stays near random there; λ=1, ω0=0.01 gave
    ZSL_TE 0.73 NDCG@100 on the synonym queries (STL 0.08, TF-IDF 0.02)."""

    lam: float = 1.0
    omega0: float = 0.01


class ZslRefreshConfig(dg.Config):
    iterations: int = 2


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


def _rows(df: pl.DataFrame) -> list[dict]:
    return [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
        for r in df.to_dicts()
    ]


def _dataset_and_inputs(
    dataset: str, matrix: str, item_index: str, vocabulary: str, target: str = "binary"
):
    """The canonical dataset and the solver inputs that upstream handles point at."""
    ds = dataset_from_handle({"path": dataset})
    inputs = load_inputs(
        Path(matrix), Path(item_index), Path(vocabulary), ds.interactions_path, target
    )
    return ds, inputs


def build_zsl_assets(dataset: str, synthetic: bool = False, queries: bool = True) -> list:
    """The zsl group of ``dataset`` (assets and checks); ``synthetic`` adds the synonym test;
    ``queries`` (the dataset has a queries table) adds the query evaluation."""
    vocab_key = zsl_key(dataset, "zsl_vocabulary")
    vocab_config = ZslSyntheticVocabularyConfig if synthetic else ZslVocabularyConfig
    model_config = ZslSyntheticModelConfig if synthetic else ZslModelConfig
    model_keys = {m: zsl_key(dataset, f"{m}_model") for m in METHODS}

    @dg.asset(
        key=vocab_key,
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name="zsl",
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description="Vocabulary (unigrams + in-field bigrams of title, tag-text part, genres) and the item–term table.",
    )
    def vocabulary(
        context: dg.AssetExecutionContext,
        config: vocab_config,
        dataset_handle: DatasetArtifact,
        store: StoreResource,
    ):
        ds = dataset_from_handle(dataset_handle)
        split = QuerySplit(config.tag_text_share, config.validation_share, config.split_seed)
        queries = ds.queries()
        query_counts: dict[str, int] = {}
        if queries is not None and not synthetic:
            # fail here, in a second, rather than in the evaluation after every model trained
            item_ids = ds.items().get_column("item_id").to_numpy()
            try:
                query_counts = check_query_split(queries, item_ids, split)
            except ValueError as e:
                raise dg.Failure(f"{dataset}/zsl_vocabulary: {e}") from e
        text_cfg = TextConfig(config.min_item_count, config.min_terms_per_item, config.bigrams)
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/zsl_vocabulary") as tmp:
            stats = build_vocabulary_folder(ds, tmp, text_cfg, split)
            final = artifacts.final_path(tmp)
        return dg.Output(
            {"path": str(final), "dataset": str(ds.root)},
            metadata={
                **stats,
                **{f"{part} queries": n for part, n in query_counts.items()},
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    def make_model(method: str):
        @dg.asset(
            key=model_keys[method],
            ins={"cooc": dg.AssetIn(key=cooc_key(dataset)), "vocab": dg.AssetIn(key=vocab_key)},
            group_name="zsl",
            kinds={"torch", "scipy"},
            code_version=CODE_VERSION,
            description=f"{method.upper()} (Wu et al. 2020 §4): weighted ALS over all implicit negatives, solved exactly; popularity prior tuned on validation queries.",
        )
        def _model(
            context: dg.AssetExecutionContext,
            config: model_config,
            cooc: CoocArtifact,
            vocab: dict,
            store: StoreResource,
            torch_device: TorchDeviceResource,
        ):
            ds, inputs = _dataset_and_inputs(
                vocab["dataset"], cooc.matrix, cooc.item_index, vocab["path"], config.target
            )
            cfg = ZslConfig(method=method, **config.model_dump(exclude={"target", "scoring"}))
            model = train(
                inputs, cfg, torch_device.resolve(context.log), log_progress(context, method)
            )
            _, _, text_cfg, split = read_vocabulary_folder(Path(vocab["path"]))
            betas: dict[str, float] = {}
            grids: dict[str, dict[float, float]] = {}
            queries = ds.queries()
            if queries is not None and split is not None:
                val = eval_queries(queries, inputs.item_ids, split, "validation")
                for scoring in SCORINGS if val else ():
                    # each scoring ranks differently, so each gets its own β
                    scorer = VectorScorer(
                        method, model.item_vectors, model.word_vectors, inputs.vocab, scoring
                    )
                    betas[scoring], grids[scoring] = tune_prior_weight(
                        scorer, inputs.popularity, val
                    )
            beta = betas.get(config.scoring)
            dependence = query_dependence(
                model.item_vectors, model.word_vectors, inputs.vocab, inputs.popularity
            )
            artifacts = store.store()
            with artifacts.new_version(f"{dataset}/{method}_model") as tmp:
                save_model(
                    tmp,
                    model,
                    inputs.vocab,
                    inputs.item_ids,
                    text_cfg,
                    item_titles(ds, inputs.item_ids),
                    inputs.popularity,
                    beta,
                    config.scoring,
                    betas,
                )
                write_json(dependence, tmp / "query_dependence.json")
                final = artifacts.final_path(tmp)
            meta = {
                "loss": line_chart(
                    {"loss": model.loss_history},
                    f"{method} training loss",
                    "iteration (1 = init)",
                    "loss",
                ),
                "final_loss": model.loss_history[-1],
                "train_seconds": model.train_seconds,
                "prior_weight": -1.0 if beta is None else beta,
                **{f"prior_weight ({sc})": b for sc, b in betas.items()},
                "prior_tuning (validation ndcg@100)": markdown_table(
                    [
                        {"scoring": sc, "beta": b, "ndcg@100": v}
                        for sc, grid in grids.items()
                        for b, v in grid.items()
                    ]
                ),
                "query_dependence": markdown_table(
                    [{"measure": k, "value": round(v, 4)} for k, v in dependence.items()]
                ),
                "path": dg.MetadataValue.path(str(final)),
            }
            return dg.Output(
                {
                    "path": str(final),
                    "cooc": cooc.matrix,
                    "item_index": cooc.item_index,
                    "vocab": vocab["path"],
                    "dataset": vocab["dataset"],
                },
                metadata=meta,
            )

        @dg.multi_asset_check(
            name=f"{dataset}__{method}_model_checks",
            specs=[
                dg.AssetCheckSpec(n, asset=model_keys[method], blocking=True)
                for n in ("finite_vectors", "loss_decreasing")
            ]
            + [
                dg.AssetCheckSpec(
                    "query_dependent",
                    asset=model_keys[method],
                    description=(
                        "Rankings depend on the query: the first principal direction "
                        f"explains < {MAX_PC1_SHARE:.0%} of item-score variance across "
                        "one-word queries (a collapsed model ranks every query alike)."
                    ),
                )
            ],
            ins={"handle": dg.AssetIn(key=model_keys[method])},
        )
        def _checks(handle: dict):
            m = load_model(handle["path"])
            finite = bool(np.isfinite(m.item_vectors).all() and np.isfinite(m.word_vectors).all())
            yield dg.AssetCheckResult(
                asset_key=model_keys[method], check_name="finite_vectors", passed=finite
            )
            h = np.asarray(m.meta["loss_history"])
            ok = bool(len(h) < 2 or (np.diff(h) <= 1e-6 * np.abs(h[:-1])).all())
            yield dg.AssetCheckResult(
                asset_key=model_keys[method],
                check_name="loss_decreasing",
                passed=ok,
                metadata={"first": float(h[0]), "last": float(h[-1])},
            )
            dep_path = Path(handle["path"]) / "query_dependence.json"
            dep = read_json(dep_path) if dep_path.exists() else {}
            yield dg.AssetCheckResult(
                asset_key=model_keys[method],
                check_name="query_dependent",
                passed=bool(dep) and dep["pc1_share"] < MAX_PC1_SHARE,
                metadata={k: float(v) for k, v in dep.items()},
            )

        return [_model, _checks]

    def _context(handles: dict[str, dict]):
        any_handle = next(iter(handles.values()))
        ds, inputs = _dataset_and_inputs(
            any_handle["dataset"], any_handle["cooc"], any_handle["item_index"], any_handle["vocab"]
        )
        models = {m: load_model(h["path"]) for m, h in handles.items()}
        return ds, inputs, models

    model_ins = {m: dg.AssetIn(key=k) for m, k in model_keys.items()}

    @dg.asset(
        key=zsl_key(dataset, "zsl_reconstruction"),
        ins=model_ins,
        group_name="zsl",
        kinds={"sklearn"},
        code_version=CODE_VERSION,
        description="Correlation reconstruction recall (paper table 1): share of an item's k co-consumed neighbours among its top-k by similarity.",
    )
    def reconstruction(stl: dict, zsl_me: dict, zsl_te: dict):
        _, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
        tfidf = TfidfScorer(inputs.item_terms, inputs.vocab)
        sims = {
            f"{m} (cosine v_i·v_j)": cosine_similarity_fn(sm.item_vectors)
            for m, sm in models.items()
        }
        sims |= {
            f"{m} (v_i·u_j)": context_similarity_fn(sm.item_vectors, sm.context_vectors)
            for m, sm in models.items()
            if sm.context_vectors is not None
        }
        sims["tfidf (cosine)"] = sparse_cosine_similarity_fn(tfidf.items)
        sims["popularity"] = constant_similarity_fn(np.log1p(inputs.popularity.astype(float)))
        sims["random"] = random_similarity_fn(inputs.n_items, 0)
        rows = [
            {"method": name} | reconstruction_recall(inputs.cooc, fn) for name, fn in sims.items()
        ]
        return dg.Output(
            {"rows": rows},
            metadata={
                "table": markdown_table(rows),
                "recall": bar_chart(
                    [r["method"] for r in rows],
                    [r["recall"] for r in rows],
                    "reconstruction recall",
                    "method",
                ),
            },
        )

    def _scorers(inputs, models, scoring: str | None = None):
        scorers = [
            PopularityScorer(inputs.popularity),
            RandomScorer(inputs.n_items),
            TfidfScorer(inputs.item_terms, inputs.vocab),
        ]
        for m, sm in models.items():
            scorers.append(
                VectorScorer(
                    m,
                    sm.item_vectors,
                    sm.word_vectors,
                    sm.vocab,
                    scoring or sm.meta.get("scoring", "dot"),
                )
            )
        return scorers

    @dg.asset(
        key=zsl_key(dataset, "zsl_queries"),
        ins={**model_ins, "index": dg.AssetIn(key=zsl_key(dataset, "zsl_search_index"))},
        group_name="zsl",
        kinds={"sklearn"},
        code_version=CODE_VERSION,
        description="Zero-shot retrieval on held-out test queries (≥3 relevant items): R-precision, recall@10/100, NDCG@100 with bootstrap CIs; models alone, with the popularity prior + fallback, and the hybrid search; paired NDCG differences to popularity, TF-IDF+prior and BM25+prior.",
    )
    def queries_eval(stl: dict, zsl_me: dict, zsl_te: dict, index: dict):
        ds, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
        test, val = _tag_queries(ds, inputs, stl["vocab"])
        scorers = _scorers(inputs, models)
        for base in list(scorers[2:]):
            beta, _ = tune_prior_weight(base, inputs.popularity, val) if val else (0.0, {})
            scorers.append(PriorEnsembleScorer(base, inputs.popularity, beta))
        scorers += _hybrid_scorers(index, inputs, models)
        summary, per_query = query_retrieval(
            scorers, test, more_references=[TFIDF_PRIOR, BM25_PRIOR]
        )
        curve = recall_curve(scorers, test)
        return dg.Output(
            {"summary": _rows(summary)},
            metadata={
                "summary": markdown_table(_rows(summary)),
                "recall@K": _recall_chart(curve),
                "test_queries": len(test),
                "validation_queries": len(val),
            },
        )

    def _tag_queries(ds, inputs, vocab_path: str):
        _, _, _, split = read_vocabulary_folder(Path(vocab_path))
        queries = ds.queries()
        if queries is None or split is None:
            raise dg.Failure(f"{dataset}: no queries table to evaluate on")
        test = eval_queries(queries, inputs.item_ids, split, "test")
        val = eval_queries(queries, inputs.item_ids, split, "validation")
        return test, val

    def _hybrid_scorers(index_handle: dict, inputs, models, with_no_prior: bool = False):
        """bm25+prior and hybrid:<model>+prior at each model's shipped scoring, with the
        search index's weights (tuned on validation tag queries only)."""
        index = load_search_index(index_handle["path"])
        pop = inputs.popularity
        out = [HybridScorer(index.lexical, None, pop, index.weights("bm25", "none", True))]
        priors = (True, False) if with_no_prior else (True,)
        for m, sm in models.items():
            scoring = sm.meta.get("scoring", "dot")
            vs = VectorScorer(m, sm.item_vectors, sm.word_vectors, sm.vocab, scoring)
            for prior in priors:
                w = index.weights(m, scoring, prior)
                out.append(HybridScorer(index.lexical, vs, pop if prior else None, w))
        return out

    @dg.asset(
        key=zsl_key(dataset, "zsl_search_index"),
        ins={**model_ins, "vocab": dg.AssetIn(key=vocab_key)},
        group_name="zsl",
        kinds={"scipy"},
        code_version=CODE_VERSION,
        description="The default search: BM25 over all item text (title with year, text-part tags, genres; no word dropped for rarity) fused with each model's vectors and the popularity prior, title hits first; fusion weights tuned per (model, scoring, prior) on validation tag queries plus title queries of the validation half of the films (NDCG@100 + MRR), widening any grid whose edge wins.",
    )
    def search_index(stl: dict, zsl_me: dict, zsl_te: dict, vocab: dict, store: StoreResource):
        ds, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
        _, _, _, split = read_vocabulary_folder(Path(vocab["path"]))
        queries = ds.queries()
        val = (
            eval_queries(queries, inputs.item_ids, split, "validation")
            if queries is not None and split is not None
            else []
        )
        if not val:
            raise dg.Failure(f"{dataset}/zsl_search_index: no validation queries to tune on")
        lexical = build_lexical_index(ds, inputs.item_ids, split)
        # title queries of the validation half of the items count beside the tags; the
        # known-item evaluation asks only for films of the test half
        known = known_item_queries(ds.items(), inputs.item_ids, 100, part="validation")
        pairs = list(zip(known.get_column("query"), known.get_column("index"), strict=True))
        weights, val_ndcg, grid = tune_all(
            lexical, models, inputs.popularity, val, known_items=pairs
        )
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/zsl_search_index") as tmp:
            save_search_index(
                tmp,
                lexical,
                {m: str(sm.root) for m, sm in models.items()},
                weights,
                val_ndcg,
                len(val),
            )
            final = artifacts.final_path(tmp)
        index = load_search_index(final)
        rows = [
            {"config": k, **w.to_dict(), "validation objective": round(val_ndcg[k], 4)}
            for k, w in weights.items()
        ]
        return dg.Output(
            {"path": str(final), "default": index.meta["default"]},
            metadata={
                "weights": markdown_table(rows),
                "default": f"{index.default_model} ({index.default_scoring})",
                "lexical_terms": len(lexical.vocab),
                "validation_queries": len(val),
                "validation_known_item_queries": len(pairs),
                "grid_points": len(grid),
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    @dg.asset(
        key=zsl_key(dataset, "zsl_known_items"),
        ins={**model_ins, "index": dg.AssetIn(key=zsl_key(dataset, "zsl_search_index"))},
        group_name="zsl",
        code_version=CODE_VERSION,
        description="Known-item search: for 300 seeded items of the test half (by item-id hash), the title with its year, the title alone and the title with one word dropped must find that film. MRR and hit@3 with bootstrap CIs and paired differences to popularity, TF-IDF+prior and BM25+prior. The fusion was tuned on the other half's films only.",
    )
    def known_items(stl: dict, zsl_me: dict, zsl_te: dict, index: dict):
        ds, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
        _, val = _tag_queries(ds, inputs, stl["vocab"])
        queries = known_item_queries(ds.items(), inputs.item_ids, part="test")
        scorers = _searcher_scorers(inputs, models, index, val)
        summary, by_kind, _ = known_item_eval(
            scorers, queries, references=["popularity", TFIDF_PRIOR, BM25_PRIOR]
        )
        return dg.Output(
            {"summary": _rows(summary), "by_kind": _rows(by_kind)},
            metadata={
                "summary": markdown_table(_rows(summary)),
                "by kind": markdown_table(_rows(by_kind)),
                "queries": queries.height,
                "examples": markdown_table(queries.head(9).to_dicts()),
            },
        )

    @dg.asset(
        key=zsl_key(dataset, "zsl_query_sensitivity"),
        ins={**model_ins, "index": dg.AssetIn(key=zsl_key(dataset, "zsl_search_index"))},
        group_name="zsl",
        code_version=CODE_VERSION,
        description="Does the answer depend on the query? Over the test tag queries a method knows a word of: mean share of its top 10 in the popularity top 10 (CI), and mean Jaccard between two queries' top 10s.",
    )
    def sensitivity(stl: dict, zsl_me: dict, zsl_te: dict, index: dict):
        ds, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
        test, val = _tag_queries(ds, inputs, stl["vocab"])
        scorers = _searcher_scorers(inputs, models, index, val, with_no_prior=True)
        summary = query_sensitivity(scorers, [q for q, _ in test], inputs.popularity)
        return dg.Output(
            {"summary": _rows(summary)},
            metadata={"summary": markdown_table(_rows(summary)), "queries": len(test)},
        )

    def _searcher_scorers(inputs, models, index, val, with_no_prior: bool = False):
        """Popularity, TF-IDF+prior, each model alone (+prior, and without when asked), and
        the hybrids: the rows of the searcher-facing evaluations."""
        tfidf = TfidfScorer(inputs.item_terms, inputs.vocab)
        beta, _ = tune_prior_weight(tfidf, inputs.popularity, val)
        out = [
            PopularityScorer(inputs.popularity),
            PriorEnsembleScorer(tfidf, inputs.popularity, beta),
        ]
        for m, sm in models.items():
            scoring = sm.meta.get("scoring", "dot")
            vs = VectorScorer(m, sm.item_vectors, sm.word_vectors, sm.vocab, scoring)
            if with_no_prior:
                out.append(vs)
            b = sm.prior_weight_for(scoring)
            out.append(PriorEnsembleScorer(vs, inputs.popularity, b or 0.0))
        return out + _hybrid_scorers(index, inputs, models, with_no_prior)

    assets: list = [vocabulary, reconstruction]
    if queries:
        assets += [queries_eval, search_index, sensitivity]
        if not synthetic:
            assets.append(known_items)
    for m in METHODS:
        assets += make_model(m)

    @dg.asset(
        key=zsl_key(dataset, "zsl_te_refresh"),
        ins={
            "previous": dg.AssetIn(key=model_keys["zsl_te"]),
            "cooc": dg.AssetIn(key=cooc_key(dataset)),
            "vocab": dg.AssetIn(key=vocab_key),
        },
        group_name="zsl",
        kinds={"torch"},
        tags={REFRESH_TAG: "daily"},  # the daily_refresh schedule picks it up
        code_version=CODE_VERSION,
        description="Daily warm start (paper §5.4): the previous ZSL_TE vectors carried over by id/term, new items and words added, a few solves on today's matrix.",
    )
    def refresh(
        context: dg.AssetExecutionContext,
        config: ZslRefreshConfig,
        previous: dict,
        cooc: CoocArtifact,
        vocab: dict,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ):
        ds, inputs = _dataset_and_inputs(
            vocab["dataset"], cooc.matrix, cooc.item_index, vocab["path"]
        )
        prev = load_model(previous["path"])
        model, stats = warm_start_refresh(
            prev,
            inputs,
            config.iterations,
            torch_device.resolve(context.log),
            on_progress=log_progress(context, "refresh"),
        )
        _, _, text_cfg, _ = read_vocabulary_folder(Path(vocab["path"]))
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/zsl_te_refresh") as tmp:
            save_model(
                tmp,
                model,
                inputs.vocab,
                inputs.item_ids,
                text_cfg,
                item_titles(ds, inputs.item_ids),
                inputs.popularity,
                prev.prior_weight,
                prev.meta.get("scoring", "dot"),
                prev.meta.get("prior_weights"),
            )
            final = artifacts.final_path(tmp)
        meta = dataclasses.asdict(stats) | {
            "train_seconds": model.train_seconds,
            "loss": line_chart({"loss": model.loss_history}, "refresh loss", "iteration", "loss"),
        }
        return dg.Output({"path": str(final)}, metadata=meta)

    assets.append(refresh)

    if synthetic:

        @dg.asset(
            key=zsl_key(dataset, "zsl_synonyms"),
            ins=model_ins,
            group_name="zsl",
            code_version=CODE_VERSION,
            description="Planted-synonym test: query = a word that no relevant item's text contains; only co-consumption can link them.",
        )
        def synonyms(stl: dict, zsl_me: dict, zsl_te: dict):
            ds, inputs, models = _context({"stl": stl, "zsl_me": zsl_me, "zsl_te": zsl_te})
            queries = planted_synonym_queries(
                ds.extra("item_truth"), ds.extra("synonyms"), inputs.item_ids
            )
            scorers = _scorers(inputs, models)
            summary = planted_synonym_test(scorers, queries)
            curve = recall_curve(scorers, queries)
            return dg.Output(
                {"summary": _rows(summary)},
                metadata={
                    "summary": markdown_table(_rows(summary)),
                    "recall@K": _recall_chart(curve),
                },
            )

        assets.append(synonyms)
    return assets
