"""Processes for the crash tests to SIGKILL: a training loop and a store write.

``python -m tests.faults.runs_crash_workers train <checkpoint dir> <marks dir> <epochs>``
trains the seeded regression of ``runs_training_location`` slowly, touching
``<marks>/epoch-<n>`` after each epoch's checkpoint.
``python -m tests.faults.runs_crash_workers write <store root> <marks dir>`` starts a
new version of ``m``, writes half of it, touches ``<marks>/writing`` and waits.
"""

import sys
import time
from pathlib import Path

import torch

from recflow.store import ArtifactStore
from recflow.train import TrainConfig, train
from tests.faults.runs_training_location import regression_problem

PAUSE_S = 0.25  # per batch: about a second per epoch


def train_config(epochs: int) -> TrainConfig:
    """The one config every run of the crash test uses (interrupted or not)."""
    return TrainConfig(epochs=epochs, lr=0.05, amp=False, log_every=1000, device="cpu")


def slow_training(checkpoint_dir: Path, marks: Path, epochs: int) -> None:
    model, loss_fn, batches = regression_problem()

    def slow(epoch: int, gen: torch.Generator):
        for batch in batches(epoch, gen):
            time.sleep(PAUSE_S)
            yield batch

    def on_progress(step: int, total: int, values: dict[str, float]) -> None:
        (marks / f"epoch-{step}").touch()

    train(
        model,
        loss_fn,
        slow,
        train_config(epochs),
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
    )


def hanging_write(root: Path, marks: Path) -> None:
    with ArtifactStore(root).new_version("m") as tmp:
        (tmp / "part-0.bin").write_bytes(b"\0" * 100_000)
        (marks / "writing").touch()
        time.sleep(600)  # killed here


if __name__ == "__main__":
    torch.set_num_threads(1)
    what, *args = sys.argv[1:]
    marks = Path(args[1])
    marks.mkdir(parents=True, exist_ok=True)
    if what == "train":
        slow_training(Path(args[0]), marks, int(args[2]))
    elif what == "write":
        hanging_write(Path(args[0]), marks)
    else:
        raise SystemExit(f"unknown worker {what!r}: expected 'train' or 'write'")
