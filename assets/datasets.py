"""The ``<dataset>_canonical`` groups: every dataset converted once into the canonical tables."""

from typing import Any

import dagster as dg
import polars as pl

from assets.config import config_class, library_kwargs
from assets.groups import group_name
from assets.metadata import markdown_table
from assets.raw import raw_files_key
from assets.resources import DataSourcesResource, StoreResource
from recflow.data.dataset import CanonicalDataset, CanonicalTables, DatasetArtifact, write_dataset
from recflow.data.registry import DATASET_SPECS, DatasetSpec
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.data.validate import DataValidationError

DATASET_CODE_VERSION = "3"


def dataset_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, "dataset"])


def _summary(dataset: CanonicalDataset) -> dict[str, Any]:
    """Metadata that tells at a glance what was loaded."""
    manifest = dataset.manifest
    stats = (
        dataset.scan_interactions()
        .select(
            pl.col("user_id").n_unique().alias("users_active"),
            pl.col("item_id").n_unique().alias("items_active"),
            pl.col("timestamp").min().alias("t_min"),
            pl.col("timestamp").max().alias("t_max"),
            pl.col("label").mean().alias("label_mean"),
        )
        .collect()
        .to_dicts()[0]
    )
    preview = dataset.scan_interactions().head(5).collect().to_dicts()
    rows = manifest["rows"]
    return {
        "path": dg.MetadataValue.path(str(dataset.root)),
        "dagster/row_count": rows["interactions"],
        "interactions": rows["interactions"],
        "items": rows["items"],
        "users": rows["users"],
        "queries": rows["queries"],
        "entities": ", ".join(manifest["entities"]),
        "active users": stats["users_active"],
        "active items": stats["items_active"],
        "timestamp range": f"{stats['t_min']} … {stats['t_max']}",
        "mean label": float(stats["label_mean"]) if stats["label_mean"] is not None else "n/a",
        "interactions preview": markdown_table(preview),
    }


def validation_failure(err: DataValidationError) -> dg.Failure:
    """Bad input as a step failure whose metadata says where: file, lines, column, rows."""
    return dg.Failure(
        description=str(err),
        metadata={
            "file": err.file,
            f"{err.unit}s": ", ".join(str(n) for n in err.lines),
            "column": err.column or "",
            "rows": err.rows,
        },
    )


def write_canonical(
    context: dg.AssetExecutionContext, store: StoreResource, name: str, tables: CanonicalTables
) -> dg.Output[DatasetArtifact]:
    artifacts = store.store()
    try:
        with artifacts.new_version(f"{name}/dataset") as tmp:
            write_dataset(tables, tmp)
            final = artifacts.final_path(tmp)
    except DataValidationError as err:
        raise validation_failure(err) from err
    dataset = CanonicalDataset(final)
    context.log.info(f"{name}: wrote canonical tables to {final}")
    return dg.Output(DatasetArtifact(str(final)), metadata=_summary(dataset))


def build_file_dataset_asset(ds: DatasetSpec) -> dg.AssetsDefinition:
    """Canonical tables from a dataset's raw files (observed by ``raw_files``)."""

    @dg.asset(
        key=dataset_key(ds.name),
        deps=[raw_files_key(ds.name)],
        group_name=group_name(ds.name, "canonical"),
        kinds={"polars", "parquet"},
        code_version=DATASET_CODE_VERSION,
        description=f"Canonical interactions/items/users/queries. {ds.description}",
    )
    def _asset(
        context: dg.AssetExecutionContext,
        store: StoreResource,
        data_sources: DataSourcesResource,
    ) -> dg.Output[DatasetArtifact]:
        folder = data_sources.folder(ds.folder_setting)
        try:
            tables = ds.load(folder, **data_sources.loader_options(ds))
        except DataValidationError as err:
            raise validation_failure(err) from err
        return write_canonical(context, store, ds.name, tables)

    return _asset


SyntheticDatasetConfig = config_class(
    "SyntheticDatasetConfig",
    SyntheticConfig,
    doc="The generator's knobs (defaults = ``recflow.data.synthetic.SyntheticConfig``; "
    "the MKT experiment sets late_adopter_share: 0.3).",
)


def build_synthetic_dataset_asset(ds: DatasetSpec) -> dg.AssetsDefinition:
    """The seeded synthetic world of ``ds`` (``recflow.data.synthetic.generate``)."""

    @dg.asset(
        key=dataset_key(ds.name),
        group_name=group_name(ds.name, "canonical"),
        kinds={"polars", "parquet"},
        code_version=DATASET_CODE_VERSION,
        description=ds.description,
    )
    def _asset(
        context: dg.AssetExecutionContext, config: SyntheticDatasetConfig, store: StoreResource
    ) -> dg.Output[DatasetArtifact]:
        tables = generate(SyntheticConfig(**library_kwargs(config, SyntheticConfig)))
        return write_canonical(context, store, ds.name, tables)

    return _asset


synthetic_dataset = build_synthetic_dataset_asset(DATASET_SPECS["synthetic"])


def dataset_from_handle(handle: DatasetArtifact) -> CanonicalDataset:
    """The on-disk dataset an upstream ``dataset`` asset handed down."""
    return handle.load()
