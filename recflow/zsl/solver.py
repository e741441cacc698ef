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
Σ_b s_bi α_b ω0_b G_b and every row takes the direct solve.

With ``cg_steps > 0`` the same normal equations are solved instead by a few steps of
preconditioned conjugate gradient per row, warm-started at the previous factors (Hu,
Koren & Volinsky 2008; Takács, Pilászy & Tikk 2011; implicit's trick). All rows step
together: the matrix is never formed, A x is the shared Gramian plus the observed
correction Σ_j α c_j (1−ω0) u_j (u_j·x_i), one sampled product (the (nnz,) dots u_j·x_i)
and one sparse × dense product per block; the preconditioner is A's diagonal in G_ω's
eigenbasis. Each CG step lowers the row's quadratic, so the ALS loss still falls
monotonically; at convergence it equals the exact solve (``tests/zsl/test_solver.py``).
On CPU the same steps run per row in one compiled loop (``kernels.row_cg``: one pass over
the row's pairs per step, int32 columns); the torch formulation above is what CUDA runs,
and the two are tested equal (``tests/zsl/test_kernels.py``).

``TextEncoderSolver`` solves ZSL_TE's word step, where the columns are u_j = Σ_t b_jt w_t,
by preconditioned conjugate gradient on the same loss (its Hessian applied through the
Gramian trick too; on CPU its pair products are ``kernels.sandwich``, fused).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recflow.zsl import kernels
from recflow.zsl.linalg import batched_spd_solve, symmetric_eigh
from recflow.zsl.sparse import CsrMatrix

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


class SparsePattern:
    """A CSR structure as torch tensors on one device, for the two products CG repeats.

    ``dots`` is the sampled product (the (nnz,) a_i · b_j on each stored (i, j)) and
    ``matmul`` the sparse × dense product with given values; both run without an
    (nnz, d) temporary (torch's SDDMM and CSR kernels, ~4× numpy's row gathers here).
    """

    def __init__(self, m: CsrMatrix, device: torch.device) -> None:
        self.crow = torch.from_numpy(m.indptr).to(device)
        self.col = torch.from_numpy(m.indices).to(device)
        self.shape = m.shape
        self._zeros: dict[torch.dtype, torch.Tensor] = {}

    def matmul(self, values: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """(n_rows, d): the matrix with ``values`` (nnz,) on this pattern, times ``dense``."""
        m = torch.sparse_csr_tensor(self.crow, self.col, values, size=self.shape)
        return m @ dense

    def dots(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(nnz,) a_i · b_j for each stored (i, j); a (n_rows, d), b (n_cols, d)."""
        if a.dtype not in self._zeros:
            self._zeros[a.dtype] = torch.zeros(len(self.col), device=a.device, dtype=a.dtype)
        m = torch.sparse_csr_tensor(self.crow, self.col, self._zeros[a.dtype], size=self.shape)
        return torch.sparse.sampled_addmm(m, a, b.T, beta=0.0).values()


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


@dataclass
class _CgBlock:
    pattern: SparsePattern  # the block's observed pairs, rows = what we solve for
    diag: torch.Tensor  # (nnz,) α c_j (1 − ω0) s_bi
    rhs_w: torch.Tensor  # (nnz,) α c_j y_ij s_bi


class RowSolver:
    """Minimizer of Σ_b α_b L_b + λ‖V‖² over V, for fixed column factors.

    The sparsity structure is prepared once; ``solve`` takes the current column factors of
    each block (same order as ``blocks``). Rows whose weight r_i is 0 get v_i = 0.
    ``cg_steps`` = 0: the exact solve, ``memory_elems`` bounding one batch of rows
    (elements of the largest tensor); > 0: that many preconditioned CG steps per row from
    ``solve``'s ``x0`` (see the module docstring).
    """

    def __init__(
        self,
        blocks: Sequence[Block],
        row_weight: np.ndarray,
        lam: float,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        memory_elems: int = 1 << 24,
        cg_steps: int = 0,
        compiled: bool | None = None,
    ) -> None:
        """``compiled``: CG rows by the compiled CPU kernel (None: on CPU); False keeps the
        torch formulation, which CUDA runs and the tests compare on CPU."""
        if lam <= 0:
            raise ValueError(f"lam must be > 0 for a unique solution, got {lam}")
        if cg_steps < 0:
            raise ValueError(f"cg_steps must be ≥ 0, got {cg_steps}")
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
        self.cg_steps = cg_steps
        self.compiled = device.type == "cpu" if compiled is None else compiled
        if self.compiled and device.type != "cpu":
            raise ValueError(f"the compiled kernels run on CPU, not {device}")
        self.row_weight = row_weight.astype(np.float64)
        self._offsets = np.cumsum([0] + [b.targets.shape[1] for b in blocks])
        self._per_row = any(b.row_weight is not None for b in blocks)
        # (n_rows, n_blocks) s_bi: each task's own row weight relative to r_i
        self._scales = np.stack(
            [np.ones(n_rows) if b.row_weight is None else b.row_weight for b in blocks], axis=1
        )
        self._chunks_for_dim: dict[int, list[_Chunk]] = {}
        if cg_steps:
            self._prepare_cg()
        else:
            self._prepare_exact()

    def _block_values(self, k: int, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Block k's (diag, rhs_w) on its observed pairs, in its CSR order, as ``dtype``.

        Built in place in ``dtype``: at a million items each (nnz,) temporary is ~0.3 GB.
        """
        b = self.blocks[k]
        t = b.targets
        c = b.col_weight.astype(dtype)[t.indices]  # α c_j s_bi, then the two weights
        if b.row_weight is not None:
            c *= np.repeat(b.row_weight.astype(dtype), t.row_nnz)
        c *= dtype(b.task_weight)
        rhs_w = np.multiply(c, t.data, out=np.empty_like(c), casting="same_kind")
        c *= dtype(1.0 - b.omega0)
        return c, rhs_w

    def _prepare_exact(self) -> None:
        """Every row's observed pairs over all blocks, concatenated in row order."""
        rows, cols, diag, rhs_w = [], [], [], []
        for k, (b, off) in enumerate(zip(self.blocks, self._offsets, strict=False)):
            d, r = self._block_values(k)
            rows.append(b.targets.entry_rows())
            cols.append(b.targets.indices + off)
            diag.append(d)
            rhs_w.append(r)
        all_rows = np.concatenate(rows)
        order = np.argsort(all_rows, kind="stable")
        self._cols = np.concatenate(cols)[order]
        self._diag = np.concatenate(diag)[order]
        self._rhs_w = np.concatenate(rhs_w)[order]
        counts = np.bincount(all_rows, minlength=self.n_rows)
        self._indptr = np.concatenate([[0], np.cumsum(counts)])
        self._counts = counts

    def _prepare_cg(self) -> None:
        """Each block's pattern with its values on the device; rows' shifts λ / r_i.

        On CPU: every row's pairs over all blocks, merged in row order with int32 columns
        into the concatenated factors, for the compiled per-row kernel (``kernels.py``).
        """
        active = self.row_weight > 0
        shift = np.where(active, self.lam / np.where(active, self.row_weight, 1.0), 0.0)
        if self.compiled:
            self._prepare_cg_cpu(active, shift)
            return
        to = {"device": self.device, "dtype": self.dtype}
        self._cg_blocks = []
        for k, b in enumerate(self.blocks):
            d, r = self._block_values(k)
            pattern = SparsePattern(b.targets, self.device)
            self._cg_blocks.append(
                _CgBlock(pattern, torch.from_numpy(d).to(**to), torch.from_numpy(r).to(**to))
            )
        self._active = torch.from_numpy(active).to(**to)[:, None]  # (n, 1)
        self._shift = torch.from_numpy(shift).to(**to)[:, None]  # (n, 1) λ / r_i
        self._scale_t = torch.from_numpy(self._scales).to(**to) if self._per_row else None

    def _prepare_cg_cpu(self, active: np.ndarray, shift: np.ndarray) -> None:
        """The merged row-ordered arrays ``kernels.row_cg`` reads (no per-pair index copies)."""
        np_dtype = np.float32 if self.dtype == torch.float32 else np.float64
        counts = sum(b.targets.row_nnz for b in self.blocks)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        n_cols = int(self._offsets[-1])
        if len(self.blocks) == 1:  # already in row order: no merge
            t = self.blocks[0].targets
            indices = kernels.compact_indices(t.indices, n_cols)
            diag, rhs_w = self._block_values(0, np_dtype)
        else:
            nnz = int(indptr[-1])
            indices = np.empty(nnz, np.int32 if n_cols < 2**31 else np.int64)
            diag, rhs_w = np.empty(nnz, np_dtype), np.empty(nnz, np_dtype)
            filled = np.zeros(self.n_rows, np.int64)  # pairs already placed per row
            for k, b in enumerate(self.blocks):
                t = b.targets
                rows = t.entry_rows()
                dest = indptr[rows] + filled[rows] + (np.arange(t.nnz) - t.indptr[rows])
                del rows
                indices[dest] = t.indices + self._offsets[k]
                diag[dest], rhs_w[dest] = self._block_values(k, np_dtype)
                filled += t.row_nnz
                del dest
        self._cpu = (indptr, indices, diag, rhs_w)
        kernels.warm_up(np_dtype)
        self._cpu_active = active
        self._cpu_shift = shift.astype(np_dtype)
        self._cpu_scale = np.ascontiguousarray(self._scales, dtype=np_dtype)

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

    def solve(
        self, col_factors: Sequence[torch.Tensor], x0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The row factors V (n_rows, d) for the given column factors.

        ``x0`` (n_rows, d): the CG path's starting point (None: zeros); the exact path
        ignores it.
        """
        if len(col_factors) != len(self.blocks):
            raise ValueError(f"need {len(self.blocks)} factor matrices, got {len(col_factors)}")
        for b, u in zip(self.blocks, col_factors, strict=True):
            if u.shape[0] != b.targets.shape[1]:
                raise ValueError(f"factor rows {u.shape[0]} ≠ block columns {b.targets.shape[1]}")
        grams = self.block_gramians(col_factors)  # (n_blocks, d, d)
        evals, q = symmetric_eigh(grams.sum(dim=0))  # G_ω = Q Λ Qᵀ
        evals, q = evals.to(self.dtype), q.to(self.dtype)
        if self._per_row:  # each row's Gramian Σ_b s_bi G_b, in the same eigenbasis
            grams = q.T @ grams @ q
        if self.cg_steps and self.compiled:
            return self._solve_cg_cpu(col_factors, evals, grams, q, x0)
        if self.cg_steps:
            return self._solve_cg([u @ q for u in col_factors], evals, grams, q, x0)
        return self._solve_exact(col_factors, evals, grams, q)

    def _solve_cg(
        self,
        u_rot: list[torch.Tensor],
        evals: torch.Tensor,
        grams: torch.Tensor,
        q: torch.Tensor,
        x0: torch.Tensor | None,
    ) -> torch.Tensor:
        """``cg_steps`` of Jacobi-preconditioned CG for every row at once, in G_ω's eigenbasis."""
        scale = self._scale_t

        def gram_part(x: torch.Tensor) -> torch.Tensor:
            """(Σ_b s_bi G̃_b + λ/r_i I) x_i for every row (G̃ = Λ without s_bi)."""
            if scale is None:
                return x * (evals[None, :] + self._shift)
            out = x * self._shift
            for k in range(len(u_rot)):
                out += scale[:, k : k + 1] * (x @ grams[k])
            return out

        def apply_a(x: torch.Tensor) -> torch.Tensor:
            """A x_i = (Σ_b s_bi G̃_b + λ/r_i I) x_i + Σ_j α c_j (1−ω0) ũ_j (ũ_j·x_i)."""
            out = gram_part(x)
            for blk, u in zip(self._cg_blocks, u_rot, strict=True):
                out += blk.pattern.matmul(blk.diag * blk.pattern.dots(x, u), u)
            return out

        n, d = self.n_rows, q.shape[0]
        if x0 is None:
            x = torch.zeros(n, d, device=self.device, dtype=self.dtype)
        else:
            x = (x0.to(self.dtype) @ q) * self._active
        # r = b − A x0 = Σ_b Ũ_bᵀ-side products with values α c_j (y_ij − (1−ω0) ũ_j·x_i)
        r = -gram_part(x)
        for blk, u in zip(self._cg_blocks, u_rot, strict=True):
            w = blk.rhs_w if x0 is None else blk.rhs_w - blk.diag * blk.pattern.dots(x, u)
            r += blk.pattern.matmul(w, u)
        r *= self._active
        # Jacobi preconditioner: A's diagonal, Σ_b s_bi G̃_b[k, k] + λ/r_i + Σ_j α c_j (1−ω0) ũ_jk²
        g_diag = evals[None, :] if scale is None else scale @ torch.diagonal(grams, dim1=1, dim2=2)
        m = g_diag + self._shift
        for blk, u in zip(self._cg_blocks, u_rot, strict=True):
            m = m + blk.pattern.matmul(blk.diag, u * u)
        m_inv = torch.where(self._active > 0, 1.0 / m.clamp_min(1e-30), 0.0)
        z = r * m_inv
        p = z.clone()
        rz = (r * z).sum(dim=1, keepdim=True)
        for _ in range(self.cg_steps):
            ap = apply_a(p)
            pap = (p * ap).sum(dim=1, keepdim=True)
            alpha = torch.where(pap > 0, rz / pap, 0.0)  # rows already solved stay put
            x += alpha * p
            r -= alpha * ap
            z = r * m_inv
            rz_new = (r * z).sum(dim=1, keepdim=True)
            p = z + torch.where(rz > 0, rz_new / rz, 0.0) * p
            rz = rz_new
        return x @ q.T

    def _solve_cg_cpu(
        self,
        col_factors: Sequence[torch.Tensor],
        evals: torch.Tensor,
        grams: torch.Tensor,
        q: torch.Tensor,
        x0: torch.Tensor | None,
    ) -> torch.Tensor:
        """``_solve_cg``'s steps, each row's whole solve in one compiled loop (``kernels.row_cg``)."""
        indptr, indices, diag, rhs_w = self._cpu
        u_rot = torch.cat([u.to(self.dtype) for u in col_factors]) @ q  # (n_cols_total, d)
        d = q.shape[0]
        x = torch.zeros(self.n_rows, d, dtype=self.dtype) if x0 is None else x0.to(self.dtype) @ q
        x_np = np.ascontiguousarray(x.numpy())
        np_dtype = x_np.dtype
        if self._per_row:
            grams_np = np.ascontiguousarray(grams.numpy(), dtype=np_dtype)
        else:
            grams_np = np.zeros((1, 1, 1), np_dtype)
        kernels.set_threads()
        kernels.row_cg(
            indptr,
            indices,
            diag,
            rhs_w,
            np.ascontiguousarray(u_rot.numpy()),
            np.ascontiguousarray(evals.numpy(), dtype=np_dtype),
            grams_np,
            self._cpu_scale,
            self._per_row,
            self._cpu_shift,
            self._cpu_active,
            x_np,
            self.cg_steps,
        )
        return torch.from_numpy(x_np) @ q.T

    def _solve_exact(
        self,
        col_factors: Sequence[torch.Tensor],
        evals: torch.Tensor,
        grams: torch.Tensor,
        q: torch.Tensor,
    ) -> torch.Tensor:
        """One direct (or Woodbury) solve per row, in batches of rows."""
        d = q.shape[0]
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
    if v.device.type == "cpu":
        kernels.set_threads()
        p = kernels.dots(targets.indptr, targets.indices, v.numpy(), u.numpy()).astype(np.float64)
    else:
        p = SparsePattern(targets, v.device).dots(v, u).double().cpu().numpy()
    w = row_weight[targets.entry_rows()] * col_weight[targets.indices]
    observed = float((w * ((targets.data - p) ** 2 - omega0 * p**2)).sum())
    return everywhere + observed


def conjugate_gradient(
    apply_a: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor,
    max_iter: int,
    tol: float,
    precond: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, int, float]:
    """Solve A x = b for symmetric positive-definite A given as a function.

    ``precond`` applies M⁻¹ for an SPD M ≈ A (None: the identity). Stops when
    ‖b − A x‖ ≤ tol·‖b‖ or after ``max_iter`` steps. Returns x, the steps taken and the
    final relative residual.
    """
    x = x0.clone()
    r = b - apply_a(x)
    z = r if precond is None else precond(r)
    p = z.clone()
    rz = float((r * z).sum())
    b_norm = max(float(b.norm()), 1e-30)
    r_norm = float(r.norm())
    steps = 0
    while steps < max_iter and r_norm > tol * b_norm:
        ap = apply_a(p)
        alpha = rz / float((p * ap).sum())
        x += alpha * p
        r -= alpha * ap
        z = r if precond is None else precond(r)
        rz_new = float((r * z).sum())
        p = z + (rz_new / rz) * p
        rz = rz_new
        r_norm = float(r.norm())
        steps += 1
    return x, steps, r_norm / b_norm


class TextEncoderSolver:
    """ZSL_TE's word step: min over W of L(V, U = B W) + λ‖W‖², V fixed, by CG.

    targets: (n, n) item–item matrix M · encoder: (n, n_terms) bag-of-words B (row j = the
    encoding of item j's text) · row_weight r (n,) · col_weight c (n,).
    Setting the gradient to zero gives H(W) = R with

        H(Δ) = Bᵀ[ω0 diag(c) (BΔ) G_r + Z_Δᵀ V] + λΔ,   G_r = Vᵀ diag(r) V,
        Z_Δ[i, j] = r_i c_j (1 − ω0) v_i·(BΔ)_j on S,   R = Bᵀ Y_wᵀ V,  Y_w[i, j] = r_i c_j y_ij.

    CG runs in G_r's eigenbasis (G_r = Q Λ Qᵀ, W̃ = W Q, Ṽ = V Q), preconditioned by H's
    diagonal there: ω0 Λ_k (B∘B)ᵀc + λ + (B∘B)ᵀ Z₁ᵀ (Ṽ∘Ṽ), Z₁ = Z's weights r_i c_j (1−ω0).
    Only Mᵀ's structure is kept (Z_Δᵀ V is a product over Mᵀ's rows).
    """

    def __init__(
        self,
        targets: CsrMatrix,
        encoder: CsrMatrix,
        row_weight: np.ndarray,
        col_weight: np.ndarray,
        omega0: float,
        lam: float,
        dtype: torch.dtype = torch.float64,
        compiled: bool | None = None,
    ) -> None:
        """``dtype``: precision of the per-pair weights kept (float32 halves them);
        ``compiled``: as ``RowSolver``'s (None: the compiled kernels on CPU)."""
        if targets.shape[0] != targets.shape[1] or encoder.shape[0] != targets.shape[1]:
            raise ValueError(f"shapes do not fit: M {targets.shape}, B {encoder.shape}")
        self.encoder = encoder
        self.encoder_t, _ = encoder.transpose_with_order()
        self.encoder_sq_t = self.encoder_t.with_values(self.encoder_t.data**2)  # (B∘B)ᵀ
        np_dtype = np.float32 if dtype == torch.float32 else np.float64
        # Mᵀ: row j holds the i with (i, j) ∈ S; int32 columns, weights built in np_dtype
        indptr, indices, data = _transpose_arrays(targets)
        rows_t = np.repeat(np.arange(targets.shape[1], dtype=np.int64), np.diff(indptr))
        pair_w = col_weight.astype(np_dtype)[rows_t]  # r_i c_j on Mᵀ's entries
        del rows_t
        pair_w *= row_weight.astype(np_dtype)[indices]
        self._y_w = np.multiply(pair_w, data, out=np.empty_like(pair_w), casting="same_kind")
        del data
        pair_w *= np_dtype(1.0 - omega0)
        self._z_w = pair_w  # Z's weights r_i c_j (1 − ω0)
        self._t = (indptr, indices)
        kernels.warm_up(np_dtype)
        self.row_weight = row_weight
        self.col_weight = col_weight
        self.omega0 = omega0
        self.lam = lam
        self.compiled = compiled
        self._on_device: tuple[SparsePattern, torch.Tensor, torch.Tensor] | None = None

    def _device_arrays(
        self, device: torch.device, dtype: torch.dtype
    ) -> tuple[SparsePattern, torch.Tensor, torch.Tensor]:
        """Mᵀ's pattern with Z's weights and Y_wᵀ on ``device`` (made once, kept)."""
        cached = self._on_device
        if cached is None or cached[1].device != device or cached[1].dtype != dtype:
            self._on_device = None  # free the old copy first
            z_w = torch.from_numpy(self._z_w).to(device, dtype)
            y_w = torch.from_numpy(self._y_w).to(device, dtype)
            indptr, indices = self._t
            n = len(indptr) - 1
            pattern = CsrMatrix(indptr, indices.astype(np.int64), np.empty(0), (n, n))
            self._on_device = (SparsePattern(pattern, device), z_w, y_w)
        return self._on_device

    def _products(
        self, v_rot: torch.Tensor, c_evals: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]:
        """(u ↦ ω0 diag(c) u Λ + Z_uᵀ Ṽ, Z₁ᵀ (Ṽ∘Ṽ), Y_wᵀ Ṽ) on v_rot's device: compiled
        kernels on CPU. ``c_evals``: (c, Λ)."""
        c, evals = c_evals
        if v_rot.device.type == "cpu" if self.compiled is None else self.compiled:
            indptr, indices = self._t
            np_dtype = v_rot.numpy().dtype
            z_w = self._z_w.astype(np_dtype, copy=False)
            y_w = self._y_w.astype(np_dtype, copy=False)
            v_np = np.ascontiguousarray(v_rot.numpy())
            row_scale = (self.omega0 * c).numpy()
            kernels.set_threads()

            def part(u: torch.Tensor) -> torch.Tensor:
                u_np = np.ascontiguousarray(u.numpy())
                return torch.from_numpy(
                    kernels.sandwich(indptr, indices, z_w, u_np, v_np, row_scale, evals.numpy())
                )

            z_vv = torch.from_numpy(kernels.spmm(indptr, indices, z_w, v_np * v_np))
            return part, z_vv, torch.from_numpy(kernels.spmm(indptr, indices, y_w, v_np))
        pat, z_w, y_w = self._device_arrays(v_rot.device, v_rot.dtype)

        def part_dev(u: torch.Tensor) -> torch.Tensor:
            diag = self.omega0 * (u * c[:, None]) * evals
            return diag + pat.matmul(z_w * pat.dots(u, v_rot), v_rot)

        return part_dev, pat.matmul(z_w, v_rot * v_rot), pat.matmul(y_w, v_rot)

    def solve(
        self, v: torch.Tensor, w0: torch.Tensor, max_iter: int = 50, tol: float = 1e-4
    ) -> tuple[torch.Tensor, int, float]:
        """W minimizing the loss for fixed V (n, d), warm-started at w0 (n_terms, d)."""
        dev, dt = v.device, v.dtype
        c = torch.from_numpy(self.col_weight).to(dev, dt)
        r = torch.from_numpy(self.row_weight).to(dev, dt)
        evals, q = symmetric_eigh(v.T @ (v * r[:, None]))  # G_r = Vᵀ diag(r) V = Q Λ Qᵀ
        evals, q = evals.to(dt), q.to(dt)
        v_rot = v @ q
        part, z_vv, y_v = self._products(v_rot, (c, evals))

        def apply_h(delta: torch.Tensor) -> torch.Tensor:
            u = self.encoder.matmul(delta)  # (n, d) BΔ̃
            return self.encoder_t.matmul(part(u)) + self.lam * delta

        m = self.encoder_sq_t.matmul(self.omega0 * c[:, None] * evals[None, :] + z_vv)
        m_inv = 1.0 / (m + self.lam)
        rhs = self.encoder_t.matmul(y_v)  # Bᵀ Y_wᵀ Ṽ
        w, steps, resid = conjugate_gradient(
            apply_h, rhs, w0.to(dt) @ q, max_iter, tol, lambda x: x * m_inv
        )
        return w @ q.T, steps, resid


def _transpose_arrays(m: CsrMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mᵀ's (indptr int64, indices int32 when they fit, data), by scipy's counting sort."""
    t = m.to_scipy().T.tocsr()
    t.sort_indices()
    return (
        np.asarray(t.indptr, dtype=np.int64),
        kernels.compact_indices(np.asarray(t.indices), m.shape[0]),
        t.data,
    )


def transpose(m: CsrMatrix) -> CsrMatrix:
    """Mᵀ in CSR form (a counting sort through scipy: O(nnz), no argsort)."""
    indptr, indices, data = _transpose_arrays(m)
    return CsrMatrix(indptr, indices.astype(np.int64), data, (m.shape[1], m.shape[0]))
