"""Jobs: which assets run together."""

import dagster as dg

from assets.daily import DAILY_FEEDS, REFRESH_TAG, daily_files_key
from assets.raw import raw_files_key
from recflow.data.registry import FILE_DATASETS

DEFAULT_DATASETS = ("ml_small", "synthetic")


def _dataset_job(name: str, dataset: str, description: str):
    """Every asset of one dataset's chain. With its raw source, if it has one: the run
    observes the files first, so it records their data versions and the first
    observation afterwards finds nothing changed."""
    selection = dg.AssetSelection.key_prefixes([dataset])
    if dataset in FILE_DATASETS:
        selection = selection | dg.AssetSelection.assets(raw_files_key(dataset))
    return dg.define_asset_job(name=name, selection=selection, description=description)


def dataset_job(dataset: str):
    """``materialize_<dataset>``: one dataset's whole chain (for datasets added through
    ``RECFLOW_DATASETS``, e.g. ``materialize_ml100k``)."""
    return _dataset_job(
        f"materialize_{dataset}",
        dataset,
        f"Materialize every method sub-graph of {dataset} and its report.",
    )


default_job = _dataset_job(
    "materialize_default",
    "ml_small",
    "Materialize the default graph on the bundled data: MovieLens ml-latest-small through "
    "the matrix, zero-shot search and PeterRec.",
)

synthetic_job = _dataset_job(
    "materialize_synthetic",
    "synthetic",
    "Materialize the synthetic world through every method, MKT included (its 3-seed "
    "comparison of 9 models is the longest step).",
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
