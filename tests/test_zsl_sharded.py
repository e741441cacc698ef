"""Sharded ALS (``recflow.zsl.sharded``): 2 CPU processes (gloo) equal one process.

Row solves are independent given the column factors, so splitting the rows over workers
and all-gathering must give one process's factors up to rounding: checked for the solver
alone (every path: Woodbury, direct, per-row Gramians), for STL, ZSL_ME and ZSL_TE
training, and for the torchrun entry point on files written by the real pipeline.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from recflow.cooc import CoocConfig, build_cooc
from recflow.data.dataset import write_dataset
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.text import TextConfig
from recflow.zsl.artifact import load_model
from recflow.zsl.models import ZslConfig, train
from recflow.zsl.pipeline import build_vocabulary_folder, load_inputs
from recflow.zsl.sharded import ShardedRowSolver, shard_bounds, sharded_solver, slice_rows
from recflow.zsl.solver import Block, RowSolver
from recflow.zsl.sparse import CsrMatrix

REPO = Path(__file__).resolve().parent.parent
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _random_csr(rng: np.random.Generator, rows: int, cols: int, density: float) -> CsrMatrix:
    m = sp.random(rows, cols, density=density, format="csr", random_state=rng)
    m.data = rng.uniform(0.5, 2.0, m.nnz)
    r, c = m.nonzero()
    return CsrMatrix.from_coo(r, c, np.asarray(m[r, c]).ravel(), (rows, cols))


def test_shard_bounds_cover_every_row_once_and_balance_cost() -> None:
    cost = np.array([1, 1, 1, 1, 100, 1, 1, 1, 1, 1, 1, 1], dtype=float)
    b = shard_bounds(cost, 3)
    assert b[0] == 0 and b[-1] == len(cost) and (np.diff(b) >= 0).all()
    # the heavy row sits alone-ish: no slice but the one holding it exceeds a third
    sums = [cost[lo:hi].sum() for lo, hi in zip(b[:-1], b[1:], strict=True)]
    assert max(sums) <= 100 + 4 and sum(sums) == cost.sum()
    assert shard_bounds(np.ones(5), 1).tolist() == [0, 5]
    assert shard_bounds(np.ones(2), 4).tolist()[-1] == 2  # more workers than rows


def test_slice_rows_equals_scipy_slicing() -> None:
    m = _random_csr(np.random.default_rng(0), 30, 20, 0.2)
    ref = sp.csr_array((m.data, m.indices, m.indptr), shape=m.shape)
    for lo, hi in [(0, 30), (3, 17), (29, 30), (10, 10)]:
        got = slice_rows(m, lo, hi)
        want = ref[lo:hi]
        assert got.shape == want.shape
        assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data, want.data)


def _init(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)


def _solver_worker(rank: int, port: int, out: str, cg_steps: int) -> None:
    _init(rank, port)
    try:
        blocks, row_weight, factors = _solver_case()
        v = ShardedRowSolver(
            blocks, row_weight, 0.7, torch.device("cpu"), torch.float64, cg_steps=cg_steps
        ).solve(factors, x0=_solver_start())
        if rank == 0:
            np.save(out, v.numpy())
    finally:
        dist.destroy_process_group()


def _solver_case():
    """Rows with few pairs (Woodbury), many pairs (direct), a zero-weight row, and a
    second block with its own row weights (per-row Gramians)."""
    rng = np.random.default_rng(5)
    rows, d = 41, 6
    dense = _random_csr(rng, rows, 50, 0.3)  # ~15 pairs a row: direct solves
    sparse_ = _random_csr(rng, rows, 30, 0.05)  # ~1-2 pairs a row: Woodbury
    row_weight = rng.uniform(0.2, 2.0, rows)
    row_weight[7] = 0.0
    blocks = [
        Block(dense, rng.uniform(0.5, 1.5, 50), 0.01),
        Block(sparse_, rng.uniform(0.5, 1.5, 30), 0.05, 0.5, row_weight=rng.uniform(0.5, 2, rows)),
    ]
    factors = [torch.from_numpy(rng.normal(size=(n, d))) for n in (50, 30)]
    return blocks, row_weight, factors


def _solver_start() -> torch.Tensor:
    """A warm start for the CG rows (the exact path ignores it)."""
    return torch.from_numpy(np.random.default_rng(6).normal(size=(41, 6)))


@pytest.mark.slow
@pytest.mark.parametrize("cg_steps", [0, 3])  # exact solves; three CG steps from x0
def test_sharded_solver_equals_one_process(tmp_path: Path, cg_steps: int) -> None:
    out = str(tmp_path / "v.npy")
    mp.spawn(_solver_worker, args=(_free_port(), out, cg_steps), nprocs=WORLD)
    blocks, row_weight, factors = _solver_case()
    want = RowSolver(
        blocks, row_weight, 0.7, torch.device("cpu"), torch.float64, cg_steps=cg_steps
    ).solve(factors, x0=_solver_start())
    got = np.load(out)
    assert np.abs(got - want.numpy()).max() <= 1e-6
    assert np.abs(want.numpy()).max() > 1e-2  # a real solution, not zeros on both sides
    assert not got[7].any()  # a zero-weight row stays zero on its worker too


def _synthetic_inputs():
    from tests.zsl.conftest import synthetic_inputs

    cfg = SyntheticConfig(n_users=120, n_items=150, n_events=8_000, n_clusters=5, seed=2)
    return synthetic_inputs(cfg)[0]


def _train_worker(rank: int, port: int, method: str, out: str) -> None:
    _init(rank, port)
    try:
        config = ZslConfig(method=method, dim=8, iterations=2, dtype="float64")
        model = train(_synthetic_inputs(), config, "cpu", solver=sharded_solver())
        if rank == 0:
            np.savez(out, v=model.item_vectors, w=model.word_vectors, loss=model.loss_history)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["stl", "zsl_me", "zsl_te"])
def test_sharded_training_equals_one_process(tmp_path: Path, method: str) -> None:
    out = str(tmp_path / "model.npz")
    mp.spawn(_train_worker, args=(_free_port(), method, out), nprocs=WORLD)
    config = ZslConfig(method=method, dim=8, iterations=2, dtype="float64")
    want = train(_synthetic_inputs(), config, "cpu")
    got = np.load(out)
    assert np.abs(got["v"] - want.item_vectors).max() <= 1e-6
    assert np.abs(got["w"] - want.word_vectors).max() <= 1e-6
    assert np.allclose(got["loss"], want.loss_history, rtol=1e-9)
    assert want.loss_history[-1] < want.loss_history[0]  # it trained


@pytest.mark.slow
def test_torchrun_entry_point_equals_one_process(tmp_path: Path) -> None:
    cfg = SyntheticConfig(n_users=120, n_items=150, n_events=8_000, n_clusters=5, seed=2)
    ds = write_dataset(generate(cfg), tmp_path / "dataset")
    cooc = build_cooc(ds.interactions_path, tmp_path / "cooc", CoocConfig())
    (tmp_path / "vocab").mkdir()
    build_vocabulary_folder(ds, tmp_path / "vocab", TextConfig(min_item_count=2))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(WORLD),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_free_port()),
        "-m",
        "recflow.zsl.sharded",
        "--cooc",
        str(tmp_path / "cooc"),
        "--vocabulary",
        str(tmp_path / "vocab"),
        "--interactions",
        str(ds.interactions_path),
        "--method",
        "zsl_me",
        "--dim",
        "8",
        "--iterations",
        "2",
        "--dtype",
        "float64",
        "--out",
        str(tmp_path / "model"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    inputs = load_inputs(
        cooc.matrix_path, cooc.item_index_path, tmp_path / "vocab", ds.interactions_path
    )
    want = train(inputs, ZslConfig(method="zsl_me", dim=8, iterations=2, dtype="float64"))
    saved = load_model(tmp_path / "model")
    # the model files hold float32: equal to one process up to float32 rounding
    assert np.abs(saved.item_vectors - want.item_vectors).max() <= 1e-6
    assert np.array_equal(saved.items.get_column("item_id").to_numpy(), inputs.item_ids)
