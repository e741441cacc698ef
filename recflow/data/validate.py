"""Checks that turn bad input into one clear error naming file, column, problem and rows.

Raw files are read with every column as text and cast here, so that a value that does
not parse is counted and reported instead of failing deep inside a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recflow.data.schema import TableSchema


class DataValidationError(ValueError):
    """Input that breaks the canonical contract.

    Attributes name where the problem is so callers (and the Dagster UI) can show it.
    """

    def __init__(self, file: str | Path, column: str | None, problem: str, rows: int) -> None:
        self.file = str(file)
        self.column = column
        self.problem = problem
        self.rows = rows
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{self.file}: {where}{problem} ({rows} rows)")


def _examples(values: pl.Series, n: int = 3) -> str:
    shown = [repr(v) for v in values.head(n).to_list()]
    return ", ".join(shown)


def check_not_empty(df: pl.DataFrame, file: str | Path) -> None:
    """An empty table is never a valid input."""
    if df.height == 0:
        raise DataValidationError(file, None, "file has no data rows", 0)


def require_columns(df: pl.DataFrame, expected: Sequence[str], file: str | Path) -> None:
    """Every expected column is present; the error lists what is missing and what was found."""
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise DataValidationError(
            file,
            missing[0],
            f"missing column(s) {missing}; expected {list(expected)}, found {df.columns}",
            df.height,
        )


def cast_column(
    df: pl.DataFrame,
    column: str,
    dtype: pl.DataType,
    file: str | Path,
    *,
    what: str | None = None,
) -> pl.DataFrame:
    """Cast a text column to ``dtype``; values that do not parse are an error.

    Empty strings and nulls stay null (nullability is checked separately).
    """
    base = df.get_column(column)
    if base.dtype == dtype:
        return df
    if base.dtype == pl.String:
        base = base.str.strip_chars()
        base = base.set(base.str.len_chars() == 0, None)
    out = base.cast(dtype, strict=False)
    bad = out.is_null() & base.is_not_null()
    n_bad = int(bad.sum())
    if n_bad:
        kind = what or str(dtype)
        raise DataValidationError(
            file,
            column,
            f"values that are not {kind}, e.g. {_examples(base.filter(bad))}",
            n_bad,
        )
    return df.with_columns(out.alias(column))


def check_not_null(df: pl.DataFrame, columns: Sequence[str], file: str | Path) -> None:
    """Ids and other required values are never null."""
    for c in columns:
        n = int(df.get_column(c).null_count())
        if n:
            raise DataValidationError(file, c, "null or empty values in a required column", n)


def check_unique(df: pl.DataFrame, key: Sequence[str], file: str | Path) -> None:
    """No two rows share ``key`` (the whole row when key is all columns).

    Rows are hashed first and compared exactly only where hashes collide, so checking
    tens of millions of wide rows costs one 64-bit column, not a copy of the table.
    """
    hashes = df.select(pl.struct(list(key)).hash().alias("h")).get_column("h")
    candidates = hashes.is_duplicated()
    if not candidates.any():
        return
    subset = df.filter(candidates).select(key)
    dup = subset.is_duplicated()
    n = int(dup.sum())
    if n:
        example = subset.filter(dup).head(1).to_dicts()[0]
        raise DataValidationError(
            file,
            ",".join(key) if len(key) <= 4 else None,
            f"duplicate rows on {list(key)}, e.g. {example}",
            n,
        )


def conform(df: pl.DataFrame, schema: TableSchema, file: str | Path) -> pl.DataFrame:
    """Return ``df`` in the canonical column order and types, or raise.

    Missing nullable columns are added as nulls; missing required columns, values of the
    wrong type, nulls in required columns, duplicate keys (or fully duplicate rows for
    tables without a key) and empty tables are errors. Extra columns are kept only where
    the schema allows them.
    """
    check_not_empty(df, file)
    required = [c.name for c in schema.columns if not c.nullable]
    require_columns(df, required, file)
    for col in schema.columns:
        if col.name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=col.dtype).alias(col.name))
        else:
            df = cast_column(df, col.name, col.dtype, file)
    check_not_null(df, required, file)
    extras = [c for c in df.columns if c not in schema.names]
    if extras and not schema.extra_columns_allowed:
        raise DataValidationError(
            file, extras[0], f"unexpected column(s) {extras} in {schema.name}", df.height
        )
    df = df.select(schema.names + extras)
    check_unique(df, schema.key or df.columns, file)
    return df
