"""Rerun on data change: after a raw file or a day file changes, the automation requests
exactly the stale downstream assets (with their checks riding along), days in order,
and nothing at all when a file is rewritten with the same content."""

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from jobs.automation import OPT_OUT_TAG, automation_sensor, with_automation
from jobs.definitions import defs as shipped_defs
from tests.tiny_world import DAY, FEED, RATINGS, T0, World, graph, make_world

warnings.filterwarnings("ignore", category=dg.BetaWarning)


def key(text: str) -> dg.AssetKey:
    return dg.AssetKey(text.split("/"))


ML = ["ml_small/dataset", "ml_small/cooc_matrix"]
FEED_DATASET = [f"{FEED.name}/dataset", f"{FEED.name}/cooc_matrix"]
DAYS = f"{FEED.name}/daily_interactions"


class Automation:
    """The tiny graph with the shipped automation, an instance, and a clock that ticks a
    minute per evaluation, the way the sensor would evaluate it."""

    def __init__(self, world: World) -> None:
        items = with_automation(graph())
        self.world = world
        self.defs = dg.Definitions(
            assets=[d for d in items if not isinstance(d, dg.AssetChecksDefinition)],
            asset_checks=[d for d in items if isinstance(d, dg.AssetChecksDefinition)],
            jobs=[
                dg.define_asset_job(
                    "observe",
                    selection=[key("ml_small/raw_files"), key(f"{FEED.name}/daily_files")],
                )
            ],
            resources=world.resources(),
        )
        self.job = self.defs.resolve_implicit_global_asset_job_def()
        self.instance = dg.DagsterInstance.ephemeral()
        self.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
        self.cursor = None

    def observe(self) -> None:
        assert (
            self.defs.resolve_job_def("observe").execute_in_process(instance=self.instance).success
        )

    def materialize(
        self, keys: list[str], partition: str | None = None
    ) -> dg.ExecuteInProcessResult:
        result = self.job.execute_in_process(
            instance=self.instance, asset_selection=[key(k) for k in keys], partition_key=partition
        )
        assert result.success
        return result

    def evaluate(self) -> dict[str, set[str | None]]:
        """One sensor tick: what it requests, as {asset: {partition or None}}."""
        self.now += timedelta(minutes=1)
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=automation_sensor.asset_selection,
            cursor=self.cursor,
            evaluation_time=self.now,
        )
        self.cursor = result.cursor
        requested = {}
        for r in result.results:
            if isinstance(r.key, dg.AssetKey) and r.true_subset.size:
                requested[r.key.to_user_string()] = set(result.get_requested_partitions(r.key))
        return requested

    def run_requested(self, requested: dict[str, set[str | None]]) -> list[str]:
        """Run what a tick requested as the sensor would: the unpartitioned assets in one
        run (their checks ride along), each requested day in its own. Returns the checks
        that ran."""
        plain = [k for k, parts in requested.items() if parts == {None}]
        for k, parts in requested.items():
            for p in sorted(x for x in parts if x is not None):
                self.materialize([k], partition=p)
        if not plain:
            return []
        result = self.materialize(plain)
        return sorted(
            f"{e.asset_key.to_user_string()}:{e.check_name}"
            for e in result.get_asset_check_evaluations()
        )


def _materialize_everything(auto: Automation) -> None:
    auto.observe()
    auto.materialize([*ML, *FEED_DATASET])
    assert auto.evaluate() == {}


def test_the_shipped_definitions_automate_every_asset() -> None:
    sensor = shipped_defs.resolve_sensor_def("recflow_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    graph_ = shipped_defs.resolve_asset_graph()
    for k in graph_.materializable_asset_keys:
        node = graph_.get(k)
        label = node.automation_condition.get_label() if node.automation_condition else None
        if node.tags.get(OPT_OUT_TAG) == "off":
            assert label is None, k.to_user_string()
            continue
        expected = "ingest_when_delivered" if node.partitions_def else "rerun_when_upstream_changed"
        assert label == expected, k.to_user_string()


def test_an_asset_can_opt_out() -> None:
    @dg.asset(tags={OPT_OUT_TAG: "off"})
    def full_retrain() -> None: ...

    @dg.asset(deps=[full_retrain])
    def evaluation() -> None: ...

    out = with_automation([full_retrain, evaluation])
    assert not any(out[0].automation_conditions_by_key.values())
    assert out[1].automation_conditions_by_key[evaluation.key].get_label() == (
        "rerun_when_upstream_changed"
    )


def test_a_changed_raw_file_reruns_exactly_what_depends_on_it(tmp_path: Path) -> None:
    auto = Automation(make_world(tmp_path))
    _materialize_everything(auto)
    ratings = auto.world.raw / "ratings.csv"

    ratings.write_text(ratings.read_text())  # same bytes, new modification time
    auto.observe()
    assert auto.evaluate() == {}

    ratings.write_text(ratings.read_text().replace("2,3,5.0,", "2,3,1.0,"))
    auto.observe()
    requested = auto.evaluate()
    # the feed's dataset is built on ml_small's, so it is stale too; the feed's days are not
    assert requested == {k: {None} for k in [*ML, *FEED_DATASET]}
    checks = auto.run_requested(requested)
    assert checks == sorted(
        f"{asset}:{name}"
        for asset in ("ml_small/cooc_matrix", f"{FEED.name}/cooc_matrix")
        for name in (
            "at_most_k_per_row",
            "no_self_pairs",
            "counts_positive",
            "weight_means_one",
            "ids_known",
        )
    )
    assert auto.evaluate() == {}

    (auto.world.raw / "movies.csv").write_text((auto.world.raw / "movies.csv").read_text())
    auto.observe()
    assert auto.evaluate() == {}


def _feed_interactions(world: World) -> list[tuple[int, int, int]]:
    store = world.store / FEED.name / "dataset"
    latest = (store / "LATEST").read_text().strip()
    df = pl.read_parquet(store / latest / "interactions.parquet")
    return sorted(df.select("user_id", "item_id", "timestamp").iter_rows())


def test_day_files_land_in_order_and_only_changed_days_rerun(tmp_path: Path) -> None:
    auto = Automation(make_world(tmp_path))
    _materialize_everything(auto)
    # before any day arrives the feed is ml_small's history before 2020-01-03: days 0 and 1
    history = sorted((u, m, T0 + d * DAY + s) for u, m, _, d, s in RATINGS if d < 2)
    assert _feed_interactions(auto.world) == history

    auto.world.deliver(3)  # 2020-01-04 arrives before 2020-01-03
    auto.observe()
    assert auto.evaluate() == {}  # it waits for the day before it

    auto.world.deliver(2)
    auto.observe()
    requested = auto.evaluate()
    assert requested == {DAYS: {"2020-01-03"}}
    auto.run_requested(requested)
    requested = auto.evaluate()
    assert requested == {DAYS: {"2020-01-04"}}  # the feed's dataset waits for this day
    auto.run_requested(requested)
    requested = auto.evaluate()
    assert requested == {k: {None} for k in FEED_DATASET}
    auto.run_requested(requested)
    assert auto.evaluate() == {}
    upto_day_3 = sorted((u, m, T0 + d * DAY + s) for u, m, _, d, s in RATINGS if d <= 3)
    assert _feed_interactions(auto.world) == upto_day_3

    auto.world.deliver(3)  # the same file again
    auto.observe()
    assert auto.evaluate() == {}

    day_3 = auto.world.daily / "2020-01-03.csv"
    day_3.write_text(day_3.read_text().replace(",4.0\n", ",2.0\n"))  # a corrected rating
    auto.observe()
    requested = auto.evaluate()
    assert requested == {DAYS: {"2020-01-03"}}  # only that day, not the day after it
    auto.run_requested(requested)
    assert auto.evaluate() == {k: {None} for k in FEED_DATASET}
