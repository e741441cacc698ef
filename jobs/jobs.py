"""Jobs: which assets run together, selected by group (``<dataset>_<stage>``)."""

import warnings

import dagster as dg

from assets.daily import REFRESH_TAG, daily_files_key
from assets.groups import STAGES, group_name
from assets.raw import raw_files_key
from recflow.data.registry import DAILY_FEEDS, FILE_DATASETS


def chain_selection(dataset: str) -> dg.AssetSelection:
    """Every group of one dataset's chain, raw sources included: a run of it observes
    the files first, so it records their data versions and the first observation
    afterwards finds nothing changed."""
    groups = [group_name(dataset, stage) for stage in STAGES]
    # Beta in Dagster 1.13, and the way a group selection takes in its observable sources.
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*include_sources")
    return dg.AssetSelection.groups(*groups, include_sources=True)


def dataset_job(dataset: str, name: str | None = None, description: str | None = None):
    """``materialize_<dataset>``: one dataset's whole chain (for datasets added through
    ``RECFLOW_DATASETS``, e.g. ``materialize_ml100k``)."""
    return dg.define_asset_job(
        name=name or f"materialize_{dataset}",
        selection=chain_selection(dataset),
        description=description
        or f"Materialize every method sub-graph of {dataset} and its report.",
    )


default_job = dataset_job(
    "ml_small",
    "materialize_default",
    "Materialize the default graph on the bundled data: MovieLens ml-latest-small through "
    "the matrix, zero-shot search and PeterRec.",
)

synthetic_job = dataset_job(
    "synthetic",
    "materialize_synthetic",
    "Materialize the synthetic world through every method, MKT included (its 3-seed "
    "comparison of 9 models is the longest step).",
)


DAILY_REFRESH = dg.AssetSelection.tag(REFRESH_TAG, "daily")
"""Every asset tagged ``recflow/refresh: daily``: every co-consumption matrix, the daily
feeds' datasets, and whatever else joins by carrying the tag (the warm-start refresh and
its evaluations)."""

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
