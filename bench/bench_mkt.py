"""Training throughput (samples/s) of MKT's MEM and TEM, against the single-domain MLP.

All three go through the same loop (``recflow.train.train``) on the same synthetic
feature-aligned tables, one epoch each after a short warm-up, on CPU and, when CUDA is
available, on the GPU (bf16 autocast). The MLP is the plain reference: the ratio says
what the multi-entity machinery (HFA, MMoE, independent extractors, PDL; for TEM the
frozen MEM forward and the gates) costs per sample.

    python bench/bench_mkt.py [--events 40000] [--batch-size 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from recflow.data.synthetic import SyntheticConfig, generate
from recflow.mkt.baselines import SingleTowerModel
from recflow.mkt.batches import shuffled_batches
from recflow.mkt.losses import target_bce
from recflow.mkt.mappings import SYNTHETIC
from recflow.mkt.mem import MemConfig, MultiEntityModel, mem_loss
from recflow.mkt.tables import FeatureTables, build_feature_tables
from recflow.mkt.tem import TargetEntityModel, TemConfig, target_specific_columns
from recflow.train import TrainConfig, train


def _run(name, model, loss, tensors, batch_size, device) -> dict:
    cfg = TrainConfig(epochs=1, device=device, log_every=10**9)
    warm = {k: v[: batch_size * 5] for k, v in tensors.items()}
    train(model, loss, shuffled_batches(warm, batch_size), cfg)  # warm-up (allocations, kernels)
    res = train(model, loss, shuffled_batches(tensors, batch_size), cfg)
    return {
        "model": name,
        "device": res.device,
        "samples": res.samples,
        "seconds": round(res.elapsed_s, 2),
        "samples_per_s": round(res.samples_per_s),
        "trained/total params": f"{res.trained_params}/{res.total_params}",
    }


def bench(tables: FeatureTables, batch_size: int, device: str) -> list[dict]:
    spec = tables.spec()
    item_shared = torch.from_numpy(tables.item_shared)
    all_rows = tables.tensors("train")
    target = tables.tensors("train", tables.mapping.target_entity)
    torch.manual_seed(0)
    mlp = SingleTowerModel(spec, specific_columns=target_specific_columns(spec))
    mem = MultiEntityModel(spec, MemConfig())
    for m in (mlp, mem):
        m.embedder.set_item_shared(item_shared)
    rows = [
        _run("mlp_target (reference), target rows", mlp, target_bce, target, batch_size, device),
        _run("mlp_target (reference), all rows", mlp, target_bce, all_rows, batch_size, device),
        _run("mem, all rows", mem, mem_loss, all_rows, batch_size, device),
    ]
    tem = TargetEntityModel(spec, mem, TemConfig())
    tem.embedder.set_item_shared(item_shared)
    rows.append(_run("tem (MEM frozen), target rows", tem, target_bce, target, batch_size, device))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=40_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t = time.perf_counter()
    world = generate(SyntheticConfig(n_events=a.events, n_users=a.events // 100, n_items=1_000))
    tables = build_feature_tables(world.interactions, world.items, world.users, SYNTHETIC)
    print(f"tables: {tables.frame.height} rows in {time.perf_counter() - t:.1f} s")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        rows = bench(tables, a.batch_size, device)
        ref = rows[1]["samples_per_s"]
        for r in rows:
            ratio = r["samples_per_s"] / ref if ref else float("nan")
            print(
                f"{r['device']:>6}  {r['model']:<40} {r['samples_per_s']:>9} samples/s "
                f"({ratio:4.2f}x the MLP on all rows)  {r['samples']} samples in {r['seconds']} s  "
                f"params {r['trained/total params']}"
            )


if __name__ == "__main__":
    main()
