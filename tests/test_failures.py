"""Failures: a training asset retries under the central policy and resumes from its
checkpoint, a failing blocking check on the matrix stops what reads it (now and in
automation), and a failed run is logged in one clear message."""

import dataclasses
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import torch
from torch import nn

import assets.cooc
from assets.cooc import build_cooc_assets, cooc_key
from assets.datasets import build_file_dataset_asset
from assets.io_manager import JsonHandleIOManager
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from jobs.automation import with_automation
from jobs.retries import is_training_asset, training_retry_policy, with_training_retries
from jobs.sensors import failure_message, log_run_failures, planned_assets_by_step
from recflow.cooc import CoocArtifact
from recflow.data.registry import FILE_DATASETS
from recflow.train import TrainConfig, train
from tests.tiny_world import make_world

warnings.filterwarnings("ignore", category=dg.BetaWarning)


def _regression() -> tuple[nn.Module, object, object]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)  # (64, 3)
    y = x @ torch.tensor([[1.0], [-1.0], [2.0]])  # (64, 1)
    torch.manual_seed(0)
    model = nn.Linear(3, 1)

    def batches(epoch: int, gen: torch.Generator):
        perm = torch.randperm(64, generator=gen)
        for i in range(0, 64, 16):
            yield x[perm[i : i + 16]], y[perm[i : i + 16]]

    def loss_fn(m: nn.Module, batch) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]), batch[1])

    return model, loss_fn, batches


CONFIG = TrainConfig(epochs=4, lr=0.05, amp=False, log_every=1000)


def test_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECFLOW_TRAIN_RETRIES", "5")
    monkeypatch.setenv("RECFLOW_TRAIN_RETRY_DELAY_S", "1.5")
    policy = training_retry_policy()
    assert (policy.max_retries, policy.delay, policy.backoff) == (5, 1.5, dg.Backoff.EXPONENTIAL)


def test_an_interrupted_training_asset_retries_and_resumes_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    attempts: list[int | None] = []

    @dg.asset(key="tiny_model", pool="gpu", code_version="1")
    def tiny_model(
        context: dg.AssetExecutionContext, store: StoreResource, torch_device: TorchDeviceResource
    ) -> dict:
        device = torch_device.resolve(context.log)
        model, loss_fn, batches = _regression()
        report = log_progress(context, "tiny_model epoch")

        def on_progress(step: int, total: int, values: dict[str, float]) -> None:
            report(step, total, values)
            if not attempts and step == 2:  # the machine goes away after epoch 2
                attempts.append(None)
                raise RuntimeError("preempted")

        result = train(
            model,
            loss_fn,
            batches,
            dataclasses.replace(CONFIG, device=str(device)),
            checkpoint_dir=Path(store.root) / "tiny_model" / "checkpoint",
            on_progress=on_progress,
        )
        attempts.append(result.resumed_from_epoch)
        return {"weight": model.weight.detach().cpu().flatten().tolist()}

    @dg.asset(key="plain_step")
    def plain_step() -> dict:
        return {}

    defs = with_training_retries([tiny_model, plain_step], dg.RetryPolicy(max_retries=1))
    assert [d.op.retry_policy is not None for d in defs] == [True, False]
    assert is_training_asset(tiny_model) and not is_training_asset(plain_step)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        defs,
        instance=instance,
        resources={
            "store": StoreResource(root=str(tmp_path)),
            "io_manager": JsonHandleIOManager(root=str(tmp_path)),
            "torch_device": TorchDeviceResource(device="auto"),
        },
    )
    assert result.success
    events = [e.event_type_value for e in result.all_events]
    assert events.count("STEP_RESTARTED") == 1
    assert attempts == [None, 2]  # the retry picked up after epoch 2

    device = "cuda" if torch.cuda.is_available() else "cpu"  # what "auto" picked
    reference, loss_fn, batches = _regression()
    train(reference, loss_fn, batches, dataclasses.replace(CONFIG, device=device))
    torch.testing.assert_close(
        torch.tensor(result.output_for_node("tiny_model")["weight"]),
        reference.weight.detach().cpu().flatten(),
    )
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith(f"torch device: {device}") for m in logs)
    epoch_lines = [m for m in logs if m.startswith("tiny_model epoch ")]
    assert epoch_lines[0].startswith("tiny_model epoch 1/4 (25%) epoch=1 loss=")
    assert all("elapsed " in m and ", ETA " in m for m in epoch_lines)
    assert epoch_lines[-1].startswith("tiny_model epoch 4/4 (100%)")
    assert epoch_lines[-1].endswith("ETA 0s")


def _break_no_self_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the matrix builder buggy: it appends a self pair to the matrix it writes."""
    real = assets.cooc.build_cooc

    def buggy(*args, **kwargs):
        result = real(*args, **kwargs)
        matrix = pl.read_parquet(result.matrix_path)
        matrix.vstack(matrix.head(1).with_columns(pl.col("row").alias("col"))).write_parquet(
            result.matrix_path
        )
        return result

    monkeypatch.setattr(assets.cooc, "build_cooc", buggy)


def test_a_failing_blocking_check_stops_what_reads_the_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(tmp_path)
    reads: list[str] = []

    @dg.asset(key=["ml_small", "model"], ins={"cooc": dg.AssetIn(key=cooc_key("ml_small"))})
    def model(cooc: CoocArtifact) -> dict:
        reads.append(cooc.matrix)
        return {"from": cooc.matrix}

    items = with_automation(
        [build_file_dataset_asset(FILE_DATASETS["ml_small"]), *build_cooc_assets("ml_small"), model]
    )
    defs = dg.Definitions(
        assets=[d for d in items if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in items if isinstance(d, dg.AssetChecksDefinition)],
        resources=world.resources(),
    )
    job = defs.resolve_implicit_global_asset_job_def()
    instance = dg.DagsterInstance.ephemeral()
    assert job.execute_in_process(instance=instance).success
    assert len(reads) == 1
    now = datetime(2025, 1, 1, tzinfo=UTC)
    cursor = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=now
    ).cursor

    _break_no_self_pairs(monkeypatch)
    keys = [
        dg.AssetKey(["ml_small", "dataset"]),
        cooc_key("ml_small"),
        dg.AssetKey(["ml_small", "model"]),
    ]
    bad = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
    assert not bad.success
    failed = {e.check_name for e in bad.get_asset_check_evaluations() if not e.passed}
    assert "no_self_pairs" in failed and "ids_known" not in failed
    assert len(reads) == 1  # the model never ran on the bad matrix
    assert "ml_small__model" not in {
        e.step_key for e in bad.all_events if e.event_type_value == "STEP_START"
    }

    # the matrix did change, but automation does not hand a failed matrix to the model
    result = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=cursor, evaluation_time=now + timedelta(minutes=1)
    )
    assert result.total_requested == 0


def test_a_failed_run_is_logged_in_one_clear_message(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    world = make_world(tmp_path)
    ratings = world.raw / "ratings.csv"
    ratings.write_text(ratings.read_text().replace(",4.0,", ",four,", 1))
    asset = build_file_dataset_asset(FILE_DATASETS["ml_small"])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [asset], instance=instance, resources=world.resources(), raise_on_error=False
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    run_failure = next(
        e.dagster_event
        for e in instance.all_logs(run.run_id)
        if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE
    )
    steps = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]

    message = failure_message(
        run, run_failure.message, steps, planned_assets_by_step(instance, run.run_id)
    )
    lines = message.splitlines()
    assert lines[0] == f"run {run.run_id} of job {run.job_name!r} failed"
    assert lines[1].startswith("  step ml_small__dataset [ml_small/dataset]: ")
    assert "ratings.csv" in lines[1] and "'rating'" in lines[1] and "(1 rows)" in lines[1]
    assert lines[-1].startswith("  next: ")

    context = dg.build_run_status_sensor_context(
        sensor_name="log_run_failures",
        dagster_event=run_failure,
        dagster_instance=instance,
        dagster_run=run,
    ).for_run_failure()
    capfd.readouterr()
    log_run_failures(context)
    logged = capfd.readouterr().err
    assert "ERROR - " + lines[0] in logged and lines[1] in logged
