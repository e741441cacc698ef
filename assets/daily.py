"""Daily feeds: interactions that arrive as one file per day (see ``recflow.data.daily``).

For a feed ``F`` on top of a base dataset ``B``::

    F/daily_files  (raw)         observed source: one data version (content hash) per day file
    F/daily_interactions          one partition per day: that day's file validated and stored
      (canonical)                 as Parquet; each day depends on the day before, so days land
                                  in order and a backfill of a range runs them oldest first
    F/dataset      (canonical)    B's tables + B's events before the feed's start + every
                                  delivered day: the feed's input to the cooc matrix and the
                                  methods, like any other dataset

The rest of the graph stays unpartitioned: a new or changed day file marks ``F/dataset``
and everything below it stale, and the daily schedule refreshes them.
"""

import os
import warnings
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from assets.datasets import dataset_key, write_canonical
from assets.groups import group_name
from assets.metadata import markdown_table
from assets.resources import REPO_ROOT, StoreResource
from recflow.data.daily import (
    DailyFeed,
    FeedOrderError,
    list_day_files,
    run_feed_dataset,
    run_ingest_days,
)
from recflow.data.daily import ingested_days as read_ingested_days
from recflow.data.dataset import DatasetArtifact
from recflow.data.raw import content_hash
from recflow.data.registry import DAILY_FEEDS  # noqa: F401  (scripts/make_daily_files.py)
from recflow.data.validate import DataValidationError

DAILY_CODE_VERSION = "3"
REFRESH_TAG = "recflow/refresh"
"""Assets tagged ``recflow/refresh: daily`` join the daily refresh schedule."""


class DailyFilesResource(dg.ConfigurableResource):
    """Where daily files arrive: ``<root>/<feed name>/YYYY-MM-DD.csv`` (or ``.parquet``)."""

    root: str = os.environ.get("RECFLOW_DAILY_DIR", str(REPO_ROOT / "data" / "daily"))

    def folder(self, feed: str) -> Path:
        return Path(self.root) / feed


def daily_files_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey([feed, "daily_files"])


def daily_interactions_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey([feed, "daily_interactions"])


def feed_partitions(feed: DailyFeed) -> dg.DailyPartitionsDefinition:
    """One partition per UTC day from the feed's start (through its end, if it has one)."""
    end = None if feed.end is None else (feed.end + timedelta(days=1)).isoformat()
    return dg.DailyPartitionsDefinition(start_date=feed.start.isoformat(), end_date=end)


def ingest_when_delivered() -> dg.AutomationCondition:
    """A day partition runs when its file was observed with new content (an update of
    an observed source, not of the materialized assets it reads), once the day before it
    (a dependency of the partition) is ingested: days land in order."""
    ac = dg.AutomationCondition
    return (
        ac.any_deps_updated().ignore(dg.AssetSelection.all()).since_last_handled()
        & ~ac.any_deps_missing()
        & ~ac.any_deps_in_progress()
        & ~ac.in_progress()
    ).with_label("ingest_when_delivered")


def _parts_dir(store: StoreResource, feed: str) -> Path:
    return store.store().artifact_dir(f"{feed}/daily_interactions")


def ingested_days(store: StoreResource, feed: str) -> dict[date, str]:
    """Days already ingested into the store, with the content hash of the file they came from."""
    return read_ingested_days(_parts_dir(store, feed))


def build_daily_assets(feed: DailyFeed) -> list:
    """The observed day files, the per-day ingestion and the feed's canonical dataset."""
    partitions = feed_partitions(feed)
    files_key = daily_files_key(feed.name)
    ingest_key = daily_interactions_key(feed.name)
    # Beta in Dagster 1.13: observable sources with a version per partition (one content
    # hash per day file) and backfill policies (one run for a range of days, oldest
    # first); keep the warnings out of every run.
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*observable_source_asset")
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy")
    warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*DataVersionsByPartition")

    @dg.observable_source_asset(
        key=files_key,
        group_name=group_name(feed.name, "raw"),
        partitions_def=partitions,
        description=(
            f"Daily interaction files of {feed.name} (one YYYY-MM-DD.csv per day, "
            "canonical interaction columns); each day's data version is its content hash."
        ),
    )
    def _observe(
        context: dg.AssetExecutionContext, daily_files: DailyFilesResource
    ) -> dg.DataVersionsByPartition:
        files = list_day_files(daily_files.folder(feed.name))
        valid = set(partitions.get_partition_keys())
        versions = {d.isoformat(): content_hash([p]) for d, p in files.items()}
        outside = sorted(k for k in versions if k not in valid)
        if outside:
            context.log.warning(
                f"{feed.name}: ignoring files outside the feed's days "
                f"({feed.start} .. {feed.end or 'open'}): {outside[:5]}"
            )
        return dg.DataVersionsByPartition({k: v for k, v in versions.items() if k in valid})

    @dg.asset(
        key=ingest_key,
        ins={"base_handle": dg.AssetIn(key=dataset_key(feed.base))},
        deps=[
            dg.AssetDep(files_key),
            dg.AssetDep(
                ingest_key,
                partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        automation_condition=ingest_when_delivered(),
        group_name=group_name(feed.name, "canonical"),
        kinds={"polars", "parquet"},
        code_version=DAILY_CODE_VERSION,
        description=(
            f"One day of {feed.name} events: the day's file checked (columns, types, "
            f"timestamps inside the day, ids known in {feed.base}) and stored as Parquet. "
            "A backfill of a range runs in one process, oldest day first."
        ),
    )
    def _ingest(
        context: dg.AssetExecutionContext,
        base_handle: DatasetArtifact,
        store: StoreResource,
        daily_files: DailyFilesResource,
    ) -> dg.MaterializeResult:
        days = sorted(date.fromisoformat(k) for k in context.partition_keys)
        parts = _parts_dir(store, feed.name)
        files = list_day_files(daily_files.folder(feed.name))
        try:
            rows = run_ingest_days(feed, days, files, parts, base_handle.load(), context.log.info)
        except FeedOrderError as err:
            raise dg.Failure(f"{err} (folder {daily_files.folder(feed.name)})") from err
        except DataValidationError as err:
            raise dg.Failure(
                description=str(err),
                metadata={"file": err.file, "column": err.column or "", "rows": err.rows},
            ) from err
        events = sum(r["events"] for r in rows)
        return dg.MaterializeResult(
            metadata={
                "days": len(rows),
                "events": events,
                "dagster/row_count": events,
                "per day": markdown_table(rows),
                "path": dg.MetadataValue.path(str(parts)),
            }
        )

    @dg.asset(
        key=dataset_key(feed.name),
        ins={"base_handle": dg.AssetIn(key=dataset_key(feed.base))},
        deps=[dg.AssetDep(ingest_key)],
        group_name=group_name(feed.name, "canonical"),
        kinds={"polars", "parquet"},
        tags={REFRESH_TAG: "daily"},
        code_version=DAILY_CODE_VERSION,
        description=(
            f"Canonical tables of the daily feed {feed.name}: {feed.base}'s items, users and "
            f"queries, its events before {feed.start}, and every ingested day in order. "
            f"{feed.description}"
        ),
    )
    def _dataset(
        context: dg.AssetExecutionContext, base_handle: DatasetArtifact, store: StoreResource
    ) -> dg.Output[DatasetArtifact]:
        parts = _parts_dir(store, feed.name)
        try:
            tables, ingested = run_feed_dataset(feed, base_handle.load(), parts)
        except FeedOrderError as err:
            raise dg.Failure(str(err)) from err
        span = f" ({ingested[0]} .. {ingested[-1]})" if ingested else ""
        context.log.info(f"{feed.name}: {len(ingested)} days{span} on top of {feed.base}")
        return write_canonical(context, store, feed.name, tables)

    return [_observe, _ingest, _dataset]
