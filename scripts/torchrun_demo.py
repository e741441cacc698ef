"""Train a tiny model through recflow's training loop, in one process or under torchrun.

    python scripts/torchrun_demo.py --out /tmp/one
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        scripts/torchrun_demo.py --out /tmp/two

Both write ``result.json`` (final weights, loss history, world size) from rank 0; the two
runs agree to float precision because the loop trains under DistributedDataParallel
with each process's loss weighted by its share of the batch (``recflow.train``). On a machine with GPUs,
the same command with ``--nproc_per_node=<GPUs>`` trains one process per GPU over NCCL.
"""

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from recflow.train import TrainConfig, init_distributed, train

N_SAMPLES = 250
BATCH = 33  # not a multiple of 2: shares of 17 and 16 rows exercise the weighting


def regression_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """y = x·w + noise with a fixed w; (N_SAMPLES, 6) inputs, (N_SAMPLES, 1) targets."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N_SAMPLES, 6, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5], [3.0], [0.0], [-1.0]])
    return x, x @ w + 0.05 * torch.randn(N_SAMPLES, 1, generator=g)


def run(out: Path, epochs: int = 4, checkpoint: Path | None = None) -> None:
    """Train the demo model in this process (one of the torchrun processes, or alone)
    and, from rank 0, write ``out/result.json``."""
    rank, world = init_distributed()
    x, y = regression_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))

    def batches(epoch: int, generator: torch.Generator):
        order = torch.randperm(N_SAMPLES, generator=generator)
        for i in range(0, N_SAMPLES, BATCH):
            idx = order[i : i + BATCH]
            yield x[idx], y[idx]

    def loss_fn(m: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xb, yb = batch  # (b, 6), (b, 1)
        return nn.functional.mse_loss(m(xb), yb)

    config = TrainConfig(epochs=epochs, lr=1e-2, device="cpu", log_every=1000)
    result = train(model, loss_fn, batches, config, checkpoint_dir=checkpoint)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.tolist() for k, v in model.state_dict().items()}
        record = {
            "world_size": world,
            "history": result.history,
            "samples": result.samples,
            "state": state,
        }
        (out / "result.json").write_text(json.dumps(record))
    if world > 1:
        torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--checkpoint", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread per process: N processes share the cores
    run(args.out, args.epochs, args.checkpoint)


if __name__ == "__main__":
    main()
