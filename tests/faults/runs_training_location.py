"""A code location with one small training asset, for the dead-run test under ``dagster dev``.

``fault/tiny_training`` takes the ``gpu`` pool like every training asset of the shipped
graph, runs ``recflow.train``'s loop on a seeded regression with a checkpoint folder in
the store (as the real training assets do) and, so a test can kill it mid-training,
writes its process id and each finished epoch under ``$RECFLOW_FAULT_DIR/<run id>/``.
``pause_s`` slows each batch down so the run is still training when the test kills it.
The executor, resources and IO manager are the shipped ones.
"""

import os
import time
from pathlib import Path

import dagster as dg
import torch
from torch import nn

from assets.io_manager import store_handle_io_manager
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from jobs.executor import default_executor
from jobs.retries import TRAINING_POOL
from recflow.store import save_state_dict
from recflow.train import TrainConfig, train

KEY = dg.AssetKey(["fault", "tiny_training"])


class TinyTrainingConfig(dg.Config):
    epochs: int = 6
    pause_s: float = 0.0


def regression_problem() -> tuple[nn.Module, object, object]:
    """A seeded linear regression: the model, its loss and a batch function."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)  # (64, 3)
    y = x @ torch.tensor([[1.0], [-1.0], [2.0]])  # (64, 1)
    torch.manual_seed(0)
    model = nn.Linear(3, 1)

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]), batch[1])

    def batches(epoch: int, gen: torch.Generator):
        perm = torch.randperm(64, generator=gen)
        for i in range(0, 64, 16):
            yield x[perm[i : i + 16]], y[perm[i : i + 16]]

    return model, loss_fn, batches


@dg.asset(key=KEY, pool=TRAINING_POOL, kinds={"torch"}, description="A tiny training run.")
def tiny_training(
    context: dg.AssetExecutionContext,
    config: TinyTrainingConfig,
    store: StoreResource,
    torch_device: TorchDeviceResource,
) -> dict[str, str]:
    marks = Path(os.environ["RECFLOW_FAULT_DIR"]) / context.run_id
    marks.mkdir(parents=True, exist_ok=True)
    (marks / "pid").write_text(str(os.getpid()))
    device = torch_device.resolve(context.log)
    model, loss_fn, batches = regression_problem()

    def slow_batches(epoch: int, gen: torch.Generator):
        for batch in batches(epoch, gen):
            time.sleep(config.pause_s)
            yield batch

    report = log_progress(context, "tiny_training epoch")

    def on_progress(step: int, total: int, values: dict[str, float]) -> None:
        report(step, total, values)
        (marks / f"epoch-{step}").touch()

    artifacts = store.store()
    result = train(
        model,
        loss_fn,
        slow_batches,
        TrainConfig(epochs=config.epochs, lr=0.05, amp=False, log_every=1000, device=str(device)),
        checkpoint_dir=artifacts.artifact_dir("fault/tiny_training") / "_resume-test",
        on_progress=on_progress,
    )
    context.log.info(f"resumed from epoch {result.resumed_from_epoch}")
    (marks / "resumed_from").write_text(str(result.resumed_from_epoch))
    with artifacts.new_version("fault/tiny_training") as tmp:
        save_state_dict(model.state_dict(), tmp / "model.pt")
        final = artifacts.final_path(tmp)
    return {"path": str(final)}


training_job = dg.define_asset_job("tiny_training_job", selection=[KEY])

defs = dg.Definitions(
    assets=[tiny_training],
    jobs=[training_job],
    resources={
        "store": StoreResource(),
        "torch_device": TorchDeviceResource(device="cpu", cpu_threads=1),
        "io_manager": store_handle_io_manager,
    },
    executor=default_executor(),
)
