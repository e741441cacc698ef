"""A SIGKILLed training run gives its ``gpu`` slot back with no person involved.

``dagster dev`` (webserver, daemon, code server) runs on 127.0.0.1 with the shipped
dagster.yaml on a temporary DAGSTER_HOME, serving ``tests/faults/runs_training_location``:
one training asset in the ``gpu`` pool (limit 1). Run 1 trains slowly; run 2 is queued
behind it; run 1's worker is SIGKILLed after its second epoch. The code server marks run
1 failed, the monitoring daemon frees its slot, and run 2 must then start and finish —
resuming from run 1's last checkpoint to the same weights as an uninterrupted run.
"""

import os
import signal
import time
from pathlib import Path

import pytest
import torch

from recflow.store import load_state_dict
from recflow.train import TrainConfig, train
from tests.faults.runs_training_location import regression_problem
from tests.ui.dagster_dev_server import DagsterDevServer

LOCATION = "tests.faults.runs_training_location"
# the bound the issue asks for: slot freed (≤ 10 s after the run ended, checked every
# 10 s) + dequeue + a fresh run worker importing torch on a busy 2-core machine
NEXT_RUN_BOUND_S = 90.0
EPOCHS = 6

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""
STATUS = """query($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"""
LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { ... on RepositoryLocation { repositories { name } } } } } } }"""


def _launch(server: DagsterDevServer, location: str, repo: str, pause_s: float) -> str:
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repo,
            "jobName": "tiny_training_job",
        },
        "runConfigData": {
            "ops": {"fault__tiny_training": {"config": {"epochs": EPOCHS, "pause_s": pause_s}}}
        },
    }
    out = server.graphql(LAUNCH, {"params": params})["launchRun"]
    assert out["__typename"] == "LaunchRunSuccess", out
    return out["run"]["runId"]


def _status(server: DagsterDevServer, run_id: str) -> str:
    return server.graphql(STATUS, {"runId": run_id})["runOrError"]["status"]


def _wait(what: str, predicate, timeout_s: float, server: DagsterDevServer) -> float:
    """Poll ``predicate`` until true; the seconds it took, or fail with the server log."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"{what} not within {timeout_s:.0f} s\n{server.log_tail()}")


@pytest.mark.slow
def test_a_killed_training_run_releases_its_slot_and_the_next_run_resumes(
    tmp_path: Path, fault_table
) -> None:
    marks = tmp_path / "marks"
    server = DagsterDevServer(
        tmp_path / "dagster_home",
        tmp_path / "store",
        tmp_path / "dagster_dev.log",
        location_args=["-m", LOCATION],
        extra_env={"RECFLOW_FAULT_DIR": str(marks), "RECFLOW_CPU_THREADS": "1"},
    )
    server.start()
    try:
        server.wait_until_serving()
        server.wait_for_code_location()
        entry = server.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"][0]
        location, repo = entry["name"], entry["locationOrLoadError"]["repositories"][0]["name"]

        first = _launch(server, location, repo, pause_s=1.0)  # ~4 s per epoch
        _wait("run 1's second epoch", lambda: (marks / first / "epoch-2").exists(), 120, server)
        second = _launch(server, location, repo, pause_s=0.0)
        time.sleep(3)  # give run 2 the chance to (wrongly) start while the slot is held
        assert not (marks / second).exists(), "run 2 trained while run 1 held the gpu slot"

        done_epochs = max(int(p.name.split("-")[1]) for p in (marks / first).glob("epoch-*"))
        os.kill(int((marks / first / "pid").read_text()), signal.SIGKILL)
        killed_at = time.monotonic()

        _wait("run 1 marked FAILURE", lambda: _status(server, first) == "FAILURE", 30, server)
        started_s = _wait(
            "run 2 leaving QUEUED",
            lambda: _status(server, second) != "QUEUED",
            NEXT_RUN_BOUND_S,
            server,
        )
        _wait("run 2 SUCCESS", lambda: _status(server, second) == "SUCCESS", 120, server)
        waited_s = time.monotonic() - killed_at
    finally:
        server.stop()

    resumed_from = int((marks / second / "resumed_from").read_text())
    assert resumed_from == done_epochs  # the last checkpoint before the kill, not epoch 0
    model, loss_fn, batches = regression_problem()
    train(model, loss_fn, batches, TrainConfig(epochs=EPOCHS, lr=0.05, amp=False, device="cpu"))
    version = (tmp_path / "store" / "fault" / "tiny_training" / "LATEST").read_text().strip()
    trained = load_state_dict(tmp_path / "store" / "fault" / "tiny_training" / version / "model.pt")
    for name, value in model.state_dict().items():
        torch.testing.assert_close(trained[name], value, rtol=0, atol=0)
    fault_table.record(
        "SIGKILL of a training run's worker (dagster dev, shipped dagster.yaml)",
        f"run failed, gpu slot freed, next run left QUEUED {started_s:.0f} s after the "
        f"failure and resumed from epoch {resumed_from}/{EPOCHS} to bit-identical weights",
        f"the killed epoch's work ({waited_s:.0f} s from kill to the next run's success)",
    )
