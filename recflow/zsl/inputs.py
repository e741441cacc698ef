"""What the three models train on: the co-consumption matrix and the item–term matrix,
both on one dense item index, with their row/column weights.

The item index is the co-consumption matrix's (items that occur in the interactions);
items in the item–term table but not in that index are dropped (a model of co-consumption
has nothing to say about them), items in the index without text get an empty text row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from recflow.data.validate import DataValidationError
from recflow.text import Vocabulary
from recflow.zsl.sparse import CsrMatrix

TARGETS = ("binary", "log1p")


def inverse_sqrt_weights(nnz: np.ndarray) -> np.ndarray:
    """w ∝ 1/√nnz, rescaled to mean 1 over the non-empty entries; empty ones get 1.0."""
    out = np.ones(len(nnz), dtype=np.float64)
    live = nnz > 0
    if live.any():
        w = 1.0 / np.sqrt(nnz[live])
        out[live] = w / w.mean()
    return out


@dataclass
class ZslInputs:
    """Training inputs on dense indices 0..n-1 (items) and 0..V-1 (terms).

    item_ids: (n,) item id of each index · cooc: (n, n) targets on co-consumed pairs ·
    cooc_row_weight / cooc_col_weight: (n,) r_i, c_j (1.0 where a row/column is empty) ·
    item_terms: (n, V) term counts · vocab: the terms · popularity: (n,) interactions
    per item, or None where unknown.
    """

    item_ids: np.ndarray
    cooc: CsrMatrix
    cooc_row_weight: np.ndarray
    cooc_col_weight: np.ndarray
    item_terms: CsrMatrix
    vocab: Vocabulary
    popularity: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def text_targets(self) -> CsrMatrix:
        """(n, V) X with x_it = 1 where item i's text has term t (Task 1's targets)."""
        return self.item_terms.with_values(np.ones(self.item_terms.nnz))

    def text_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """1/√nnz row weights of the items and column weights of the terms in X."""
        cols = np.bincount(self.item_terms.indices, minlength=self.item_terms.shape[1])
        return inverse_sqrt_weights(self.item_terms.row_nnz), inverse_sqrt_weights(cols)

    def bag_of_words(self) -> CsrMatrix:
        """(n, V) B with b_jt = count_jt / Σ_t count_jt: item j's text as a mean of terms."""
        totals = np.add.reduceat(self.item_terms.data, self.item_terms.indptr[:-1])
        totals = np.where(self.item_terms.row_nnz > 0, totals, 1.0)
        return self.item_terms.with_values(
            self.item_terms.data / totals[self.item_terms.entry_rows()]
        )


def build_inputs(
    cooc_matrix: pl.DataFrame,
    item_index: pl.DataFrame,
    item_terms: pl.DataFrame,
    vocab: Vocabulary,
    target: str = "binary",
    popularity: pl.DataFrame | None = None,
) -> ZslInputs:
    """Assemble ``ZslInputs`` from the co-consumption Parquet tables and the item–term table.

    cooc_matrix: (row, col, count, row_weight, col_weight) on the dense index of
    item_index (index, item_id) · item_terms: (item_id, term, count) · popularity:
    optional (item_id, count). ``target``: y_ij = 1 (``binary``) or log(1 + count).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    for col in ("row", "col", "count", "row_weight", "col_weight"):
        if col not in cooc_matrix.columns:
            raise DataValidationError("cooc matrix", col, "missing column", cooc_matrix.height)
    index = item_index.sort("index")
    n = index.height
    if not np.array_equal(index.get_column("index").to_numpy(), np.arange(n)):
        raise DataValidationError("item index", "index", "indices are not 0..n-1", n)
    rows = cooc_matrix.get_column("row").to_numpy().astype(np.int64)
    cols = cooc_matrix.get_column("col").to_numpy().astype(np.int64)
    bad = int(((rows < 0) | (rows >= n) | (cols < 0) | (cols >= n)).sum())
    if bad:
        raise DataValidationError("cooc matrix", "row/col", f"index outside 0..{n - 1}", bad)
    counts = cooc_matrix.get_column("count").to_numpy().astype(np.float64)
    values = np.ones_like(counts) if target == "binary" else np.log1p(counts)
    cooc = CsrMatrix.from_coo(rows, cols, values, (n, n))
    row_w = np.ones(n)
    row_w[rows] = cooc_matrix.get_column("row_weight").to_numpy()
    col_w = np.ones(n)
    col_w[cols] = cooc_matrix.get_column("col_weight").to_numpy()

    item_ids = index.get_column("item_id").to_numpy().astype(np.int64)
    pos = pl.DataFrame({"item_id": item_ids, "_i": np.arange(n)})
    terms = item_terms.join(pos, on="item_id", how="inner")
    t = terms.get_column("term").to_numpy().astype(np.int64)
    if len(t) and (t.min() < 0 or t.max() >= len(vocab)):
        raise DataValidationError("item terms", "term", "term index outside the vocabulary", len(t))
    x = CsrMatrix.from_coo(
        terms.get_column("_i").to_numpy(),
        t,
        terms.get_column("count").to_numpy().astype(np.float64),
        (n, len(vocab)),
    )
    pop = None
    if popularity is not None:
        joined = pos.join(popularity, on="item_id", how="left").sort("_i")
        pop = joined.get_column("count").fill_null(0).to_numpy().astype(np.int64)
    return ZslInputs(item_ids, cooc, row_w, col_w, x, vocab, pop)
