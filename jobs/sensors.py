"""Sensors besides automation: observe raw files when they change, log failed runs.

``observe_sources_on_change`` looks at the size and modification time of every raw file
and day file every ``RECFLOW_OBSERVE_INTERVAL_S`` seconds (default 60) and, when any of
them changed (and on its first tick), launches the ``observe_sources`` job, which hashes
the files' content. The automation sensor then reruns what a new data version makes
stale; a file rewritten with the same content gets the same version and reruns nothing.

``log_run_failures`` logs one message per failed run: the run, its job, the failed steps
with their assets and first error line, and what to do next, so the sensor's log on the
Automation page (and any log shipper reading it) says what broke without opening the run.
"""

import hashlib
import os
from pathlib import Path

import dagster as dg

from assets.daily import DailyFilesResource
from assets.resources import DataSourcesResource
from jobs.jobs import observe_sources_job
from recflow.data.registry import DAILY_FEEDS, FILE_DATASETS


def raw_files_fingerprint(
    data_sources: DataSourcesResource, daily_files: DailyFilesResource
) -> str:
    """A hash over (path, size, mtime) of every raw file and every file in the daily
    feeds' folders: cheap to compute, and it changes whenever a file is written."""
    paths: list[Path] = []
    for ds in FILE_DATASETS.values():
        folder = getattr(data_sources, ds.folder_setting)
        if folder:
            paths += ds.paths(Path(folder))
    for feed in DAILY_FEEDS:
        folder = daily_files.folder(feed)
        if folder.is_dir():
            paths += sorted(folder.iterdir())
    digest = hashlib.sha256()
    for path in paths:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dg.sensor(
    name="observe_sources_on_change",
    job=observe_sources_job,
    minimum_interval_seconds=int(os.environ.get("RECFLOW_OBSERVE_INTERVAL_S", "60")),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Observes the raw sources (content hashes) when a raw or daily file was written; "
        "the recflow_automation sensor then reruns exactly what changed content makes stale."
    ),
)
def observe_sources_on_change(
    context: dg.SensorEvaluationContext,
    data_sources: DataSourcesResource,
    daily_files: DailyFilesResource,
) -> dg.SensorResult | dg.SkipReason:
    fingerprint = raw_files_fingerprint(data_sources, daily_files)
    if fingerprint == context.cursor:
        return dg.SkipReason("no raw or daily file was written since the last observation")
    return dg.SensorResult(run_requests=[dg.RunRequest()], cursor=fingerprint)


def _first_error_line(event: dg.DagsterEvent) -> str:
    """The error's first line, without the ``package.module.ExceptionClass: `` prefix."""
    error = event.step_failure_data.error
    lines = error.message.strip().splitlines() if error else []
    if not lines:
        return "(no error message)"
    head, _, rest = lines[0].partition(": ")
    return rest if rest and error.cls_name and head.endswith(error.cls_name) else lines[0]


def planned_assets_by_step(
    instance: dg.DagsterInstance, run_id: str
) -> dict[str, list[dg.AssetKey]]:
    """Which assets each step of a run was to materialize (its "planned" events)."""
    out: dict[str, list[dg.AssetKey]] = {}
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    for record in records:
        event = record.dagster_event
        if event is not None and event.step_key and event.asset_key:
            out.setdefault(event.step_key, []).append(event.asset_key)
    return out


def failure_message(
    run: dg.DagsterRun,
    run_error: str | None,
    step_failures: list[dg.DagsterEvent],
    assets_by_step: dict[str, list[dg.AssetKey]] | None = None,
) -> str:
    """One paragraph about a failed run: which job, which steps and assets, which error."""
    head = f"run {run.run_id} of job {run.job_name!r} failed"
    partition = run.tags.get("dagster/partition")
    if partition:
        head += f" (partition {partition})"
    lines = [head]
    for event in step_failures:
        keys = (assets_by_step or {}).get(event.step_key or "", [])
        named = f" [{', '.join(k.to_user_string() for k in keys)}]" if keys else ""
        lines.append(f"  step {event.step_key}{named}: {_first_error_line(event)}")
    if not step_failures and run_error:
        lines.append(f"  {run_error.strip().splitlines()[0]}")
    lines.append(
        "  next: open the run in the UI for the full log; fix the input or code, then "
        "re-execute from failure (training resumes from its last checkpoint)"
    )
    return "\n".join(lines)


@dg.run_failure_sensor(
    name="log_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Logs one clear message per failed run: job, failed steps, assets, error.",
)
def log_run_failures(context: dg.RunFailureSensorContext) -> None:
    context.log.error(
        failure_message(
            context.dagster_run,
            context.failure_event.message,
            context.get_step_failure_events(),
            planned_assets_by_step(context.instance, context.dagster_run.run_id),
        )
    )
