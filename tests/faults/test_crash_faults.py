"""Crashes and hostile settings: what survives each, checked and recorded in the fault table.

SIGKILL during training and during a store write hit real processes
(``runs_crash_workers``); a full disk is an ``OSError(ENOSPC)`` raised by the write
itself (a tiny filesystem needs root to mount); a corrupt checkpoint is a checkpoint file
overwritten with garbage; hostile paths go through the resources' checks and a real run.
"""

import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import torch

from assets.datasets import synthetic_dataset
from assets.io_manager import store_handle_io_manager
from assets.resources import DataSourcesResource, StoreResource
from recflow.store import ArtifactStore
from recflow.train import train
from tests.faults.runs_crash_workers import train_config
from tests.faults.runs_training_location import regression_problem

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 5
SMALL = {"n_users": 80, "n_items": 100, "n_events": 3_000, "n_clusters": 4, "seed": 5}


def _worker(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.runs_crash_workers", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"worker exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{path.name} not reached within {timeout_s:.0f} s")
        time.sleep(0.05)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


def _uninterrupted() -> dict[str, torch.Tensor]:
    model, loss_fn, batches = regression_problem()
    train(model, loss_fn, batches, train_config(EPOCHS))
    return model.state_dict()


def _resume(ckpt: Path, scramble: bool = True) -> tuple[dict[str, torch.Tensor], object]:
    model, loss_fn, batches = regression_problem()
    if scramble:  # a resumed model's weights must come from the checkpoint
        torch.nn.init.zeros_(model.weight)
    result = train(model, loss_fn, batches, train_config(EPOCHS), checkpoint_dir=ckpt)
    return model.state_dict(), result


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.slow
def test_sigkill_during_training_resumes_exactly(tmp_path: Path, fault_table) -> None:
    ckpt, marks = tmp_path / "ckpt", tmp_path / "marks"
    proc = _worker("train", str(ckpt), str(marks), str(EPOCHS))
    _wait_for(marks / "epoch-2", proc)
    _kill(proc)
    done = max(int(p.name.split("-")[1]) for p in marks.glob("epoch-*"))

    state, result = _resume(ckpt)
    assert result.resumed_from_epoch == done  # not from scratch, not a half-written epoch
    assert result.checkpoint_notes == []
    assert [r["epoch"] for r in result.history] == list(range(1, EPOCHS + 1))
    _assert_same(state, _uninterrupted())
    fault_table.record(
        "SIGKILL during training (library loop, own process)",
        f"checkpoint of epoch {done}; resumed run's weights bit-identical to an uninterrupted run",
        "the epoch in progress (recomputed)",
    )


@pytest.mark.slow
def test_sigkill_during_a_store_write_leaves_no_partial_version(
    tmp_path: Path, fault_table
) -> None:
    store = ArtifactStore(tmp_path)
    with store.new_version("m") as first:
        (first / "part-0.bin").write_bytes(b"\1")
        good = store.final_path(first)
    marks = tmp_path / "marks"
    proc = _worker("write", str(tmp_path), str(marks))
    _wait_for(marks / "writing", proc)
    _kill(proc)

    assert store.latest("m") == good
    assert store.versions("m") == [good.name]  # the half-written folder is no version
    leftovers = [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp-") and p.is_dir()]
    assert len(leftovers) == 1  # the dead writer's temp folder, invisible to readers
    with store.new_version("m") as second:  # the next write cleans it up
        (second / "part-0.bin").write_bytes(b"\2")
        newer = store.final_path(second)
    assert store.latest("m") == newer
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp-")] == []
    fault_table.record(
        "SIGKILL during a store write",
        "LATEST still the previous complete version; temp folder ignored, removed by next write",
        "the version being written",
    )


def test_a_full_disk_fails_clearly_and_keeps_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_table
) -> None:
    resources = {"store": StoreResource(root=str(tmp_path)), "io_manager": store_handle_io_manager}
    ops = {"ops": {"synthetic__dataset": {"config": SMALL}}}
    with dg.instance_for_test() as instance:
        ok = dg.materialize(
            [synthetic_dataset], instance=instance, resources=resources, run_config=ops
        )
        good = Path(ok.output_for_node("synthetic__dataset").path)

        real_write = pl.DataFrame.write_parquet

        def full_disk(self: pl.DataFrame, file: str | Path, *args, **kwargs) -> None:
            if Path(file).name == "items.parquet":  # interactions already half the version
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
            real_write(self, file, *args, **kwargs)

        monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk)
        bad = dg.materialize(
            [synthetic_dataset],
            instance=instance,
            resources=resources,
            run_config=ops,
            raise_on_error=False,
        )
        assert not bad.success
        failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
        message = str(failure.event_specific_data.error)
        assert "no space left on the device of" in message
        assert f"synthetic/dataset/{good.name} is still the current version" in message

        store = ArtifactStore(tmp_path)
        assert store.latest("synthetic/dataset") == good
        assert store.versions("synthetic/dataset") == [good.name]
        assert not [p for p in good.parent.iterdir() if p.name.startswith(".tmp-")]
        latest = instance.fetch_materializations(synthetic_dataset.key, limit=1).records[0]
        assert latest.run_id == ok.run_id  # Dagster's latest is still the good one
    fault_table.record(
        "disk full (ENOSPC) while writing a dataset version",
        "step fails naming store, artifact and current version; previous version and LATEST intact",
        "the new version (temp folder removed)",
    )


def test_a_corrupt_checkpoint_falls_back_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fault_table
) -> None:
    ckpt = tmp_path / "ckpt"
    model, loss_fn, batches = regression_problem()
    train(model, loss_fn, batches, train_config(3), checkpoint_dir=ckpt)
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-000002", "epoch-000003"]
    (ckpt / "epoch-000003" / "model.pt").write_bytes(b"not a checkpoint")

    with caplog.at_level(logging.WARNING, logger="recflow.train"):
        state, result = _resume(ckpt)
    assert result.resumed_from_epoch == 2  # the last good checkpoint
    assert "epoch-000003 is unreadable" in caplog.text
    assert "resuming after epoch 2" in caplog.text
    assert (ckpt / "corrupt-epoch-000003").is_dir()  # set aside, never read again
    _assert_same(state, _uninterrupted())

    # both unreadable: from scratch, said so, and still the same weights
    fresh = tmp_path / "ckpt2"
    model, loss_fn, batches = regression_problem()
    train(model, loss_fn, batches, train_config(2), checkpoint_dir=fresh)
    for folder in fresh.glob("epoch-*"):
        (folder / "optim.pt").write_bytes(b"\x80garbage")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="recflow.train"):
        state, result = _resume(fresh, scramble=False)  # from scratch: the seeded init
    assert result.resumed_from_epoch is None
    assert "training from scratch" in caplog.text
    _assert_same(state, _uninterrupted())
    fault_table.record(
        "corrupt checkpoint file",
        "warning names the file; resumed from the previous epoch's checkpoint (or from "
        "scratch when none is readable) to bit-identical weights",
        "the epochs after the last readable checkpoint (recomputed)",
    )


@pytest.mark.parametrize(
    "root",
    ["/tmp/store/../etc", "relative/../../outside", "bad\nname", "   "],
)
def test_a_hostile_store_root_is_refused_before_any_step(root: str) -> None:
    @dg.asset
    def never_runs() -> None:
        raise AssertionError("a step ran with a refused store root")

    defs = dg.Definitions(
        assets=[never_runs],
        resources={"store": StoreResource(), "io_manager": store_handle_io_manager},
    )
    job = defs.resolve_implicit_global_asset_job_def()
    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        job.execute_in_process(run_config={"resources": {"store": {"config": {"root": root}}}})
    chain, exc = [], raised.value
    while exc is not None:
        chain.append(str(exc))
        exc = exc.__cause__
    assert any(
        "store root" in m and ("'..' segment" in m or "control characters" in m or "is empty" in m)
        for m in chain
    ), chain


def test_hostile_paths_are_refused_and_odd_ones_work(tmp_path: Path, fault_table) -> None:
    odd = tmp_path / "it's a störe"  # quote, space, non-ASCII: a legitimate folder name
    resources = {"store": StoreResource(root=str(odd)), "io_manager": store_handle_io_manager}
    ops = {"ops": {"synthetic__dataset": {"config": SMALL}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [synthetic_dataset], instance=instance, resources=resources, run_config=ops
        )
    assert result.success
    assert ArtifactStore(odd).latest("synthetic/dataset").parent == odd / "synthetic" / "dataset"

    store = ArtifactStore(odd)
    for name in ("../../etc", "/etc/cron.d", "ok/../../x"):
        with pytest.raises(ValueError, match="inside the store"):
            store.artifact_dir(name)
    sources = DataSourcesResource(ml100k_dir=str(tmp_path / "data" / ".." / ".." / "etc"))
    with pytest.raises(dg.Failure, match=r"ml100k_dir.*'\.\.' segment"):
        sources.folder("ml100k_dir")
    fault_table.record(
        "hostile paths: store root or data folder with '..', control characters; names "
        "leaving the store",
        "refused with an error naming the setting, before any step; roots with quotes, "
        "spaces, non-ASCII work",
        "nothing",
    )
