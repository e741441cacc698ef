"""The Definitions of the recflow code location (``dagster dev`` loads this module).

Every file dataset in ``recflow.data.registry`` gets an observed raw source and a
canonical asset, every daily feed in ``assets.daily.DAILY_FEEDS`` its day files, days
and dataset; the datasets named in ``RECFLOW_DATASETS`` (default: the bundled MovieLens
sample, the synthetic world and the daily feeds) also get every method's assets, and
those with an evaluation a ``<dataset>/report`` of them (``assets/report.py``).
Automation conditions and training retries are then applied to the whole list in one
place (``jobs/automation.py``, ``jobs/retries.py``).
"""

import os

import dagster as dg

from assets.cooc import build_cooc_assets
from assets.daily import DAILY_FEEDS, DailyFilesResource, build_daily_assets
from assets.datasets import build_file_dataset_asset, synthetic_dataset
from assets.io_manager import store_handle_io_manager
from assets.mkt import build_mkt_assets
from assets.raw import build_raw_source
from assets.report import build_report_assets
from assets.resources import DataSourcesResource, StoreResource, TorchDeviceResource
from assets.seq import build_seq_assets
from assets.zsl import build_zsl_assets
from jobs.automation import automation_sensor, with_automation
from jobs.executor import default_executor
from jobs.jobs import (
    DEFAULT_DATASETS,
    daily_refresh_job,
    dataset_job,
    default_job,
    observe_sources_job,
    synthetic_job,
)
from jobs.retries import with_training_retries
from jobs.schedules import build_daily_refresh_schedule
from jobs.sensors import log_run_failures, observe_sources_on_change
from recflow.data.registry import FILE_DATASETS


def method_datasets() -> list[str]:
    """Datasets that get the method sub-graphs (``RECFLOW_DATASETS``, comma-separated)."""
    raw = os.environ.get("RECFLOW_DATASETS", ",".join([*DEFAULT_DATASETS, *DAILY_FEEDS]))
    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = {*FILE_DATASETS, "synthetic", *DAILY_FEEDS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"RECFLOW_DATASETS names unknown datasets {unknown}; known: {sorted(known)}"
        )
    return names


# Which method sub-graphs a dataset can feed: zero-shot search needs item text and
# queries, PeterRec behaviour sequences, MKT two entity types with clicks; the daily
# feed refreshes the matrix only.
TEXT_DATASETS = {"ml_small", "ml100k", "ml1m", "synthetic"}
QUERY_DATASETS = {"ml_small", "synthetic"}  # a queries table: tags, planted synonyms
TWO_ENTITY_DATASETS = {"synthetic", "tenrec"}
SEQUENCE_DATASETS = {"ml_small", "ml100k", "ml1m", "synthetic", "tenrec"}


def method_assets(name: str) -> list:
    """Every method asset (and check) built on dataset ``name``, and the report of its
    evaluations (none for a dataset with only the matrix)."""
    out = list(build_cooc_assets(name))
    if name in TEXT_DATASETS:
        out += build_zsl_assets(name, synthetic=name == "synthetic", queries=name in QUERY_DATASETS)
    if name in SEQUENCE_DATASETS:
        out += build_seq_assets(name)
    if name in TWO_ENTITY_DATASETS:
        out += build_mkt_assets(name)
    return out + build_report_assets(name, out)


def build_definitions() -> dg.Definitions:
    store = StoreResource()
    sources = [build_raw_source(ds) for ds in FILE_DATASETS.values()]
    canonical = [build_file_dataset_asset(ds) for ds in FILE_DATASETS.values()]
    feeds = [d for feed in DAILY_FEEDS.values() for d in build_daily_assets(feed)]
    definitions: list = [*sources, *canonical, synthetic_dataset, *feeds]
    for name in method_datasets():
        definitions += method_assets(name)
    definitions = with_training_retries(with_automation(definitions))
    return dg.Definitions(
        assets=[d for d in definitions if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in definitions if isinstance(d, dg.AssetChecksDefinition)],
        jobs=[
            default_job,
            synthetic_job,
            *[dataset_job(n) for n in method_datasets() if n in FILE_DATASETS and n != "ml_small"],
            daily_refresh_job,
            observe_sources_job,
        ],
        schedules=[build_daily_refresh_schedule()],
        sensors=[automation_sensor, observe_sources_on_change, log_run_failures],
        resources={
            "store": store,
            "torch_device": TorchDeviceResource(),
            "data_sources": DataSourcesResource(),
            "daily_files": DailyFilesResource(),
            "io_manager": store_handle_io_manager,
        },
        executor=default_executor(),
    )


defs = build_definitions()
