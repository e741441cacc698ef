"""The Definitions of the recflow code location (``dagster dev`` loads this module).

Everything is derived from the dataset specs in ``recflow.data.registry``: every file
dataset gets an observed raw source and a canonical asset, the synthetic world its
generator, every daily feed its day files, days and dataset; the datasets named in
``RECFLOW_DATASETS`` (default: the specs marked ``default``) also get the method
sub-graphs their capabilities allow (``method_assets``), and those with an evaluation a
``<dataset>/report`` of them (``assets/report.py``). Automation conditions and training
retries are then applied to the whole list in one place (``jobs/automation.py``,
``jobs/retries.py``).
"""

import os
from collections.abc import Mapping

import dagster as dg

from assets.cooc import build_cooc_assets
from assets.daily import DailyFilesResource, build_daily_assets
from assets.datasets import build_file_dataset_asset, build_synthetic_dataset_asset
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
    daily_refresh_job,
    dataset_job,
    default_job,
    observe_sources_job,
    synthetic_job,
)
from jobs.retries import with_training_retries
from jobs.schedules import build_daily_refresh_schedule
from jobs.sensors import log_run_failures, observe_sources_on_change
from recflow.data.registry import DATASET_SPECS, DEFAULT_DATASETS, DatasetSpec

JOBS_OF_THEIR_OWN = {"ml_small": default_job, "synthetic": synthetic_job}
"""Datasets whose chain job has its own name; every other method dataset gets
``materialize_<dataset>``."""


def method_datasets(specs: Mapping[str, DatasetSpec] = DATASET_SPECS) -> list[str]:
    """Datasets that get the method sub-graphs (``RECFLOW_DATASETS``, comma-separated)."""
    default = ",".join(n for n in DEFAULT_DATASETS if n in specs)
    raw = os.environ.get("RECFLOW_DATASETS", default)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(
            f"RECFLOW_DATASETS names unknown datasets {unknown}; known: {sorted(specs)}"
        )
    return names


def source_assets(spec: DatasetSpec) -> list:
    """How a dataset's canonical tables come to be: raw files and their loader, the
    generator, or the days of a daily feed."""
    if spec.daily is not None:
        return build_daily_assets(spec.daily)
    if spec.synthetic:
        return [build_synthetic_dataset_asset(spec)]
    return [build_raw_source(spec), build_file_dataset_asset(spec)]


def method_assets(spec: DatasetSpec) -> list:
    """Every method asset (and check) a dataset's capabilities allow, and the report of
    its evaluations (none for a dataset with only the matrix): every dataset gets the
    matrix, item text zero-shot search, behaviour sequences PeterRec, two entity types MKT."""
    can = spec.capabilities
    out = list(build_cooc_assets(spec.name))
    if can.item_text:
        out += build_zsl_assets(spec.name, synthetic=spec.synthetic, queries=can.queries)
    if can.sequences:
        out += build_seq_assets(spec.name)
    if can.two_entities:
        out += build_mkt_assets(spec.name)
    return out + build_report_assets(spec.name, out)


def build_definitions(specs: Mapping[str, DatasetSpec] = DATASET_SPECS) -> dg.Definitions:
    """The code location over ``specs`` (every known dataset by default)."""
    definitions: list = [a for spec in specs.values() for a in source_assets(spec)]
    methods = method_datasets(specs)
    for name in methods:
        definitions += method_assets(specs[name])
    definitions = with_training_retries(with_automation(definitions))
    return dg.Definitions(
        assets=[d for d in definitions if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in definitions if isinstance(d, dg.AssetChecksDefinition)],
        jobs=[
            *JOBS_OF_THEIR_OWN.values(),
            *[dataset_job(n) for n in methods if n not in JOBS_OF_THEIR_OWN and not specs[n].daily],
            daily_refresh_job,
            observe_sources_job,
        ],
        schedules=[build_daily_refresh_schedule()],
        sensors=[automation_sensor, observe_sources_on_change, log_run_failures],
        resources={
            "store": StoreResource(),
            "torch_device": TorchDeviceResource(),
            "data_sources": DataSourcesResource(),
            "daily_files": DailyFilesResource(),
            "io_manager": store_handle_io_manager,
        },
        executor=default_executor(),
    )


defs = build_definitions()
