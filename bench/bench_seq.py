"""Pretraining throughput of NextItNet: the shared training loop vs a plain reference loop.

For two model sizes, each measured in a fresh subprocess (so peak memory is its own):
- ``recflow``: ``recflow.seq.pretrain.pretrain`` through ``recflow.train.train`` (gradient
  clipping, bf16 autocast on CUDA, per-epoch bookkeeping);
- ``reference``: a hand-written minimal loop over the same model, batches and loss
  (forward, backward, AdamW step, nothing else);
- ``conv1d``: that loop with the encoder computed as the paper's code runs it
  (``encode_with_conv1d``: ``F.conv1d`` on (batch, channels, seq)), the layout this
  project used before its one-matrix-product convolutions on (batch, seq, channels).
Reports sequences per second (after one warm-up epoch) and peak memory (CPU: max RSS of
the process; CUDA: torch's peak allocated). CUDA runs are added when it is available.

    python bench/bench_seq.py                 # CPU (+ CUDA when present)
    python bench/bench_seq.py --sequences 2048 --threads 2
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time

import numpy as np
import polars as pl
import torch

from recflow.seq.nextitnet import NextItNet, NextItNetConfig, encode_with_conv1d
from recflow.seq.pretrain import PretrainConfig, next_item_batches, next_item_loss, pretrain
from recflow.seq.sequences import ItemIndex, RaggedTokens
from recflow.train import TrainConfig

SIZES = {
    "small": {"channels": 64, "dilations": (1, 2, 4, 8), "n_stacks": 1},
    "large": {"channels": 256, "dilations": (1, 2, 4, 8), "n_stacks": 2},
}


def _data(
    n_sequences: int, n_items: int, length: int, seed: int = 0
) -> tuple[RaggedTokens, ItemIndex]:
    rng = np.random.default_rng(seed)
    items = pl.Series("items", rng.integers(1, n_items + 1, size=(n_sequences, length)).tolist())
    index = ItemIndex.from_item_ids(np.arange(1, n_items + 1))
    return RaggedTokens.from_items(items, index), index


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def run_one(loop: str, size: str, device_name: str, args: argparse.Namespace) -> dict[str, object]:
    """One measurement in this process: warm-up epoch, then timed epochs."""
    torch.set_num_threads(args.threads)
    device = torch.device(device_name)
    tokens, index = _data(args.sequences, args.items, args.max_len + 1)
    net = NextItNetConfig(index.n_tokens, **SIZES[size])
    data = PretrainConfig(
        max_len=args.max_len, batch_size=args.batch_size, n_negatives=args.negatives
    )
    epochs = 1 + args.epochs
    if loop == "recflow":
        ends: dict[int, float] = {}

        def on_epoch(epoch: int, total: int, values: dict[str, float]) -> None:
            if "elapsed_s" in values:  # the end-of-epoch report
                ends[epoch] = values["elapsed_s"]

        res = pretrain(
            tokens,
            net,
            data,
            TrainConfig(epochs=epochs, lr=1e-3, device=device_name, log_every=10**9),
            on_progress=on_epoch,
        )
        per_epoch = res.train.samples / epochs
        seq_per_s = per_epoch * args.epochs / (ends[epochs] - ends[1])  # warm-up epoch excluded
        params = res.train.total_params
    else:
        torch.manual_seed(0)
        model = NextItNet(net).to(device)
        if loop == "conv1d":  # same parameters, the encoder run in the Conv1d form
            model.encoder.forward = functools.partial(encode_with_conv1d, model.encoder)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batches = next_item_batches(tokens, net.n_tokens, data)
        seen, started = 0, 0.0
        for epoch in range(1, epochs + 1):
            if epoch == 2:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started, seen = time.perf_counter(), 0
            for batch in batches(epoch, torch.Generator().manual_seed(epoch)):
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = next_item_loss(model, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                seen += batch["inputs"].shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        seq_per_s = seen / (time.perf_counter() - started)
        params = sum(p.numel() for p in model.parameters())
    return {
        "loop": loop,
        "size": size,
        "device": device_name,
        "params": params,
        "seq_per_s": round(seq_per_s, 1),
        "peak_mb": round(_peak_memory_mb(device), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sequences", type=int, default=1024)
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--negatives", type=int, default=0, help="0 = full softmax")
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one", nargs=3, metavar=("LOOP", "SIZE", "DEVICE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args)))
        return
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    passthrough = sys.argv[1:]
    rows = []
    for device in devices:
        for size in SIZES:
            for loop in ("conv1d", "reference", "recflow"):
                out = subprocess.run(
                    [sys.executable, __file__, *passthrough, "--one", loop, size, device],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    with pl.Config(tbl_rows=20, tbl_width_chars=120):
        print(pl.DataFrame(rows))


if __name__ == "__main__":
    main()
