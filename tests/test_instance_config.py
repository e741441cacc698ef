"""The shipped dagster.yaml: telemetry off, and the "gpu" pool limited to one step at a
time (the only pool the graph uses), honoured by a real run."""

from pathlib import Path

import dagster as dg
import yaml

from jobs.definitions import defs

REPO = Path(__file__).resolve().parent.parent


def _shipped_config() -> dict:
    return yaml.safe_load((REPO / "dagster.yaml").read_text())


def test_the_graph_uses_no_pool_but_gpu() -> None:
    graph = defs.resolve_asset_graph()
    pools = {p for k in graph.executable_asset_keys for p in graph.get(k).pools or ()}
    assert pools <= {"gpu"}


def test_the_shipped_instance_limits_the_gpu_pool_to_one(tmp_path: Path) -> None:
    @dg.asset(pool="gpu")
    def trains_on_the_gpu() -> int:
        return 1

    with dg.instance_for_test(overrides=_shipped_config()) as instance:
        assert not instance.telemetry_enabled
        pool_config = instance.get_concurrency_config().pool_config
        assert pool_config.default_pool_limit == 1
        assert pool_config.pool_granularity.value == "op"
        assert dg.materialize([trains_on_the_gpu], instance=instance).success
        info = instance.event_log_storage.get_concurrency_info("gpu")
        assert info.slot_count == 1  # created at the default limit by the first GPU step
        assert len(info.claimed_slots) == 0  # and given back when it finished


def test_the_shipped_instance_frees_the_slots_of_dead_runs() -> None:
    """Run monitoring on, with a slot release the dead-run test can wait for
    (tests/faults/test_dead_run.py shows it end to end under ``dagster dev``)."""
    with dg.instance_for_test(overrides=_shipped_config()) as instance:
        assert instance.run_monitoring_enabled
        settings = instance.run_monitoring_settings
        assert 0 < settings["free_slots_after_run_end_seconds"] <= 30
        assert instance.run_monitoring_poll_interval_seconds <= 30
        # the default run launcher cannot resume a run: resuming must be off, or
        # the instance refuses to start with monitoring on
        assert instance.run_monitoring_max_resume_run_attempts == 0
