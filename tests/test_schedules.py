"""The daily refresh: the schedule (on by default, cron from the environment), what it
refreshes (new assets join by tag), and backfills of a range of days (one run, oldest
day first; a day never lands before the day before it)."""

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.daily import REFRESH_TAG
from jobs.schedules import build_daily_refresh_schedule
from tests.tiny_world import DAY, FEED, RATINGS, T0, World, graph, make_world

warnings.filterwarnings("ignore", category=dg.BetaWarning)

DAYS = dg.AssetKey([FEED.name, "daily_interactions"])
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def test_the_schedule_is_on_by_default_and_its_cron_is_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("RECFLOW_REFRESH_CRON", "RECFLOW_REFRESH_TZ", "RECFLOW_REFRESH_SCHEDULE"):
        monkeypatch.delenv(var, raising=False)
    schedule = build_daily_refresh_schedule()
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * *", "UTC")
    assert schedule.job_name == "daily_refresh"

    monkeypatch.setenv("RECFLOW_REFRESH_CRON", "30 5 * * 1-5")
    monkeypatch.setenv("RECFLOW_REFRESH_TZ", "Europe/Paris")
    monkeypatch.setenv("RECFLOW_REFRESH_SCHEDULE", "stopped")
    schedule = build_daily_refresh_schedule()
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 5 * * 1-5", "Europe/Paris")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED

    monkeypatch.setenv("RECFLOW_REFRESH_SCHEDULE", "sometimes")
    with pytest.raises(ValueError, match="RECFLOW_REFRESH_SCHEDULE"):
        build_daily_refresh_schedule()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """An instance on disk under the test's folder (a schedule context reopens it from
    its reference, which an in-memory instance does not have)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    test_instance = dg.DagsterInstance.local_temp(str(home))
    yield test_instance
    test_instance.dispose()


def _defs(world: World, extra: list | None = None) -> dg.Definitions:
    items = [*graph(), *(extra or [])]
    return dg.Definitions(
        assets=[d for d in items if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in items if isinstance(d, dg.AssetChecksDefinition)],
        schedules=[build_daily_refresh_schedule()],
        resources=world.resources(),
    )


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    """What the schedule asks for at 03:00."""
    schedule = defs.resolve_schedule_def("daily_refresh")
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2025, 1, 2, 3, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    result = schedule.evaluate_tick(context)
    if result.skip_message:
        return dg.SkipReason(result.skip_message)
    (request,) = result.run_requests
    return request


def _keys(request: dg.RunRequest) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection}


def test_the_refresh_covers_matrices_feeds_and_anything_tagged(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    # a stand-in for a method's warm-start refresh: it joins by carrying the tag
    @dg.asset(
        key=[FEED.name, "warm_refresh"],
        deps=[dg.AssetKey([FEED.name, "cooc_matrix"])],
        tags={REFRESH_TAG: "daily"},
    )
    def warm_refresh() -> None: ...

    @dg.asset(key=[FEED.name, "full_retrain"], deps=[dg.AssetKey([FEED.name, "cooc_matrix"])])
    def full_retrain() -> None: ...

    defs = _defs(make_world(tmp_path), [warm_refresh, full_retrain])
    job = defs.resolve_job_def("daily_refresh")
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert selected == {
        "ml_small/cooc_matrix",
        f"{FEED.name}/dataset",
        f"{FEED.name}/cooc_matrix",
        f"{FEED.name}/warm_refresh",
    }
    checks = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert "no_self_pairs" in checks

    skipped = _tick(defs, instance)  # nothing was ever built: nothing to refresh
    assert isinstance(skipped, dg.SkipReason) and "materialize the datasets" in skipped.skip_message
    whole = defs.resolve_implicit_global_asset_job_def()
    ml = dg.AssetKey(["ml_small", "dataset"])
    assert whole.execute_in_process(instance=instance, asset_selection=[ml]).success
    # the refresh rebuilds the feed from ml_small, so all four can run; the full retrain
    # is not part of the daily refresh
    assert _keys(_tick(defs, instance)) == selected


def _range_run(defs: dg.Definitions, instance: dg.DagsterInstance, first: str, last: str):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[DAYS],
        tags={RANGE_START: first, RANGE_END: last},
        raise_on_error=False,
    )


def _ingest_log(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """The days the run's log says were ingested, in the order it says so."""
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return [m.split(": ingested ")[1].split(" ")[0] for m in messages if ": ingested " in m]


def test_a_backfill_of_days_runs_once_oldest_first_then_the_refresh_sees_them(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    world = make_world(tmp_path)
    for i in (4, 2, 3):  # files arrive in any order
        world.deliver(i)
    defs = _defs(world)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(["ml_small", "dataset"])]
    ).success

    # one run for the whole range (the asset's backfill policy), days in date order
    assert defs.resolve_assets_def(DAYS).backfill_policy == dg.BackfillPolicy.single_run()
    result = _range_run(defs, instance, "2020-01-03", "2020-01-05")
    assert result.success
    assert _ingest_log(instance, result) == ["2020-01-03", "2020-01-04", "2020-01-05"]
    materialized = instance.get_materialized_partitions(DAYS)
    assert materialized == {"2020-01-03", "2020-01-04", "2020-01-05"}

    request = _tick(defs, instance)
    assert _keys(request) == {
        "ml_small/cooc_matrix",
        f"{FEED.name}/dataset",
        f"{FEED.name}/cooc_matrix",
    }
    refresh = defs.resolve_job_def("daily_refresh").execute_in_process(
        instance=instance, asset_selection=request.asset_selection
    )
    assert refresh.success
    assert all(e.passed for e in refresh.get_asset_check_evaluations())
    # every day replayed: the feed holds exactly the events of the base files
    store = world.store / FEED.name / "dataset"
    feed = pl.read_parquet(store / (store / "LATEST").read_text().strip() / "interactions.parquet")
    expected = sorted((u, m, T0 + d * DAY + s, r) for u, m, r, d, s in RATINGS)
    assert sorted(feed.select("user_id", "item_id", "timestamp", "label").iter_rows()) == expected


def test_a_day_never_lands_before_the_day_before_it(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    world = make_world(tmp_path)
    for i in (2, 3, 4):
        world.deliver(i)
    defs = _defs(world)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(["ml_small", "dataset"])]
    ).success

    late = _range_run(defs, instance, "2020-01-04", "2020-01-05")
    assert not late.success
    failure = next(e for e in late.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "2020-01-03 has not been ingested" in message
    assert "ingest 2020-01-03 .. 2020-01-05" in message
    assert not (world.store / FEED.name / "daily_interactions").exists()

    (world.daily / "2020-01-04.csv").unlink()
    gap = _range_run(defs, instance, "2020-01-03", "2020-01-05")
    assert not gap.success
    assert _ingest_log(instance, gap) == ["2020-01-03"]  # stops at the first day without a file
    failure = next(e for e in gap.all_events if e.event_type_value == "STEP_FAILURE")
    assert "no file for 2020-01-04" in str(failure.event_specific_data.error)
