"""The compiled CPU kernels against dense references and against the torch formulation
that CUDA runs (so that path keeps a CPU-equivalence test wherever the suite runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recflow.zsl import kernels
from recflow.zsl.solver import Block, RowSolver, TextEncoderSolver
from recflow.zsl.sparse import CsrMatrix
from tests.zsl.test_solver import random_block

CPU = torch.device("cpu")


def _csr(rng: np.random.Generator, n_rows: int, n_cols: int, index_dtype: type):
    t, dense, mask = random_block(rng, n_rows, n_cols, 0.3)
    return t.indptr, t.indices.astype(index_dtype), t.data, dense, mask


def test_kernels_by_hand():
    """[[0, 2], [3, 0]]: a_0 = (1, 2), a_1 = (3, 4); b_0 = (5, 6), b_1 = (7, 8)."""
    indptr, indices = np.array([0, 1, 2]), np.array([1, 0], np.int32)
    w = np.array([2.0, 3.0])
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[5.0, 6.0], [7.0, 8.0]])
    # stored (0, 1): a_0·b_1 = 23; (1, 0): a_1·b_0 = 39
    np.testing.assert_array_equal(kernels.dots(indptr, indices, a, b), [23.0, 39.0])
    np.testing.assert_array_equal(kernels.spmm(indptr, indices, w, b), [[14, 16], [15, 18]])
    # row 0: 1·1·a_0∘(1, 10) + 2·23·b_1 = (1, 20) + (322, 368); row 1: 2·a_1∘(1, 10) + 3·39·b_0
    got = kernels.sandwich(indptr, indices, w, a, b, np.array([1.0, 2.0]), np.array([1.0, 10.0]))
    np.testing.assert_array_equal(got, [[323.0, 388.0], [591.0, 782.0]])


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_equal_dense_references(index_dtype, dtype):
    rng = np.random.default_rng(7)
    indptr, indices, data, dense, mask = _csr(rng, 40, 30, index_dtype)
    w = data.astype(dtype)
    a = rng.normal(size=(40, 5)).astype(dtype)
    b = rng.normal(size=(30, 5)).astype(dtype)
    rs, cs = rng.uniform(size=40).astype(dtype), rng.uniform(size=5).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    ab = a.astype(np.float64) @ b.astype(np.float64).T  # (40, 30) every a_i·b_j
    np.testing.assert_allclose(kernels.dots(indptr, indices, a, b), ab[mask], rtol=tol, atol=tol)
    wd = np.where(mask, dense, 0.0)
    np.testing.assert_allclose(kernels.spmm(indptr, indices, w, b), wd @ b, rtol=tol, atol=tol)
    want = rs[:, None] * cs[None, :] * a + (wd * ab) @ b
    got = kernels.sandwich(indptr, indices, w, a, b, rs, cs)
    np.testing.assert_allclose(got, want, rtol=tol, atol=10 * tol)


def _two_block_problem(rng: np.random.Generator, per_row: bool):
    n, d = 30, 6
    t1, _, _ = random_block(rng, n, 20, 0.3)
    t2, _, _ = random_block(rng, n, 25, 0.2)
    c1, c2 = rng.uniform(0.5, 2, 20), rng.uniform(0.5, 2, 25)
    s1 = rng.uniform(0.1, 3, n) if per_row else None
    s2 = rng.uniform(0.1, 3, n) if per_row else None
    blocks = [Block(t1, c1, 0.05, 2.0, row_weight=s1), Block(t2, c2, 0.01, row_weight=s2)]
    r = rng.uniform(0.5, 2, n)
    r[4] = 0.0  # a row with no weight gets zero
    us = [torch.from_numpy(rng.normal(size=(m, d))) for m in (20, 25)]
    x0 = torch.from_numpy(rng.normal(size=(n, d)))
    return blocks, r, us, x0


@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("warm", [False, True])
def test_compiled_row_cg_equals_the_torch_steps(per_row, warm):
    """Three CG steps per row, compiled vs the torch formulation, float64: equal to 1e-10."""
    rng = np.random.default_rng(11)
    blocks, r, us, x0 = _two_block_problem(rng, per_row)

    def solve(compiled: bool) -> np.ndarray:
        s = RowSolver(blocks, r, 0.6, CPU, torch.float64, cg_steps=3, compiled=compiled)
        return s.solve(us, x0=x0 if warm else None).numpy()

    got, want = solve(True), solve(False)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.abs(got[4]).max() == 0.0 and np.abs(got).max() > 1e-3


def test_compiled_row_cg_float32_close_to_float64():
    rng = np.random.default_rng(12)
    blocks, r, us, x0 = _two_block_problem(rng, True)
    out = {}
    for dt in (torch.float32, torch.float64):
        s = RowSolver(blocks, r, 0.6, CPU, dt, cg_steps=3)
        out[dt] = s.solve([u.to(dt) for u in us], x0=x0.to(dt)).double().numpy()
    np.testing.assert_allclose(out[torch.float32], out[torch.float64], rtol=1e-4, atol=1e-5)


def test_compiled_results_do_not_depend_on_the_thread_count():
    """Each row is summed by one thread in a fixed order: bit-identical for 1 and 2 threads."""
    rng = np.random.default_rng(13)
    blocks, r, us, x0 = _two_block_problem(rng, True)
    before = torch.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            s = RowSolver(blocks, r, 0.6, CPU, torch.float32, cg_steps=3)
            out.append(s.solve([u.float() for u in us], x0=x0.float()).numpy())
    finally:
        torch.set_num_threads(before)
    np.testing.assert_array_equal(out[0], out[1])


def test_compiled_text_encoder_step_equals_the_torch_path():
    rng = np.random.default_rng(14)
    n, n_terms, d = 30, 12, 5
    m, _, _ = random_block(rng, n, n, 0.2)
    enc_dense = (rng.random((n, n_terms)) < 0.3).astype(float)
    er, ec = np.nonzero(enc_dense)
    enc = CsrMatrix.from_coo(er, ec, enc_dense[er, ec], (n, n_terms))
    r, c = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n)
    v = torch.from_numpy(rng.normal(size=(n, d)))
    w0 = torch.from_numpy(rng.normal(size=(n_terms, d)))
    out = []
    for compiled in (True, False):
        solver = TextEncoderSolver(m, enc, r, c, 0.05, 0.3, torch.float64, compiled=compiled)
        w, steps, _ = solver.solve(v, w0, max_iter=4, tol=0.0)
        assert steps == 4
        out.append(w.numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-10, atol=1e-12)


def test_compiled_solver_refuses_a_gpu_device():
    t = CsrMatrix.from_coo(np.array([0]), np.array([0]), np.array([1.0]), (1, 1))
    with pytest.raises(ValueError, match="CPU"):
        RowSolver([Block(t, np.ones(1), 0.1)], np.ones(1), 1.0, torch.device("cuda"),
                  cg_steps=1, compiled=True)  # fmt: skip
