"""Small training runs made in one process or in each of N spawned DDP processes.

Kept apart from the test modules so that a spawned process imports torch and recflow's
sequence code only, not Dagster."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from recflow.seq.finetune import LabelledSequences, Method, finetune, prepare_finetune
from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.sequences import CLS
from recflow.train import TrainConfig, TrainResult, train

ROWS = 45
BATCH = 11  # shares of 6 and 5 rows, and a last batch of 1 row: rank 1 gets none


def initial_model(method: Method) -> torch.nn.Module:
    """A seeded small NextItNet prepared for ``method`` (3 classes)."""
    torch.manual_seed(0)
    pretrained = NextItNet(NextItNetConfig(n_tokens=30, channels=8, dilations=(1, 2), n_stacks=1))
    return prepare_finetune(pretrained, method, n_outputs=3, seed=1)


def finetune_run(method: Method) -> tuple[torch.nn.Module, TrainResult]:
    """Fine-tune ``initial_model(method)`` for 2 epochs on fixed labelled windows (labels
    from the first item, so there is something to learn)."""
    tokens = np.random.default_rng(0).integers(2, 30, size=(ROWS, 9))
    tokens[:, -1] = CLS
    data = LabelledSequences(tokens, (tokens[:, 0] % 3).astype("int64"))
    model = initial_model(method)
    config = TrainConfig(epochs=2, lr=1e-2, device="cpu", log_every=1000)
    return model, finetune(model, data, config, batch_size=BATCH)


def two_branches() -> torch.nn.ModuleDict:
    """Linear layers "a" and "b" (3 → 1), seeded."""
    torch.manual_seed(0)
    return torch.nn.ModuleDict({"a": torch.nn.Linear(3, 1), "b": torch.nn.Linear(3, 1)})


def unused_branch_run() -> tuple[torch.nn.Module, TrainResult]:
    """Two linear branches, the loss reads only ``a``; weight decay 0.5 would move ``b``
    if it ever got a gradient (AdamW skips parameters whose grad is None)."""
    model = two_branches()
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(1))
    y = x.sum(1, keepdim=True)

    def batches(epoch: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        for i in range(0, len(x), 7):
            yield x[i : i + 7], y[i : i + 7]

    def loss_fn(m: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.nn.functional.mse_loss(m["a"](batch[0]), batch[1])

    config = TrainConfig(epochs=2, lr=1e-2, weight_decay=0.5, device="cpu")
    return model, train(model, loss_fn, batches, config)


def run(name: str) -> tuple[torch.nn.Module, TrainResult]:
    """The run called ``name``: a fine-tuning method's value, or "unused_branch"."""
    return unused_branch_run() if name == "unused_branch" else finetune_run(Method(name))


def worker(rank: int, world: int, init_file: str, name: str, out: str) -> None:
    """One spawned process: join the gloo group, train, rank 0 saves weights and history."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, result = run(name)
        if rank == 0:
            torch.save({"state": model.state_dict(), "history": result.history}, Path(out))
    finally:
        dist.destroy_process_group()
