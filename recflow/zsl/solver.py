"""Weighted least squares over all implicit negatives, solved exactly (Wu et al. 2020, §3–4).

Every task is a matrix Y (rows × cols) with targets y_ij on the observed pairs S and
implicit zeros elsewhere, row weights r_i and column weights c_j (∝ 1/√nnz, mean 1).
Its loss, with predictions p_ij = v_i·u_j, is

    L = Σ_(i,j)∈S r_i c_j (y_ij − p_ij)² + ω0 Σ_(i,j)∉S r_i c_j p_ij²

which we evaluate as a sum over all pairs plus a correction on S,

    L = ω0 Σ_i r_i v_iᵀ G v_i + Σ_(i,j)∈S r_i c_j [(y_ij − p_ij)² − ω0 p_ij²],  G = Uᵀ diag(c) U

(the Gramian trick: Σ_j c_j (v·u_j)² = vᵀ G v), so the n² negatives are never enumerated.

``RowSolver`` minimizes Σ_blocks α_b L_b + λ‖V‖² over the row factors V exactly, one
normal equation per row sharing one eigendecomposition of G:

    (G_ω + Σ_(j∈S_i) α c_j (1−ω0) u_j u_jᵀ + (λ/r_i) I) v_i = Σ_(j∈S_i) α c_j y_ij u_j

with G_ω = Σ_b α_b ω0_b G_b = Q Λ Qᵀ. In the eigenbasis the first and last terms are
diagonal, so rows with fewer observed pairs than dimensions use the Woodbury identity
(a k×k solve instead of d×d), the others a direct d×d solve. A block may carry its own
row weights s_bi (tasks sharing V but not their row weights); then row i's Gramian is
Σ_b s_bi α_b ω0_b G_b and every row takes the direct solve. ``TextEncoderSolver`` solves
ZSL_TE's word step, where the columns are u_j = Σ_t b_jt w_t, by conjugate gradient on the
same loss (its Hessian applied through the Gramian trick too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recflow.zsl.linalg import batched_spd_solve, symmetric_eigh
from recflow.zsl.sparse import CsrMatrix


@dataclass(frozen=True)
class Block:
    """One task's observed matrix seen from the side being solved (rows = what we solve for).

    targets: (n_rows, n_cols) y_ij on the observed pairs · col_weight: (n_cols,) c_j ·
    omega0: weight of an implicit negative, 0 ≤ ω0 < 1 · task_weight: α, the task's share ·
    row_weight: (n_rows,) this task's own row weights s_i, multiplying the solver's r_i
    (None: 1). Tasks that share row factors but not their row weights (ZSL_ME's text and
    co-consumption tasks) need it; it makes the solver's Gramian differ per row.
    """

    targets: CsrMatrix
    col_weight: np.ndarray
    omega0: float
    task_weight: float = 1.0
    row_weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.omega0 < 1.0:
            raise ValueError(f"omega0 must be in [0, 1), got {self.omega0}")
        if self.col_weight.shape != (self.targets.shape[1],):
            raise ValueError(
                f"col_weight has shape {self.col_weight.shape}, need ({self.targets.shape[1]},)"
            )
        if self.task_weight <= 0:
            raise ValueError(f"task_weight must be > 0, got {self.task_weight}")
        if self.row_weight is not None and (
            self.row_weight.shape != (self.targets.shape[0],) or (self.row_weight < 0).any()
        ):
            raise ValueError(
                f"row_weight must be ≥ 0 with shape ({self.targets.shape[0]},), "
                f"got shape {self.row_weight.shape}"
            )


@dataclass
class _Chunk:
    rows: torch.Tensor  # (b,) rows solved together
    cols: torch.Tensor  # (b, k) column index into the concatenated factors (padding: 0)
    diag: torch.Tensor  # (b, k) α c_j (1 − ω0) (padding: 0)
    rhs_w: torch.Tensor  # (b, k) α c_j y_ij (padding: 0)
    shift: torch.Tensor  # (b,) λ / r_i
    gram_scale: torch.Tensor | None  # (b, n_blocks) s_bi per block (None: all blocks 1)


class RowSolver:
    """Exact minimizer of Σ_b α_b L_b + λ‖V‖² over V, for fixed column factors.

    The sparsity structure is prepared once; ``solve`` takes the current column factors of
    each block (same order as ``blocks``). Rows whose weight r_i is 0 get v_i = 0.
    ``memory_elems`` bounds the size of one batch of rows (elements of the largest tensor).
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        row_weight: np.ndarray,
        lam: float,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        memory_elems: int = 1 << 24,
    ) -> None:
        if lam <= 0:
            raise ValueError(f"lam must be > 0 for a unique solution, got {lam}")
        n_rows = blocks[0].targets.shape[0]
        if any(b.targets.shape[0] != n_rows for b in blocks):
            raise ValueError("all blocks must have the same rows")
        if row_weight.shape != (n_rows,):
            raise ValueError(f"row_weight has shape {row_weight.shape}, need ({n_rows},)")
        self.blocks = list(blocks)
        self.n_rows = n_rows
        self.lam = lam
        self.device = device
        self.dtype = dtype
        self.memory_elems = memory_elems
        self.row_weight = row_weight.astype(np.float64)
        self._offsets = np.cumsum([0] + [b.targets.shape[1] for b in blocks])
        rows, cols, diag, rhs_w = [], [], [], []
        self._per_row = any(b.row_weight is not None for b in blocks)
        # (n_rows, n_blocks) s_bi: each task's own row weight relative to r_i
        self._scales = np.stack(
            [np.ones(n_rows) if b.row_weight is None else b.row_weight for b in blocks], axis=1
        )
        for k, (b, off) in enumerate(zip(blocks, self._offsets, strict=False)):
            t = b.targets
            er = t.entry_rows()
            c = b.col_weight[t.indices] * self._scales[er, k]
            rows.append(er)
            cols.append(t.indices + off)
            diag.append(b.task_weight * c * (1.0 - b.omega0))
            rhs_w.append(b.task_weight * c * t.data)
        all_rows = np.concatenate(rows)
        order = np.argsort(all_rows, kind="stable")
        self._cols = np.concatenate(cols)[order]
        self._diag = np.concatenate(diag)[order]
        self._rhs_w = np.concatenate(rhs_w)[order]
        counts = np.bincount(all_rows, minlength=n_rows)
        self._indptr = np.concatenate([[0], np.cumsum(counts)])
        self._counts = counts
        self._chunks_for_dim: dict[int, list[_Chunk]] = {}

    def _chunks(self, dim: int) -> list[_Chunk]:
        """Rows sorted by observed count and cut into batches that fit the memory bound."""
        if dim in self._chunks_for_dim:
            return self._chunks_for_dim[dim]
        active = np.flatnonzero(self.row_weight > 0)
        active = active[np.argsort(self._counts[active], kind="stable")]
        chunks: list[_Chunk] = []
        start = 0
        while start < len(active):
            stop = start + 1
            while stop < len(active):
                k = max(int(self._counts[active[stop]]), 1)
                size = (stop + 1 - start) * (k * dim + max(k, dim) ** 2)
                if size > self.memory_elems:
                    break
                stop += 1
            rows = active[start:stop]
            k = max(int(self._counts[rows].max()), 1)
            pos = self._indptr[rows][:, None] + np.arange(k)[None, :]  # (b, k)
            valid = np.arange(k)[None, :] < self._counts[rows][:, None]
            pos = np.where(valid, pos, 0)
            to = {"device": self.device}
            chunks.append(
                _Chunk(
                    rows=torch.from_numpy(rows).to(**to),
                    cols=torch.from_numpy(np.where(valid, self._cols[pos], 0)).to(**to),
                    diag=torch.from_numpy(np.where(valid, self._diag[pos], 0.0)).to(
                        self.device, self.dtype
                    ),
                    rhs_w=torch.from_numpy(np.where(valid, self._rhs_w[pos], 0.0)).to(
                        self.device, self.dtype
                    ),
                    shift=torch.from_numpy(self.lam / self.row_weight[rows]).to(
                        self.device, self.dtype
                    ),
                    gram_scale=torch.from_numpy(self._scales[rows]).to(self.device, self.dtype)
                    if self._per_row
                    else None,
                )
            )
            start = stop
        self._chunks_for_dim[dim] = chunks
        return chunks

    def block_gramians(self, col_factors: Sequence[torch.Tensor]) -> torch.Tensor:
        """(n_blocks, d, d): α_b ω0_b Uᵀ diag(c_b) U for each block."""
        out = []
        for b, u in zip(self.blocks, col_factors, strict=True):
            c = torch.from_numpy(b.col_weight).to(self.device, self.dtype)
            out.append(b.task_weight * b.omega0 * (u.T @ (u * c[:, None])))  # Uᵀ diag(c) U
        return torch.stack(out)

    def gramian(self, col_factors: Sequence[torch.Tensor]) -> torch.Tensor:
        """G_ω = Σ_b α_b ω0_b Uᵀ diag(c_b) U, (d, d) (the rows' G when no block has s_bi)."""
        return self.block_gramians(col_factors).sum(dim=0)

    def solve(self, col_factors: Sequence[torch.Tensor]) -> torch.Tensor:
        """The exact row factors V (n_rows, d) for the given column factors."""
        if len(col_factors) != len(self.blocks):
            raise ValueError(f"need {len(self.blocks)} factor matrices, got {len(col_factors)}")
        for b, u in zip(self.blocks, col_factors, strict=True):
            if u.shape[0] != b.targets.shape[1]:
                raise ValueError(f"factor rows {u.shape[0]} ≠ block columns {b.targets.shape[1]}")
        d = col_factors[0].shape[1]
        grams = self.block_gramians(col_factors)  # (n_blocks, d, d)
        evals, q = symmetric_eigh(grams.sum(dim=0))  # G_ω = Q Λ Qᵀ
        if self._per_row:  # each row's Gramian Σ_b s_bi G_b, in the same eigenbasis
            grams = q.T @ grams @ q
        u_rot = torch.cat(list(col_factors), dim=0) @ q  # (n_cols_total, d) in the eigenbasis
        x_rot = torch.zeros(self.n_rows, d, device=self.device, dtype=self.dtype)
        for ch in self._chunks(d):
            live = ch.diag > 0  # (b, k) real observed pairs; padding and c_j = 0 drop out
            ut = u_rot[ch.cols] * live[:, :, None]  # (b, k, d)
            rhs = torch.einsum("bk,bkd->bd", ch.rhs_w, ut)  # Σ_j α c_j y_ij u_j
            base = evals[None, :] + ch.shift[:, None]  # (b, d) diagonal of Λ + (λ/r_i) I
            k = ut.shape[1]
            if ch.gram_scale is not None:
                # per-row Gramian: (Σ_b s_bi Q'G_bQ + λ/r_i I + Ũᵀ D Ũ) x = rhs
                a = torch.einsum("bn,nde->bde", ch.gram_scale, grams)
                a = a + torch.diag_embed(ch.shift[:, None].expand(-1, d))
                a = a + ut.transpose(1, 2) @ (ut * ch.diag[:, :, None])
                x = batched_spd_solve(a, rhs)
            elif k < d:
                # Woodbury: A⁻¹ = B⁻¹ − B⁻¹Ũᵀ(D⁻¹ + Ũ B⁻¹ Ũᵀ)⁻¹ Ũ B⁻¹, B diagonal
                binv = 1.0 / base  # (b, d)
                t = binv * rhs  # B⁻¹ rhs
                ub = ut * binv[:, None, :]  # (b, k, d) Ũ B⁻¹
                dinv = torch.where(live, 1.0 / ch.diag.clamp_min(1e-30), 1.0)
                kmat = torch.diag_embed(dinv) + ub @ ut.transpose(1, 2)  # (b, k, k)
                s = batched_spd_solve(kmat, torch.einsum("bkd,bd->bk", ut, t))
                x = t - torch.einsum("bkd,bk->bd", ub, s)
            else:
                # direct: (Λ + λ/r_i I + Ũᵀ D Ũ) x = rhs
                a = ut.transpose(1, 2) @ (ut * ch.diag[:, :, None])  # (b, d, d)
                a = a + torch.diag_embed(base)
                x = batched_spd_solve(a, rhs)
            x_rot[ch.rows] = x.to(self.dtype)
        return x_rot @ q.T


def pair_dots(
    rows: np.ndarray, cols: np.ndarray, a: torch.Tensor, b: torch.Tensor, chunk: int = 1 << 22
) -> torch.Tensor:
    """(len(rows),) a[rows[e]] · b[cols[e]] for each entry e, in chunks of ``chunk`` elements.

    On CPU through numpy (its row gather measured ~5× faster than torch indexing here).
    """
    step = max(1, chunk // max(a.shape[1], 1))
    if a.device.type == "cpu":
        an, bn = a.numpy(), b.numpy()
        out = np.empty(len(rows), dtype=an.dtype)
        for s in range(0, len(rows), step):
            x = np.take(an, rows[s : s + step], axis=0)
            x *= np.take(bn, cols[s : s + step], axis=0)
            out[s : s + step] = x.sum(axis=1)
        return torch.from_numpy(out)
    out = torch.empty(len(rows), device=a.device, dtype=a.dtype)
    for s in range(0, len(rows), step):
        r = torch.from_numpy(rows[s : s + step]).to(a.device)
        c = torch.from_numpy(cols[s : s + step]).to(a.device)
        out[s : s + step] = (a.index_select(0, r) * b.index_select(0, c)).sum(dim=1)
    return out


def block_loss(
    targets: CsrMatrix,
    row_weight: np.ndarray,
    col_weight: np.ndarray,
    omega0: float,
    v: torch.Tensor,
    u: torch.Tensor,
) -> float:
    """L for one task through the Gramian trick (see module docstring); v (n_rows, d), u (n_cols, d)."""
    r = torch.from_numpy(row_weight).to(v.device, v.dtype)
    c = torch.from_numpy(col_weight).to(v.device, v.dtype)
    gv = v.T @ (v * r[:, None])  # Vᵀ diag(r) V
    gu = u.T @ (u * c[:, None])  # Uᵀ diag(c) U
    everywhere = omega0 * float((gv * gu).sum())  # ω0 Σ_ij r_i c_j p_ij² = ω0 tr(G_v G_u)
    rows = targets.entry_rows()
    p = pair_dots(rows, targets.indices, v, u).double().cpu().numpy()
    w = row_weight[rows] * col_weight[targets.indices]
    observed = float((w * ((targets.data - p) ** 2 - omega0 * p**2)).sum())
    return everywhere + observed


def conjugate_gradient(
    apply_a: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor,
    max_iter: int,
    tol: float,
) -> tuple[torch.Tensor, int, float]:
    """Solve A x = b for symmetric positive-definite A given as a function.

    Stops when ‖b − A x‖ ≤ tol·‖b‖ or after ``max_iter`` steps. Returns x, the steps taken
    and the final relative residual.
    """
    x = x0.clone()
    r = b - apply_a(x)
    p = r.clone()
    rr = float((r * r).sum())
    b_norm = max(float(b.norm()), 1e-30)
    steps = 0
    while steps < max_iter and rr**0.5 > tol * b_norm:
        ap = apply_a(p)
        alpha = rr / float((p * ap).sum())
        x += alpha * p
        r -= alpha * ap
        rr_new = float((r * r).sum())
        p = r + (rr_new / rr) * p
        rr = rr_new
        steps += 1
    return x, steps, rr**0.5 / b_norm


class TextEncoderSolver:
    """ZSL_TE's word step: min over W of L(V, U = B W) + λ‖W‖², V fixed, by CG.

    targets: (n, n) item–item matrix M · encoder: (n, n_terms) bag-of-words B (row j = the
    encoding of item j's text) · row_weight r (n,) · col_weight c (n,).
    Setting the gradient to zero gives H(W) = R with

        H(Δ) = Bᵀ[ω0 diag(c) (BΔ) G_r + Z_Δᵀ V] + λΔ,   G_r = Vᵀ diag(r) V,
        Z_Δ[i, j] = r_i c_j (1 − ω0) v_i·(BΔ)_j on S,   R = Bᵀ Y_wᵀ V,  Y_w[i, j] = r_i c_j y_ij.
    """

    def __init__(
        self,
        targets: CsrMatrix,
        encoder: CsrMatrix,
        row_weight: np.ndarray,
        col_weight: np.ndarray,
        omega0: float,
        lam: float,
    ) -> None:
        if targets.shape[0] != targets.shape[1] or encoder.shape[0] != targets.shape[1]:
            raise ValueError(f"shapes do not fit: M {targets.shape}, B {encoder.shape}")
        self.targets = targets
        self.encoder = encoder
        self.encoder_t, _ = encoder.transpose_with_order()
        self.targets_t, self._t_order = targets.transpose_with_order()
        self.rows = targets.entry_rows()
        self.cols = targets.indices
        self.pair_w = row_weight[self.rows] * col_weight[self.cols]  # r_i c_j on S
        self.row_weight = row_weight
        self.col_weight = col_weight
        self.omega0 = omega0
        self.lam = lam

    def _bt_zt_v(self, values: np.ndarray, v: torch.Tensor) -> torch.Tensor:
        """Bᵀ (Zᵀ V) for Z with ``values`` on S (in M's entry order)."""
        zt_v = self.targets_t.with_values(values[self._t_order]).matmul(v)  # (n, d)
        return self.encoder_t.matmul(zt_v)

    def solve(
        self, v: torch.Tensor, w0: torch.Tensor, max_iter: int = 50, tol: float = 1e-4
    ) -> tuple[torch.Tensor, int, float]:
        """W minimizing the loss for fixed V (n, d), warm-started at w0 (n_terms, d)."""
        r = torch.from_numpy(self.row_weight).to(v.device, v.dtype)
        c = torch.from_numpy(self.col_weight).to(v.device, v.dtype)
        g_r = v.T @ (v * r[:, None])  # (d, d) Vᵀ diag(r) V

        def apply_h(delta: torch.Tensor) -> torch.Tensor:
            u = self.encoder.matmul(delta)  # (n, d) BΔ
            dots = pair_dots(self.rows, self.cols, v, u).double().cpu().numpy()
            z = self.pair_w * (1.0 - self.omega0) * dots
            out = self.encoder_t.matmul(self.omega0 * (u * c[:, None]) @ g_r)
            return out + self._bt_zt_v(z, v) + self.lam * delta

        rhs = self._bt_zt_v(self.pair_w * self.targets.data, v)
        return conjugate_gradient(apply_h, rhs, w0, max_iter, tol)
