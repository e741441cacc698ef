"""Invariants of a built co-consumption matrix, checked on the files themselves.

Each check returns a ``CheckOutcome`` (name, passed, a number, a sentence) so the asset
layer can show the evidence, not just pass/fail. Queries run in DuckDB over the Parquet
files, so checking a large matrix needs no more memory than building it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    value: float
    detail: str


def _q(con: duckdb.DuckDBPyConnection, sql: str, **params: object) -> tuple:
    """The one row of ``sql``, run with ``params`` as named prepared parameters."""
    row = con.execute(sql, params).fetchone()
    assert row is not None
    return row


def check_cooc_matrix(
    matrix_path: Path, item_index_path: Path, items_path: Path, top_k: int, tol: float = 1e-6
) -> list[CheckOutcome]:
    """At most ``top_k`` per row, no self pairs, counts ≥ 1, weight means 1 ± tol, ids known."""
    m, idx, items = (str(p) for p in (matrix_path, item_index_path, items_path))
    con = duckdb.connect()
    try:
        out: list[CheckOutcome] = []
        (max_row,) = _q(
            con,
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM read_parquet($m) GROUP BY row)",
            m=m,
        )
        out.append(
            CheckOutcome(
                "at_most_k_per_row", max_row <= top_k, max_row, f"max {max_row} per row, K={top_k}"
            )
        )
        (self_pairs,) = _q(con, "SELECT count(*) FROM read_parquet($m) WHERE row = col", m=m)
        out.append(
            CheckOutcome("no_self_pairs", self_pairs == 0, self_pairs, f"{self_pairs} self pairs")
        )
        (min_count, bad) = _q(
            con,
            "SELECT coalesce(min(count), 1), count(*) FILTER (WHERE count < 1) FROM read_parquet($m)",
            m=m,
        )
        out.append(
            CheckOutcome(
                "counts_positive", bad == 0, min_count, f"min count {min_count}, {bad} < 1"
            )
        )
        (row_mean, row_spread) = _q(
            con,
            "SELECT avg(w), coalesce(max(s), 0) FROM (SELECT any_value(row_weight) w, "
            "max(row_weight) - min(row_weight) s FROM read_parquet($m) GROUP BY row)",
            m=m,
        )
        (col_mean, col_spread) = _q(
            con,
            "SELECT avg(w), coalesce(max(s), 0) FROM (SELECT any_value(col_weight) w, "
            "max(col_weight) - min(col_weight) s FROM read_parquet($m) GROUP BY col)",
            m=m,
        )
        row_mean = 1.0 if row_mean is None else row_mean
        col_mean = 1.0 if col_mean is None else col_mean
        ok = abs(row_mean - 1) <= tol and abs(col_mean - 1) <= tol
        ok = ok and row_spread <= tol and col_spread <= tol
        out.append(
            CheckOutcome(
                "weight_means_one",
                ok,
                max(abs(row_mean - 1), abs(col_mean - 1)),
                f"row weight mean {row_mean:.9f}, column weight mean {col_mean:.9f} "
                f"(one weight per row/column: spread {row_spread:.2g}/{col_spread:.2g})",
            )
        )
        (n_index, unknown_index) = _q(
            con,
            "SELECT count(*), count(*) FILTER (WHERE item_id NOT IN "
            "(SELECT item_id FROM read_parquet($items))) FROM read_parquet($idx)",
            idx=idx,
            items=items,
        )
        (out_of_range,) = _q(
            con,
            "SELECT count(*) FROM read_parquet($m) WHERE row < 0 OR col < 0 "
            "OR row >= $n_index OR col >= $n_index",
            m=m,
            n_index=n_index,
        )
        out.append(
            CheckOutcome(
                "ids_known",
                unknown_index == 0 and out_of_range == 0,
                unknown_index + out_of_range,
                f"{unknown_index} indexed items not in the dataset's items, "
                f"{out_of_range} matrix entries outside the index of {n_index}",
            )
        )
        return out
    finally:
        con.close()
