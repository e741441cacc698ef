"""Two runs of the same chain at once: each step reads its own run's upstream version,
and the store's LATEST names the version of Dagster's latest materialization.

The race is forced, not hoped for: run A's matrix step waits to load its dataset until
run B has written (and recorded) a different dataset version of its own. With one handle
per asset (last writer wins) A would then read B's dataset; with run-keyed handles it
reads its own.
"""

import json
import threading
import warnings
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from assets.cooc import build_cooc_assets
from assets.datasets import synthetic_dataset
from assets.io_manager import HandleIOManager, store_handle_io_manager
from assets.resources import StoreResource
from recflow.store import ArtifactStore
from tests.faults.runs_assets import made

warnings.filterwarnings("ignore", category=dg.BetaWarning)

SMALL = {"n_users": 120, "n_items": 150, "n_events": 6_000, "n_clusters": 4}
DATASET = dg.AssetKey(["synthetic", "dataset"])
MATRIX = dg.AssetKey(["synthetic", "cooc_matrix"])
USED = dg.AssetKey(["t", "used"])
MADE_T = dg.AssetKey(["t", "made"])
WAIT_S = 120.0


class _GatedHandles(HandleIOManager):
    """The shipped IO manager, except that run A's loads wait for run B to finish."""

    def __init__(self, root: Path, gate: threading.Event) -> None:
        super().__init__(root)
        self.gate = gate

    def load_input(self, context: dg.InputContext) -> Any:
        if threading.current_thread().name == "run-A":
            assert self.gate.wait(WAIT_S), "run B never finished"
        return super().load_input(context)


def _run(
    root: Path, instance: dg.DagsterInstance, gate: threading.Event, seed: int
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [synthetic_dataset, *build_cooc_assets("synthetic")],
        instance=instance,
        resources={
            "store": StoreResource(root=str(root)),
            "io_manager": dg.IOManagerDefinition.hardcoded_io_manager(_GatedHandles(root, gate)),
        },
        run_config={"ops": {"synthetic__dataset": {"config": {**SMALL, "seed": seed}}}},
    )


def _loaded(result: dg.ExecuteInProcessResult, step: str) -> dict[str, Any]:
    """The metadata of the input ``step`` loaded (the IO manager's record of lineage)."""
    events = [
        e for e in result.all_events if e.event_type_value == "LOADED_INPUT" and e.step_key == step
    ]
    assert len(events) == 1, events
    return {k: v.value for k, v in events[0].event_specific_data.metadata.items()}


def _recorded_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str:
    record = instance.fetch_materializations(key, limit=1).records[0]
    return str(record.asset_materialization.metadata["store_version"].value)


@pytest.mark.slow
def test_two_concurrent_runs_each_read_their_own_upstream_version(
    tmp_path: Path, fault_table
) -> None:
    root = tmp_path / "store"
    gate = threading.Event()
    results: dict[str, dg.ExecuteInProcessResult] = {}
    errors: list[BaseException] = []

    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:

        def run_a() -> None:
            try:
                results["A"] = _run(root, instance, gate, seed=1)
            except BaseException as exc:  # surfaced below, not lost in the thread
                errors.append(exc)

        thread = threading.Thread(target=run_a, name="run-A")
        thread.start()
        try:
            handles = root / "_handles" / "synthetic" / "dataset"
            for _ in range(int(WAIT_S * 10)):  # A has written its dataset: now B runs whole
                if handles.is_dir() and any(handles.glob("*.json")):
                    break
                threading.Event().wait(0.1)
            results["B"] = _run(root, instance, threading.Event(), seed=2)
        finally:
            gate.set()
            thread.join(WAIT_S)
        assert not errors, errors
        a, b = results["A"], results["B"]
        assert a.success and b.success

        dataset_a = a.output_for_node("synthetic__dataset").path
        dataset_b = b.output_for_node("synthetic__dataset").path
        assert dataset_a != dataset_b
        assert (
            a.output_for_node("synthetic__cooc_matrix").path
            != b.output_for_node("synthetic__cooc_matrix").path
        )
        for result, own in ((a, dataset_a), (b, dataset_b)):
            # the matrix step loaded its own run's dataset version (the IO manager's record)
            loaded = _loaded(result, "synthetic__cooc_matrix")
            assert loaded["from_run"] == result.run_id
            assert loaded["store_version"] == "/".join(Path(own).parts[-3:])

        # A finished last, so Dagster's latest is A's, and so is the store's LATEST
        store = ArtifactStore(root)
        for key, name in ((DATASET, "synthetic/dataset"), (MATRIX, "synthetic/cooc_matrix")):
            latest = store.latest(name)
            assert f"{name}/{latest.name}" == _recorded_version(instance, key)
        assert (
            str(store.latest("synthetic/cooc_matrix"))
            == a.output_for_node("synthetic__cooc_matrix").path
        )
    fault_table.record(
        "two concurrent runs of one chain (forced interleaving)",
        "each matrix built from its own run's dataset version; LATEST = Dagster's latest",
        "nothing",
    )


def test_a_launchpad_store_root_moves_the_handles_too(tmp_path: Path) -> None:
    @dg.asset(key=["t", "used"], ins={"made": dg.AssetIn(key=["t", "made"])})
    def used(made: dict[str, str]) -> dict[str, str]:
        return {"read": made["path"]}

    shipped, override = tmp_path / "shipped", tmp_path / "over ' ride"
    defs = dg.Definitions(
        assets=[made, used],
        resources={
            "store": StoreResource(root=str(shipped)),
            "io_manager": store_handle_io_manager,
        },
    )
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"resources": {"store": {"config": {"root": str(override)}}}},
        )
    assert result.success
    assert not shipped.exists()
    assert (override / "_handles" / "t" / "made" / f"{result.run_id}.json").exists()
    assert result.output_for_node("t__used")["read"].startswith(str(override / "t" / "made"))
    assert ArtifactStore(override).latest("t/made") == Path(
        result.output_for_node("t__made")["path"]
    )


def test_an_upstream_from_an_earlier_run_is_dagsters_latest_not_the_last_written(
    tmp_path: Path,
) -> None:
    """A handle written by a run Dagster has no record of (another instance, a crashed
    run) is never read: the step reads the run of Dagster's latest materialization."""
    root = tmp_path / "store"

    @dg.asset(key=["t", "made"], config_schema={"tag": str})
    def made(context: dg.AssetExecutionContext) -> dict[str, str]:
        return {"tag": context.op_execution_context.op_config["tag"]}

    @dg.asset(key=["t", "used"], ins={"made": dg.AssetIn(key=["t", "made"])})
    def used(made: dict[str, str]) -> dict[str, str]:
        return {"read": made["tag"]}

    resources = {"store": StoreResource(root=str(root)), "io_manager": store_handle_io_manager}
    home = str(tmp_path / "dagster_home")
    Path(home).mkdir()

    def tagged(tag: str) -> dict:
        return {"ops": {"t__made": {"config": {"tag": tag}}}}

    with dg.instance_for_test(temp_dir=home) as instance:
        assert dg.materialize(
            [made], instance=instance, resources=resources, run_config=tagged("recorded")
        ).success
    with dg.instance_for_test() as elsewhere:  # a later write this instance never saw
        assert dg.materialize(
            [made], instance=elsewhere, resources=resources, run_config=tagged("stray")
        ).success
    with dg.instance_for_test(temp_dir=home) as instance:
        result = dg.materialize(
            [made, used], instance=instance, resources=resources, selection=[USED]
        )
        assert result.output_for_node("t__used") == {"read": "recorded"}
    with dg.instance_for_test() as fresh:  # no record at all: a clear error, not a guess
        result = dg.materialize(
            [made, used],
            instance=fresh,
            resources=resources,
            selection=[USED],
            raise_on_error=False,
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        assert "t/made has no materialization recorded" in str(failure.event_specific_data.error)


def test_a_reexecution_from_failure_reads_its_parent_runs_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run 1 builds t/made and fails at t/used; another run then builds a newer t/made
    (Dagster's latest); re-executing run 1 from its failure reads run 1's t/made."""
    from tests.faults.runs_reexecution_job import reexecution_job

    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setenv("RECFLOW_HOME", str(tmp_path / "store"))
    monkeypatch.setenv("RECFLOW_FAULT_FLAG", str(flag))
    handles = tmp_path / "store" / "_handles" / "t"
    job = dg.reconstructable(reexecution_job)
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance=instance, raise_on_error=False) as first:
            assert not first.success
        own = json.loads((handles / "made" / f"{first.run_id}.json").read_text())["path"]
        with dg.execute_job(job, instance=instance, asset_selection=[MADE_T]) as other:
            assert other.success
        newer = json.loads((handles / "made" / f"{other.run_id}.json").read_text())["path"]
        flag.unlink()
        options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
        with dg.execute_job(job, instance=instance, reexecution_options=options) as again:
            assert again.success
        read = json.loads((handles / "used" / f"{again.run_id}.json").read_text())["read"]
    assert newer != own
    assert read == own
