"""Raw inputs as observable source assets: their data version is a hash of the files'
content, so a changed file marks everything downstream stale (and nothing else does)."""

import warnings
from pathlib import Path

import dagster as dg

from assets.groups import group_name
from assets.resources import DataSourcesResource
from recflow.data.raw import content_hash
from recflow.data.registry import DatasetSpec


def raw_files_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, "raw_files"])


def build_raw_source(ds: DatasetSpec) -> dg.SourceAsset:
    """An observable source over ``ds.files`` in the folder its resource field names."""

    # Observable source assets are "beta" in Dagster 1.13; they are what lets a content
    # hash version the raw files, so we accept that and keep the warning out of every run.
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*observable_source_asset")

    @dg.observable_source_asset(
        key=raw_files_key(ds.name),
        group_name=group_name(ds.name, "raw"),
        description=f"Raw files {', '.join(ds.files)}. {ds.description}",
        metadata={"files": ", ".join(ds.files), "folder setting": ds.folder_setting},
    )
    def _observe(data_sources: DataSourcesResource) -> dg.DataVersion:
        folder = getattr(data_sources, ds.folder_setting)
        if not folder:
            return dg.DataVersion("unconfigured")
        paths = ds.paths(Path(folder))
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            return dg.DataVersion(f"missing:{','.join(missing)}")
        return dg.DataVersion(content_hash(paths))

    return _observe
