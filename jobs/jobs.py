"""Jobs: which assets run together."""

import dagster as dg

from assets.daily import DAILY_FEEDS, REFRESH_TAG, daily_files_key
from assets.raw import raw_files_key
from recflow.data.registry import FILE_DATASETS

DEFAULT_DATASETS = ("ml_small", "synthetic")

default_job = dg.define_asset_job(
    name="materialize_default",
    # with the raw sources: the run observes the files first, so it records their data
    # versions and the first observation afterwards finds nothing changed
    selection=dg.AssetSelection.key_prefixes(*[[d] for d in DEFAULT_DATASETS])
    | dg.AssetSelection.assets(*[raw_files_key(d) for d in DEFAULT_DATASETS if d in FILE_DATASETS]),
    description=(
        "Materialize the default graph: the bundled MovieLens sample and the synthetic "
        "world, through every method that runs on them."
    ),
)

DAILY_REFRESH = dg.AssetSelection.groups("cooc") | dg.AssetSelection.tag(REFRESH_TAG, "daily")
"""Every co-consumption matrix and every asset tagged ``recflow/refresh: daily`` (the
daily feeds' datasets; the warm-start refresh and its evaluations join by carrying the tag)."""

daily_refresh_job = dg.define_asset_job(
    name="daily_refresh",
    selection=DAILY_REFRESH,
    description=(
        "Refresh for the new day: the daily feeds' datasets, every co-consumption matrix, "
        "and the assets tagged recflow/refresh=daily (warm-start refresh, evaluations)."
    ),
)

observe_sources_job = dg.define_asset_job(
    name="observe_sources",
    selection=dg.AssetSelection.assets(
        *[raw_files_key(d) for d in FILE_DATASETS], *[daily_files_key(f) for f in DAILY_FEEDS]
    ),
    description="Observe every raw source: hash the files, so changed content shows as new data.",
)
