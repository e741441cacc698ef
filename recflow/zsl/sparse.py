"""A CSR matrix that multiplies torch tensors on whichever device they live.

The solver is written once against torch tensors. The two operations whose fast path
differs by device live here and in ``linalg.py``: on CPU a sparse × dense product goes
through the compiled, threaded ``kernels.spmm`` (scipy's is single-threaded; torch's CPU
sparse matmul measured ~10× slower than scipy), on CUDA through a torch sparse CSR tensor. The structure is kept on the host as numpy arrays; the values can
be swapped (``with_values``) without rebuilding it, which conjugate gradient relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch and scipy are imported on use: search loads neither
    import scipy.sparse as sp
    import torch


@dataclass
class CsrMatrix:
    """A (n_rows, n_cols) sparse matrix in compressed sparse row form.

    indptr: (n_rows + 1,) int64 · indices: (nnz,) int64 column of each entry, sorted inside
    a row · data: (nnz,) float64 value of each entry.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]
    _torch_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def from_coo(
        cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
    ) -> CsrMatrix:
        """Build from (row, col, value) triples; duplicates are an error, not summed."""
        import scipy.sparse as sp  # here, not at import: the search CLI loads without scipy

        m = sp.csr_array(
            (np.asarray(values, dtype=np.float64), (np.asarray(rows), np.asarray(cols))),
            shape=shape,
        )
        m.sort_indices()
        if m.nnz != len(values):
            raise ValueError(f"{len(values) - m.nnz} duplicate (row, col) pairs")
        return cls(m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data, shape)

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    @property
    def row_nnz(self) -> np.ndarray:
        """(n_rows,) number of stored entries per row."""
        return np.diff(self.indptr)

    def entry_rows(self) -> np.ndarray:
        """(nnz,) the row of each stored entry."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), self.row_nnz)

    def sum_rows(self, rows: list[int]) -> np.ndarray:
        """(n_cols,) the sum of the given rows, in numpy. On the transpose of an
        (items × terms) matrix, a query's per-item score in time proportional to its
        terms' postings: the search CLI's BM25, without scipy or the compiled kernels."""
        spans = [np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows]
        at = np.concatenate(spans) if spans else np.empty(0, dtype=np.int64)
        return np.bincount(self.indices[at], weights=self.data[at], minlength=self.shape[1])

    def row(self, i: int) -> np.ndarray:
        """Column indices stored in row ``i``."""
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def to_scipy(self) -> sp.csr_array:
        import scipy.sparse as sp

        return sp.csr_array((self.data, self.indices, self.indptr), shape=self.shape)

    def with_values(self, data: np.ndarray) -> CsrMatrix:
        """Same structure, new values (the torch structure cache is shared)."""
        if data.shape != self.data.shape:
            raise ValueError(f"need {self.data.shape} values, got {data.shape}")
        return CsrMatrix(self.indptr, self.indices, data, self.shape, self._torch_cache)

    def transpose_with_order(self) -> tuple[CsrMatrix, np.ndarray]:
        """The transpose, and ``order`` such that ``T.data == self.data[order]``."""
        rows = self.entry_rows()
        order = np.lexsort((rows, self.indices))  # by column, then row
        cols_t = rows[order]
        counts = np.bincount(self.indices, minlength=self.shape[1])
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        t = CsrMatrix(indptr, cols_t, self.data[order], (self.shape[1], self.shape[0]))
        return t, order

    def matmul(self, dense: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """self @ dense, on ``dense``'s device. ``values`` (nnz,) overrides the stored data."""
        import torch

        if dense.shape[0] != self.shape[1]:
            raise ValueError(f"shape mismatch: {self.shape} @ {tuple(dense.shape)}")
        if dense.device.type == "cpu":
            from recflow.zsl import kernels  # compiled: loaded only by training, not search

            b = np.ascontiguousarray(dense.numpy())
            data = self.data if values is None else values.detach().numpy()
            kernels.set_threads()
            return torch.from_numpy(
                kernels.spmm(self.indptr, self.indices, data.astype(b.dtype, copy=False), b)
            )
        key = str(dense.device)
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                torch.from_numpy(self.indptr).to(dense.device),
                torch.from_numpy(self.indices).to(dense.device),
            )
        crow, col = self._torch_cache[key]
        vals = (
            torch.from_numpy(self.data).to(dense.device, dense.dtype)
            if values is None
            else values.to(dense.dtype)
        )
        m = torch.sparse_csr_tensor(crow, col, vals, size=self.shape)
        return m @ dense
