"""The solver against brute force: dense losses over all n² pairs, gradients by autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recflow.zsl.linalg import batched_spd_solve
from recflow.zsl.solver import (
    Block,
    RowSolver,
    SparsePattern,
    TextEncoderSolver,
    block_loss,
    transpose,
)
from recflow.zsl.sparse import CsrMatrix

CPU = torch.device("cpu")


def random_block(rng: np.random.Generator, n_rows: int, n_cols: int, density: float):
    """A sparse target matrix (values in [0.5, 2]) and its dense twin and mask."""
    mask = rng.random((n_rows, n_cols)) < density
    mask[0, :] = False  # one row with no observed pair
    dense = np.where(mask, rng.uniform(0.5, 2.0, (n_rows, n_cols)), 0.0)
    r, c = np.nonzero(mask)
    return CsrMatrix.from_coo(r, c, dense[r, c], (n_rows, n_cols)), dense, mask


def dense_loss(y, mask, r, c, omega0, v, u):
    """Σ_ij r_i c_j w_ij (y_ij − v_i·u_j)², w = 1 on observed pairs and ω0 elsewhere."""
    w = np.asarray(r)[:, None] * np.asarray(c)[None, :] * np.where(mask, 1.0, omega0)
    w = torch.from_numpy(w)
    return (w * (torch.as_tensor(y) - v @ u.T) ** 2).sum()


def test_gramian_trick_equals_enumeration():
    rng = np.random.default_rng(0)
    t, y, mask = random_block(rng, 30, 25, 0.2)
    r, c = rng.uniform(0.5, 2, 30), rng.uniform(0.5, 2, 25)
    v = torch.from_numpy(rng.normal(size=(30, 4)))
    u = torch.from_numpy(rng.normal(size=(25, 4)))
    got = block_loss(t, r, c, 0.05, v, u)
    want = float(dense_loss(y, mask, r, c, 0.05, v, u))
    assert got == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("dim", [3, 12])  # 12 > max row nnz → Woodbury; 3 → direct solves
def test_row_solver_zero_gradient_two_blocks(dim):
    rng = np.random.default_rng(1)
    n = 20
    t1, y1, m1 = random_block(rng, n, 15, 0.3)
    t2, y2, m2 = random_block(rng, n, 18, 0.25)
    c1, c2 = rng.uniform(0.5, 2, 15), rng.uniform(0.5, 2, 18)
    r = rng.uniform(0.5, 2, n)
    r[3] = 0.0  # a row with no weight gets zero
    u1 = torch.from_numpy(rng.normal(size=(15, dim)))
    u2 = torch.from_numpy(rng.normal(size=(18, dim)))
    lam, a2 = 0.7, 0.5
    blocks = [Block(t1, c1, 0.1), Block(t2, c2, 0.02, task_weight=a2)]
    solver = RowSolver(blocks, r, lam, CPU, torch.float64, memory_elems=2000)
    v = solver.solve([u1, u2]).requires_grad_(True)
    loss = (
        dense_loss(y1, m1, r, c1, 0.1, v, u1)
        + a2 * dense_loss(y2, m2, r, c2, 0.02, v, u2)
        + lam * (v**2).sum()
    )
    (grad,) = torch.autograd.grad(loss, v)
    assert float(grad.abs().max()) < 1e-9
    assert float(v.detach()[3].abs().max()) == 0.0
    assert float(v.detach().abs().max()) > 1e-3  # not the trivial answer


@pytest.mark.parametrize("dim", [3, 12])
def test_row_solver_per_block_row_weights_zero_gradient(dim):
    """Two tasks sharing V, each with its own row weights s_bi on top of r_i."""
    rng = np.random.default_rng(3)
    n = 16
    t1, y1, m1 = random_block(rng, n, 10, 0.3)
    t2, y2, m2 = random_block(rng, n, 14, 0.3)
    c1, c2 = rng.uniform(0.5, 2, 10), rng.uniform(0.5, 2, 14)
    r = rng.uniform(0.5, 2, n)
    s1, s2 = rng.uniform(0.1, 3, n), rng.uniform(0.1, 3, n)
    u1 = torch.from_numpy(rng.normal(size=(10, dim)))
    u2 = torch.from_numpy(rng.normal(size=(14, dim)))
    lam, a1 = 0.4, 2.0
    blocks = [Block(t1, c1, 0.05, a1, row_weight=s1), Block(t2, c2, 0.01, row_weight=s2)]
    v = RowSolver(blocks, r, lam, CPU, torch.float64, memory_elems=500).solve([u1, u2])
    v = v.requires_grad_(True)
    loss = (
        a1 * dense_loss(y1, m1, r * s1, c1, 0.05, v, u1)
        + dense_loss(y2, m2, r * s2, c2, 0.01, v, u2)
        + lam * (v**2).sum()
    )
    (grad,) = torch.autograd.grad(loss, v)
    assert float(grad.abs().max()) < 1e-9
    assert float(v.detach().abs().max()) > 1e-3


def test_text_encoder_solver_zero_gradient():
    rng = np.random.default_rng(2)
    n, n_terms, d = 25, 10, 4
    m, y, mask = random_block(rng, n, n, 0.2)
    enc_dense = (rng.random((n, n_terms)) < 0.3).astype(float)
    enc_dense /= np.maximum(enc_dense.sum(1, keepdims=True), 1)
    er, ec = np.nonzero(enc_dense)
    enc = CsrMatrix.from_coo(er, ec, enc_dense[er, ec], (n, n_terms))
    r, c = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n)
    v = torch.from_numpy(rng.normal(size=(n, d)))
    solver = TextEncoderSolver(m, enc, r, c, omega0=0.05, lam=0.3)
    w, steps, resid = solver.solve(v, torch.zeros(n_terms, d, dtype=torch.float64), 500, 1e-12)
    assert resid < 1e-10 and steps > 0
    w = w.requires_grad_(True)
    u = torch.from_numpy(enc_dense) @ w
    loss = dense_loss(y, mask, r, c, 0.05, v, u) + 0.3 * (w**2).sum()
    (grad,) = torch.autograd.grad(loss, w)
    assert float(grad.abs().max()) < 1e-7


def test_block_rejects_bad_omega():
    t = CsrMatrix.from_coo(np.array([0]), np.array([0]), np.array([1.0]), (1, 1))
    with pytest.raises(ValueError, match="omega0"):
        Block(t, np.ones(1), 1.0)
    with pytest.raises(ValueError, match="row_weight"):
        Block(t, np.ones(1), 0.1, row_weight=np.ones(2))


def test_batched_spd_solve_by_hand_with_lu_fallback():
    """Cholesky for SPD batches; a batch with a non-PD matrix falls back to LU."""
    spd = torch.tensor([[[2.0, 0.0], [0.0, 4.0]], [[2.0, 1.0], [1.0, 2.0]]], dtype=torch.float64)
    rhs = torch.tensor([[2.0, 2.0], [3.0, 3.0]], dtype=torch.float64)
    np.testing.assert_allclose(batched_spd_solve(spd, rhs).numpy(), [[1.0, 0.5], [1.0, 1.0]])
    swap = torch.tensor([[[2.0, 0.0], [0.0, 4.0]], [[0.0, 1.0], [1.0, 0.0]]], dtype=torch.float64)
    np.testing.assert_allclose(batched_spd_solve(swap, rhs).numpy(), [[1.0, 0.5], [3.0, 3.0]])


def _two_block_problem(seed: int, dim: int, row_weights: bool):
    """Two tasks sharing V (optionally each with its own row weights), and their objective."""
    rng = np.random.default_rng(seed)
    n = 24
    t1, y1, m1 = random_block(rng, n, 15, 0.3)
    t2, y2, m2 = random_block(rng, n, 18, 0.25)
    c1, c2 = rng.uniform(0.5, 2, 15), rng.uniform(0.5, 2, 18)
    r = rng.uniform(0.5, 2, n)
    r[3] = 0.0  # a row with no weight gets zero
    s1 = rng.uniform(0.1, 3, n) if row_weights else None
    s2 = rng.uniform(0.1, 3, n) if row_weights else None
    u1 = torch.from_numpy(rng.normal(size=(15, dim)))
    u2 = torch.from_numpy(rng.normal(size=(18, dim)))
    blocks = [Block(t1, c1, 0.1, 1.5, row_weight=s1), Block(t2, c2, 0.02, 0.5, row_weight=s2)]

    def objective(v: torch.Tensor) -> torch.Tensor:
        r1 = r if s1 is None else r * s1
        r2 = r if s2 is None else r * s2
        return (
            1.5 * dense_loss(y1, m1, r1, c1, 0.1, v, u1)
            + 0.5 * dense_loss(y2, m2, r2, c2, 0.02, v, u2)
            + 0.7 * (v**2).sum()
        )

    return blocks, r, [u1, u2], objective, rng


@pytest.mark.parametrize("row_weights", [False, True])
@pytest.mark.parametrize("dim", [3, 12])
def test_cg_row_solver_converges_to_the_exact_solve(dim, row_weights):
    """Run to convergence (≥ d steps), preconditioned CG equals the direct solves."""
    blocks, r, us, objective, rng = _two_block_problem(4, dim, row_weights)
    exact = RowSolver(blocks, r, 0.7, CPU, torch.float64).solve(us)
    cg = RowSolver(blocks, r, 0.7, CPU, torch.float64, cg_steps=4 * dim)
    x0 = torch.from_numpy(rng.normal(size=exact.shape))
    for start in (None, x0):
        v = cg.solve(us, x0=start)
        np.testing.assert_allclose(v.numpy(), exact.numpy(), rtol=1e-9, atol=1e-11)
        assert float(v[3].abs().max()) == 0.0  # a zero-weight row stays 0 from any start
    (grad,) = torch.autograd.grad(objective(v.requires_grad_(True)), v)
    assert float(grad.abs().max()) < 1e-9


@pytest.mark.parametrize("row_weights", [False, True])
def test_cg_row_solver_steps_only_lower_the_objective(row_weights):
    """Each CG step from the warm start lowers every row's quadratic (the ALS loss stays
    monotone with few steps), and more steps come closer to the exact minimum."""
    dim = 12
    blocks, r, us, objective, rng = _two_block_problem(5, dim, row_weights)
    exact = RowSolver(blocks, r, 0.7, CPU, torch.float64).solve(us)
    x0 = exact + torch.from_numpy(rng.normal(scale=0.5, size=exact.shape))
    x0[3] = 0.0
    losses = [float(objective(x0))]
    for steps in (1, 2, 3, 6):
        v = RowSolver(blocks, r, 0.7, CPU, torch.float64, cg_steps=steps).solve(us, x0=x0)
        losses.append(float(objective(v)))
    best = float(objective(exact))
    assert all(a >= b for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] - best < 1e-3 * (losses[0] - best), (losses, best)


def test_cg_row_solver_one_row_by_hand():
    """One row, d = 2, no implicit negatives (ω0 = 0), one observed column u = (1, 0),
    y = 2, c = 1, r = 1, λ = 1: (u uᵀ + I) v = 2u → v = (1, 0); preconditioned CG from 0
    gets there in one step (the system is diagonal)."""
    t = CsrMatrix.from_coo(np.array([0]), np.array([0]), np.array([2.0]), (1, 1))
    u = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    v = RowSolver([Block(t, np.ones(1), 0.0)], np.ones(1), 1.0, CPU, torch.float64, cg_steps=1)
    np.testing.assert_allclose(v.solve([u]).numpy(), [[1.0, 0.0]], atol=1e-15)


def test_sparse_pattern_products_by_hand():
    """[[0, 2], [3, 0]]'s pattern: sampled dots and the sparse × dense product."""
    m = CsrMatrix.from_coo(np.array([0, 1]), np.array([1, 0]), np.array([2.0, 3.0]), (2, 2))
    p = SparsePattern(m, CPU)
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    b = torch.tensor([[5.0, 6.0], [7.0, 8.0]], dtype=torch.float64)
    # stored (0, 1): a_0·b_1 = 7 + 16; (1, 0): a_1·b_0 = 15 + 24
    np.testing.assert_array_equal(p.dots(a, b).numpy(), [23.0, 39.0])
    vals = torch.tensor([2.0, 3.0], dtype=torch.float64)
    np.testing.assert_array_equal(p.matmul(vals, b).numpy(), [[14.0, 16.0], [15.0, 18.0]])
    t = transpose(m)
    assert t.indptr.tolist() == [0, 1, 2] and t.indices.tolist() == [1, 0]
    assert t.data.tolist() == [3.0, 2.0]
