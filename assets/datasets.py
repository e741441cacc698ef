"""The ``canonical`` group: every dataset converted once into the canonical tables."""

from typing import Any

import dagster as dg
import polars as pl

from assets.defaults import library_defaults
from assets.metadata import markdown_table
from assets.raw import raw_files_key
from assets.resources import DataSourcesResource, StoreResource
from recflow.data.dataset import CanonicalDataset, CanonicalTables, DatasetArtifact, write_dataset
from recflow.data.registry import DatasetSource
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.data.validate import DataValidationError

DATASET_CODE_VERSION = "2"


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


def build_file_dataset_asset(ds: DatasetSource) -> dg.AssetsDefinition:
    """Canonical tables from a dataset's raw files (observed by ``raw_files``)."""

    @dg.asset(
        key=dataset_key(ds.name),
        deps=[raw_files_key(ds.name)],
        group_name="canonical",
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
            tables = ds.load(folder, max_users=data_sources.tenrec_max_users)
        except DataValidationError as err:
            raise validation_failure(err) from err
        return write_canonical(context, store, ds.name, tables)

    return _asset


_SYNTH_DEFAULTS = library_defaults(SyntheticConfig)


class SyntheticDatasetConfig(dg.Config):
    """The generator's knobs (defaults = ``recflow.data.synthetic.SyntheticConfig``)."""

    n_users: int = _SYNTH_DEFAULTS["n_users"]
    n_items: int = _SYNTH_DEFAULTS["n_items"]
    n_events: int = _SYNTH_DEFAULTS["n_events"]
    n_clusters: int = _SYNTH_DEFAULTS["n_clusters"]
    target_share: float = _SYNTH_DEFAULTS["target_share"]
    target_interest_correlation: float = _SYNTH_DEFAULTS["target_interest_correlation"]
    target_share_concentration: float | None = _SYNTH_DEFAULTS["target_share_concentration"]
    late_adopter_share: float = _SYNTH_DEFAULTS["late_adopter_share"]  # MKT experiment: 0.3
    late_adopter_start: float = _SYNTH_DEFAULTS["late_adopter_start"]
    style_price_link: float = _SYNTH_DEFAULTS["style_price_link"]
    seed: int = _SYNTH_DEFAULTS["seed"]


@dg.asset(
    key=dataset_key("synthetic"),
    group_name="canonical",
    kinds={"polars", "parquet"},
    code_version=DATASET_CODE_VERSION,
    description=(
        "Seeded synthetic world with planted truth (item clusters with co-consumption, "
        "synonym words, attribute-driven users, two entity types with clicks): the data "
        "the method tests check their models against. See recflow/data/synthetic.py."
    ),
)
def synthetic_dataset(
    context: dg.AssetExecutionContext, config: SyntheticDatasetConfig, store: StoreResource
) -> dg.Output[DatasetArtifact]:
    tables = generate(SyntheticConfig(**config.model_dump()))
    return write_canonical(context, store, "synthetic", tables)


def dataset_from_handle(handle: DatasetArtifact) -> CanonicalDataset:
    """The on-disk dataset an upstream ``dataset`` asset handed down."""
    return handle.load()
