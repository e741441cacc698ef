"""The ``<dataset>_cooc`` groups: the item→next-item co-consumption matrix and its checks."""

from pathlib import Path
from typing import Literal

import dagster as dg

from assets.config import config_class, library_kwargs
from assets.daily import REFRESH_TAG
from assets.datasets import dataset_key
from assets.groups import group_name
from assets.metadata import bar_chart
from assets.resources import StoreResource
from assets.spark import SPARK, SparkResource
from recflow.cooc import CoocArtifact, CoocConfig, build_cooc
from recflow.cooc_checks import check_cooc_matrix
from recflow.data.dataset import DatasetArtifact

CHECK_NAMES = (
    "at_most_k_per_row",
    "no_self_pairs",
    "counts_positive",
    "weight_means_one",
    "ids_known",
)


CoocMatrixConfig = config_class(
    "CoocMatrixConfig",
    CoocConfig,
    extra={"engine": (Literal["duckdb", "spark"], "duckdb")},
    doc=(
        "How pairs are counted (defaults = ``recflow.cooc.CoocConfig``: the paper's "
        "consecutive pairs, top 250 neighbours per seed item), and by which engine: "
        "``duckdb`` (this machine, out of core) or ``spark`` (the ``spark`` resource's "
        "master, local[2] by default; same result cell by cell, see ``recflow.cooc_spark``)."
    ),
)


def cooc_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, "cooc_matrix"])


def _stats_metadata(stats: dict) -> dict[str, object]:
    meta: dict[str, object] = {}
    for k, v in stats.items():
        if isinstance(v, bool | int | float | str):
            meta[k] = v
    hist = stats.get("neighbour_histogram")
    if isinstance(hist, dict) and hist.get("counts"):
        labels = [str(x) for x in hist["edges"][: len(hist["counts"])]]
        meta["neighbours per row"] = bar_chart(
            labels, hist["counts"], "neighbours kept per seed item", "neighbours"
        )
    return meta


def build_cooc_assets(dataset: str) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """The matrix asset of ``dataset`` and its blocking checks."""
    key = cooc_key(dataset)

    @dg.asset(
        key=key,
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name=group_name(dataset, "cooc"),
        kinds={"duckdb", "spark", "parquet"},
        code_version="2",
        tags={REFRESH_TAG: "daily"},  # the daily_refresh job rebuilds every matrix
        resource_defs={"spark": SPARK},
        description=(
            "Item→next-item co-consumption counts (Wu et al. 2020): per user, events sorted "
            "by (timestamp, item_id); consecutive p→q adds 1; top-K neighbours per seed item; "
            "row/column weights ∝ 1/√nnz rescaled to mean 1. Computed out of core in DuckDB, "
            "or on Spark (config engine: spark)."
        ),
    )
    def _matrix(
        context: dg.AssetExecutionContext,
        config: CoocMatrixConfig,
        dataset_handle: DatasetArtifact,
        store: StoreResource,
        spark: SparkResource,
    ) -> dg.Output[CoocArtifact]:
        ds = dataset_handle.load()
        artifacts = store.store()
        cooc_config = CoocConfig(**library_kwargs(config, CoocConfig))
        with artifacts.new_version(f"{dataset}/cooc_matrix") as tmp:
            if config.engine == "spark":
                from recflow.cooc_spark import build_cooc_spark

                context.log.info(f"co-consumption matrix on Spark, master {spark.master}")
                result = build_cooc_spark(ds.interactions_path, tmp, cooc_config, spark.settings())
            else:
                result = build_cooc(
                    ds.interactions_path,
                    tmp,
                    cooc_config,
                    temp_dir=Path(artifacts.root) / "_duckdb_tmp",
                )
            final = artifacts.final_path(tmp)
        context.log.info(f"{dataset}: co-consumption matrix in {final}")
        handle = CoocArtifact(
            path=str(final),
            matrix=str(final / result.matrix_path.name),
            item_index=str(final / result.item_index_path.name),
            top_k=config.top_k,
        )
        meta = _stats_metadata(result.stats)
        meta["path"] = dg.MetadataValue.path(str(final))
        return dg.Output(handle, metadata=meta)

    @dg.multi_asset_check(
        name=f"{dataset}__cooc_matrix_checks",
        specs=[
            dg.AssetCheckSpec(
                name,
                asset=key,
                blocking=True,
                description=name.replace("_", " "),
                additional_deps=[dataset_key(dataset)],
            )
            for name in CHECK_NAMES
        ],
        ins={"handle": dg.AssetIn(key=key), "dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
    )
    def _checks(handle: CoocArtifact, dataset_handle: DatasetArtifact):
        outcomes = check_cooc_matrix(
            Path(handle.matrix),
            Path(handle.item_index),
            dataset_handle.load().items_path,
            handle.top_k,
        )
        for o in outcomes:
            yield dg.AssetCheckResult(
                asset_key=key,
                check_name=o.name,
                passed=o.passed,
                description=o.detail,
                metadata={"value": float(o.value)},
            )

    return [_matrix, _checks]
