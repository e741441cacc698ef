"""Scale-out paths, shown locally: a job on the multiprocess executor (one process per
step), and the training loop under DistributedDataParallel in 2 CPU processes (gloo),
spawned here or launched by ``torchrun --nproc_per_node=2``, giving the one-process
result."""

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest
import torch
import torch.multiprocessing as mp

from assets.cooc import build_cooc_assets
from assets.datasets import build_file_dataset_asset
from assets.io_manager import JsonHandleIOManager
from assets.resources import DataSourcesResource, StoreResource
from jobs.executor import default_executor
from recflow.data.registry import FILE_DATASETS
from recflow.seq.finetune import Method
from tests import ddp_runs
from tests.tiny_world import make_world

warnings.filterwarnings("ignore", category=dg.BetaWarning)

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "scripts" / "torchrun_demo.py"


def multiprocess_job() -> dg.JobDefinition:
    """The tiny world's dataset and matrix (2 steps; each step process imports dagster,
    torch and polars, about 3 s here) on the executor that ``RECFLOW_EXECUTOR`` picks.
    Rebuilt in every step process from the environment."""
    root = Path(os.environ["RECFLOW_TEST_WORLD"])
    items = [build_file_dataset_asset(FILE_DATASETS["ml_small"]), *build_cooc_assets("ml_small")]
    defs = dg.Definitions(
        assets=[d for d in items if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in items if isinstance(d, dg.AssetChecksDefinition)],
        resources={
            "store": StoreResource(root=str(root / "store")),
            "io_manager": JsonHandleIOManager(root=str(root / "store")),
            "data_sources": DataSourcesResource(movielens_small_dir=str(root / "raw")),
        },
        jobs=[
            dg.define_asset_job(
                "tiny_matrix",
                selection=dg.AssetSelection.all() - dg.AssetSelection.all_asset_checks(),
            )
        ],
        executor=default_executor(),
    )
    return defs.resolve_job_def("tiny_matrix")


@pytest.mark.slow
def test_a_job_runs_on_the_multiprocess_executor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_world(tmp_path / "world")
    monkeypatch.setenv("RECFLOW_TEST_WORLD", str(tmp_path / "world"))
    monkeypatch.setenv("RECFLOW_EXECUTOR", "multiprocess")
    monkeypatch.setenv("RECFLOW_MAX_CONCURRENT", "2")
    assert multiprocess_job().executor_def.name == "multiprocess"
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(multiprocess_job), instance=instance)
        assert result.success
        starts = [e for e in result.all_events if e.event_type_value == "STEP_START"]
        matrix = result.asset_materializations_for_node("ml_small__cooc_matrix")[0]
    assert sorted(e.step_key for e in starts) == ["ml_small__cooc_matrix", "ml_small__dataset"]
    pids = {e.pid for e in starts}
    assert len(pids) == 2 and os.getpid() not in pids  # one fresh process per step
    assert matrix.metadata["events"].value == 15  # the tiny world's ratings


def _load_demo():
    spec = importlib.util.spec_from_file_location("torchrun_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_one_process(tmp_path: Path) -> None:
    _load_demo().run(tmp_path / "one")  # no process group here: world size 1
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(DEMO),
        "--out",
        str(tmp_path / "two"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    one = json.loads((tmp_path / "one" / "result.json").read_text())
    two = json.loads((tmp_path / "two" / "result.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["samples"] == two["samples"] == 4 * 250
    losses_one = torch.tensor([r["loss"] for r in one["history"]])
    losses_two = torch.tensor([r["loss"] for r in two["history"]])
    assert losses_one[-1] < 0.5 * losses_one[0]  # it did learn
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-5, atol=1e-6)
    for name, value in one["state"].items():
        torch.testing.assert_close(
            torch.tensor(two["state"][name]), torch.tensor(value), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("method", [Method.FINE_ALL, Method.PETERREC_SERIAL])
def test_two_spawned_processes_match_one_process(tmp_path: Path, method: Method) -> None:
    """Full fine-tune and patch-only PeterRec (most weights frozen): 2 DDP processes over
    gloo, each on its share of every global batch, end where one process does."""
    model, result = ddp_runs.finetune_run(method)
    out = tmp_path / "two.pt"
    mp.spawn(ddp_runs.worker, args=(2, str(tmp_path / "init"), str(method), str(out)), nprocs=2)
    two = torch.load(out, weights_only=True)

    losses_one = torch.tensor([r["loss"] for r in result.history])
    losses_two = torch.tensor([r["loss"] for r in two["history"]])
    torch.testing.assert_close(losses_two, losses_one, rtol=1e-5, atol=1e-6)
    start = ddp_runs.initial_model(method).state_dict()
    state = model.state_dict()
    assert state.keys() == two["state"].keys()
    for name, value in state.items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-5, atol=1e-6)
    moved = {n for n, v in state.items() if not torch.equal(v, start[n])}
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert moved == trained  # every trained weight moved, no frozen one did


def test_a_parameter_no_process_uses_gets_no_gradient(tmp_path: Path) -> None:
    """Under DDP (find_unused_parameters) a branch the loss never reads keeps grad=None,
    so AdamW's weight decay leaves it alone, as in one process."""
    model, _ = ddp_runs.unused_branch_run()
    out = tmp_path / "two.pt"
    mp.spawn(ddp_runs.worker, args=(2, str(tmp_path / "init"), "unused_branch", str(out)), nprocs=2)
    two = torch.load(out, weights_only=True)["state"]
    start = ddp_runs.two_branches().state_dict()
    assert model["b"].weight.grad is None
    for name, value in model.state_dict().items():
        torch.testing.assert_close(two[name], value, rtol=1e-5, atol=1e-6)
    assert torch.equal(two["b.weight"], start["b.weight"])
    assert torch.equal(two["b.bias"], start["b.bias"])
    assert not torch.equal(two["a.weight"], start["a.weight"])  # a trained
