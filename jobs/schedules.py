"""The daily refresh schedule.

``daily_refresh`` runs the ``daily_refresh`` job (``jobs/jobs.py``: every co-consumption
matrix, the daily feeds' datasets, and every asset tagged ``recflow/refresh: daily``)
at ``RECFLOW_REFRESH_CRON`` (default ``0 3 * * *``) in ``RECFLOW_REFRESH_TZ`` (default
UTC). It refreshes only what it can: an asset whose inputs from outside the refresh
have never been materialized (a dataset nobody built yet) is left out, and a tick with
nothing to refresh is skipped with the reason.

It is on as soon as ``dagster dev`` runs (default status RUNNING);
``RECFLOW_REFRESH_SCHEDULE=stopped`` ships it stopped. Either way the toggle on the UI's
Automation page overrides the default.
"""

import os
from collections.abc import Callable

import dagster as dg

from jobs.jobs import DAILY_REFRESH, daily_refresh_job


def refresh_schedule_status() -> dg.DefaultScheduleStatus:
    """RUNNING unless ``RECFLOW_REFRESH_SCHEDULE=stopped``."""
    value = os.environ.get("RECFLOW_REFRESH_SCHEDULE", "running").strip().lower()
    if value not in {"running", "stopped"}:
        raise ValueError(f"RECFLOW_REFRESH_SCHEDULE={value!r}: expected 'running' or 'stopped'")
    if value == "running":
        return dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultScheduleStatus.STOPPED


def refreshable(
    selected: set[dg.AssetKey],
    parents_of: Callable[[dg.AssetKey], set[dg.AssetKey]],
    needs_materialization: Callable[[dg.AssetKey], bool],
) -> set[dg.AssetKey]:
    """The assets of ``selected`` whose every parent is either refreshable itself or
    already there (``needs_materialization(parent)`` is False)."""
    ready: dict[dg.AssetKey, bool] = {}

    def check(key: dg.AssetKey) -> bool:
        if key not in ready:
            ready[key] = all(
                check(p) if p in selected else not needs_materialization(p) for p in parents_of(key)
            )
        return ready[key]

    return {k for k in selected if check(k)}


def build_daily_refresh_schedule() -> dg.ScheduleDefinition:
    """The schedule, with cron, time zone and default status read from the environment."""

    @dg.schedule(
        name="daily_refresh",
        job=daily_refresh_job,
        cron_schedule=os.environ.get("RECFLOW_REFRESH_CRON", "0 3 * * *"),
        execution_timezone=os.environ.get("RECFLOW_REFRESH_TZ", "UTC"),
        default_status=refresh_schedule_status(),
        description=daily_refresh_job.description,
    )
    def _daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        graph = context.repository_def.asset_graph

        def never_materialized(key: dg.AssetKey) -> bool:
            # sources and partitioned assets never block: a feed without days is a feed
            node = graph.get(key)
            if not node.is_materializable or node.partitions_def is not None:
                return False
            return context.instance.get_latest_materialization_event(key) is None

        selected = set(DAILY_REFRESH.resolve(graph))
        ready = refreshable(selected, lambda k: set(graph.get(k).parent_keys), never_materialized)
        if not ready:
            return dg.SkipReason(
                "nothing to refresh yet: materialize the datasets first (materialize_default)"
            )
        return dg.RunRequest(asset_selection=sorted(ready, key=lambda k: k.to_user_string()))

    return _daily_refresh
