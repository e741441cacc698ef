"""ALS past one machine: each worker solves its share of rows; the factors are all-gathered.

Every row solve of ``RowSolver`` (exact, or CG from the row's previous factors) needs only
that row's observed pairs, the column factors and the Gramian G = Uᵀ diag(c) U, so rows
are independent given the column factors. With W workers (``torch.distributed``: gloo on CPUs, nccl on GPUs), worker k
keeps the pairs of a contiguous slice of rows, cut so that every worker holds about the
same number of observed pairs (``shard_bounds``), solves them against the replicated
column factors, and ``all_gather`` gives every worker the whole factor matrix for the
next half-step. The result equals one process's up to float rounding
(``tests/test_zsl_sharded.py``: within 1e-6). Every ``RowSolver`` of STL and ZSL_ME is
sharded; ZSL_TE's word step (conjugate gradient over the vocabulary,
``TextEncoderSolver``) runs whole on every worker, which is cheap while the vocabulary is
small next to the items.

Launch with torchrun, one process per GPU (or per CPU socket)::

    torchrun --nproc-per-node 2 -m recflow.zsl.sharded \\
        --cooc <cooc_matrix version> --vocabulary <zsl_vocabulary version> \\
        --interactions <dataset>/interactions.parquet --method zsl_te --out <folder>

Memory per worker: its slice of the observed pairs plus the full factor matrices (n × d
floats each). Each worker still reads the whole matrix once to slice it, and computes G
from the whole column factors (O(n d²), cheap next to the solves); at the paper's 17M
items and d = 200 the factors are ~14 GB in float32 per matrix, so that is the point at
which the column factors would have to be sharded too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from recflow.zsl.solver import Block, RowSolver
from recflow.zsl.sparse import CsrMatrix


def shard_bounds(row_cost: np.ndarray, world: int) -> np.ndarray:
    """(world + 1,) row boundaries cutting rows into ``world`` contiguous slices of about
    equal total ``row_cost`` (e.g. observed pairs + 1 per row)."""
    if world < 1:
        raise ValueError(f"world must be >= 1, got {world}")
    n = len(row_cost)
    cum = np.concatenate([[0.0], np.cumsum(row_cost, dtype=np.float64)])
    targets = cum[-1] * np.arange(1, world) / world
    inner = np.searchsorted(cum, targets, side="left").clip(0, n)
    return np.concatenate([[0], np.maximum.accumulate(inner), [n]]).astype(np.int64)


def slice_rows(m: CsrMatrix, lo: int, hi: int) -> CsrMatrix:
    """Rows ``lo:hi`` of ``m`` (all columns), sharing no arrays with it."""
    start, stop = int(m.indptr[lo]), int(m.indptr[hi])
    return CsrMatrix(
        (m.indptr[lo : hi + 1] - start).copy(),
        m.indices[start:stop].copy(),
        m.data[start:stop].copy(),
        (hi - lo, m.shape[1]),
    )


class ShardedRowSolver:
    """``RowSolver``'s row solves over this worker's slice of rows; ``solve``
    returns every row's factors on every worker (same signature as ``RowSolver``)."""

    def __init__(
        self,
        blocks: Sequence[Block],
        row_weight: np.ndarray,
        lam: float,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        memory_elems: int = 1 << 24,
        cg_steps: int = 0,
        *,
        group: dist.ProcessGroup | None = None,
    ) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        self.n_rows = blocks[0].targets.shape[0]
        cost = sum(b.targets.row_nnz for b in blocks) + 1
        self.bounds = shard_bounds(cost, self.world)
        lo, hi = int(self.bounds[self.rank]), int(self.bounds[self.rank + 1])
        local = [
            replace(
                b,
                targets=slice_rows(b.targets, lo, hi),
                row_weight=None if b.row_weight is None else b.row_weight[lo:hi],
            )
            for b in blocks
        ]
        self.local = RowSolver(
            local,
            row_weight[lo:hi],
            lam,
            device,
            dtype=dtype,
            memory_elems=memory_elems,
            cg_steps=cg_steps,
        )
        self.device, self.dtype = device, dtype

    def solve(
        self, col_factors: Sequence[torch.Tensor], x0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The row factors V (n_rows, d), gathered from every worker's slice (``x0``: the
        whole previous V, each worker starting its CG rows from its slice)."""
        lo, hi = int(self.bounds[self.rank]), int(self.bounds[self.rank + 1])
        mine = self.local.solve(col_factors, None if x0 is None else x0[lo:hi])
        longest = int(np.diff(self.bounds).max())
        padded = torch.zeros(longest, mine.shape[1], device=mine.device, dtype=mine.dtype)
        padded[: mine.shape[0]] = mine
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded, group=self.group)
        sizes = np.diff(self.bounds)
        return torch.cat([p[: int(s)] for p, s in zip(parts, sizes, strict=True)])


def sharded_solver(group: dist.ProcessGroup | None = None) -> partial[ShardedRowSolver]:
    """A ``RowSolver`` factory for ``Trainer(solver=...)`` that shards over ``group``."""
    return partial(ShardedRowSolver, group=group)


def main(argv: Sequence[str] | None = None) -> int:
    """torchrun entry point: train one ZSL method with sharded row solves; rank 0 saves."""
    from recflow.zsl.artifact import save_model
    from recflow.zsl.models import ZslConfig, train
    from recflow.zsl.pipeline import load_inputs, read_vocabulary_folder

    p = argparse.ArgumentParser(prog="recflow.zsl.sharded", description=__doc__.splitlines()[0])
    p.add_argument("--cooc", type=Path, required=True, help="a cooc_matrix version folder")
    p.add_argument("--vocabulary", type=Path, required=True, help="a zsl_vocabulary folder")
    p.add_argument("--interactions", type=Path, required=True, help="interactions.parquet")
    p.add_argument("--method", choices=("stl", "zsl_me", "zsl_te"), default="zsl_te")
    p.add_argument("--dim", type=int, default=ZslConfig.dim)
    p.add_argument("--iterations", type=int, default=ZslConfig.iterations)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="folder rank 0 writes the model to")
    args = p.parse_args(argv)

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        rank = dist.get_rank()
        device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if cuda else "cpu")
        inputs = load_inputs(
            args.cooc / "matrix.parquet",
            args.cooc / "item_index.parquet",
            args.vocabulary,
            args.interactions,
        )
        config = ZslConfig(
            method=args.method,
            dim=args.dim,
            iterations=args.iterations,
            dtype=args.dtype,
            seed=args.seed,
        )
        model = train(inputs, config, device, solver=sharded_solver())
        if rank == 0:
            vocab, _, text_config, _ = read_vocabulary_folder(args.vocabulary)
            save_model(args.out, model, vocab, inputs.item_ids, text_config)
            print(f"{args.method}: loss {model.loss_history[-1]:.6g} → {args.out}")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
