"""Compiled CPU kernels for the ALS solvers: one pass over a row's observed pairs.

The torch formulation of a CG step makes two passes over the pairs (a sampled product
u_j·x_i written to an (nnz,) array, then a sparse × dense product reading it back) and a
dozen (n, d) elementwise passes. Here each row's whole conjugate-gradient solve runs in
one compiled loop (numba): the row's x, r, z, p stay in cache, and each CG step reads the
row's column factors once, computing u_j·p and accumulating into A p in the same visit
(what implicit's C++ loop does, Takács et al. 2011). Rows are independent, so they run in
parallel over threads. The CUDA path stays in torch (``solver.py``); these kernels are
tested equal to it (``tests/zsl/test_kernels.py``).

Arrays are numpy, C-contiguous; indices may be int32 (half the memory at a million
items) or int64; values float32 or float64 (each combination compiles once, cached).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

_CHUNK = 64  # rows per parallel work item (scratch vectors allocated once per item)
# reassociation lets the d-long dot products vectorize; each row is summed by one thread in
# a fixed order, so results stay deterministic on a machine
_FAST = {"reassoc", "contract"}


def set_threads() -> None:
    """Use as many numba threads as torch does (the project's CPU thread cap)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def row_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    diag: np.ndarray,
    rhs_w: np.ndarray,
    u: np.ndarray,
    evals: np.ndarray,
    grams: np.ndarray,
    scale: np.ndarray,
    per_row: bool,
    shift: np.ndarray,
    active: np.ndarray,
    x: np.ndarray,
    steps: int,
) -> None:
    """``steps`` Jacobi-preconditioned CG steps per row on (G_i + λ/r_i I + Σ_j d_ij u_j u_jᵀ) x_i = Σ_j b_ij u_j.

    In G_ω's eigenbasis: G_i = diag(evals) (``per_row`` False) or Σ_b scale[i, b] grams[b]
    (True). ``x`` (n, d) holds the start and receives the result; inactive rows get 0.
    """
    n, d = x.shape
    nb = grams.shape[0]
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in numba.prange(n_chunks):
        xi = np.empty(d, x.dtype)
        r = np.empty(d, x.dtype)
        m = np.empty(d, x.dtype)
        z = np.empty(d, x.dtype)
        p = np.empty(d, x.dtype)
        ap = np.empty(d, x.dtype)
        zero = np.zeros(1, x.dtype)[0]  # accumulate in the values' precision (vectorizes)
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            if not active[i]:
                x[i, :] = 0.0
                continue
            s_i = shift[i]
            for k in range(d):
                xi[k] = x[i, k]
            # r = b − A x, m = diag(A)
            if per_row:
                for k in range(d):
                    acc = s_i * xi[k]
                    mk = s_i
                    for b in range(nb):
                        sb = scale[i, b]
                        g = zero
                        for e in range(d):
                            g += grams[b, k, e] * xi[e]
                        acc += sb * g
                        mk += sb * grams[b, k, k]
                    r[k] = -acc
                    m[k] = mk
            else:
                for k in range(d):
                    m[k] = evals[k] + s_i
                    r[k] = -m[k] * xi[k]
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                dot = zero
                for k in range(d):
                    dot += u[j, k] * xi[k]
                coef = rhs_w[q] - diag[q] * dot
                dq = diag[q]
                for k in range(d):
                    ujk = u[j, k]
                    r[k] += coef * ujk
                    m[k] += dq * ujk * ujk
            rz = 0.0
            for k in range(d):
                m[k] = 1.0 / max(m[k], 1e-30)
                z[k] = r[k] * m[k]
                p[k] = z[k]
                rz += r[k] * z[k]
            for _ in range(steps):
                # ap = A p
                if per_row:
                    for k in range(d):
                        acc = s_i * p[k]
                        for b in range(nb):
                            g = zero
                            for e in range(d):
                                g += grams[b, k, e] * p[e]
                            acc += scale[i, b] * g
                        ap[k] = acc
                else:
                    for k in range(d):
                        ap[k] = (evals[k] + s_i) * p[k]
                for q in range(indptr[i], indptr[i + 1]):
                    j = indices[q]
                    dot = zero
                    for k in range(d):
                        dot += u[j, k] * p[k]
                    dot *= diag[q]
                    for k in range(d):
                        ap[k] += dot * u[j, k]
                pap = 0.0
                for k in range(d):
                    pap += p[k] * ap[k]
                if pap <= 0.0 or rz <= 0.0:  # the row is solved: stay put
                    break
                alpha = rz / pap
                rz_new = 0.0
                for k in range(d):
                    xi[k] += alpha * p[k]
                    r[k] -= alpha * ap[k]
                    z[k] = r[k] * m[k]
                    rz_new += r[k] * z[k]
                beta = rz_new / rz
                for k in range(d):
                    p[k] = z[k] + beta * p[k]
                rz = rz_new
            for k in range(d):
                x[i, k] = xi[k]


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def sandwich(
    indptr: np.ndarray,
    indices: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    row_scale: np.ndarray,
    col_scale: np.ndarray,
) -> np.ndarray:
    """out_ik = row_scale_i col_scale_k a_ik + Σ_(j in row i) w_ij (a_i·b_j) b_jk.

    A sampled product and a sparse product fused, plus a diagonal term (ZSL_TE's
    ω0 c_j Λ part), so no (nnz,) or (n, d) temporaries."""
    n, d = a.shape
    out = np.empty((n, d), a.dtype)
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in numba.prange(n_chunks):
        acc = np.empty(d, a.dtype)
        ai = np.empty(d, a.dtype)
        zero = np.zeros(1, a.dtype)[0]
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            for k in range(d):
                ai[k] = a[i, k]
                acc[k] = row_scale[i] * col_scale[k] * ai[k]
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                dot = zero
                for k in range(d):
                    dot += ai[k] * b[j, k]
                dot *= w[q]
                for k in range(d):
                    acc[k] += dot * b[j, k]
            for k in range(d):
                out[i, k] = acc[k]
    return out


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def spmm(indptr: np.ndarray, indices: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """out_i = Σ_(j in row i) w_ij b_j: the sparse × dense product, over threads."""
    n = len(indptr) - 1
    d = b.shape[1]
    out = np.empty((n, d), b.dtype)
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in numba.prange(n_chunks):
        acc = np.empty(d, b.dtype)
        zero = np.zeros(1, b.dtype)[0]
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            for k in range(d):
                acc[k] = zero
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                wq = w[q]
                for k in range(d):
                    acc[k] += wq * b[j, k]
            for k in range(d):
                out[i, k] = acc[k]
    return out


@numba.njit(parallel=True, fastmath=_FAST, cache=True)
def dots(indptr: np.ndarray, indices: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(nnz,) a_i · b_j for each stored (i, j): the sampled product."""
    n, d = a.shape
    out = np.empty(indptr[n], a.dtype)
    n_chunks = (n + _CHUNK - 1) // _CHUNK
    for c in numba.prange(n_chunks):
        zero = np.zeros(1, a.dtype)[0]
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            for q in range(indptr[i], indptr[i + 1]):
                j = indices[q]
                acc = zero
                for k in range(d):
                    acc += a[i, k] * b[j, k]
                out[q] = acc
    return out


_warmed: set[str] = set()


def warm_up(dtype: np.dtype | type) -> None:
    """Compile (or load from the on-disk cache) the kernels the solvers call for ``dtype``
    values, once per process: a solver's setup pays this (~1 s cached, ~15 s the first
    time on a machine) instead of its first step."""
    key = np.dtype(dtype).name
    if key in _warmed:
        return
    vals, mat = np.ones(1, dtype), np.ones((1, 1), dtype)
    ptr, i32, i64 = np.array([0, 1], np.int64), np.zeros(1, np.int32), np.zeros(1, np.int64)
    # the solvers' own structures have int32 columns; CsrMatrix's (encoder, loss) int64
    row_cg(ptr, i32, vals, vals, mat, vals, np.ones((1, 1, 1), dtype), mat, False,
           vals, np.ones(1, np.bool_), mat.copy(), 1)  # fmt: skip
    sandwich(ptr, i32, vals, mat, mat, vals, vals)
    spmm(ptr, i32, vals, mat)
    spmm(ptr, i64, vals, mat)
    dots(ptr, i64, mat, mat)
    _warmed.add(key)


def compact_indices(indices: np.ndarray, n_cols: int) -> np.ndarray:
    """``indices`` as int32 when the columns fit (half the memory), else int64."""
    return indices.astype(np.int32 if n_cols < 2**31 else np.int64, copy=False)
