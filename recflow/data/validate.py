"""Checks that turn bad input into one clear error naming file, line, column and problem.

Raw files are read with every column as text and cast here, so that a value that does
not parse is counted and reported instead of failing deep inside a reader.

Where the rows come from a text file they carry their line number in the hidden column
``LINE`` (as a user counts lines in an editor: the header is line 1), through every cast,
filter and sort of the loader, so an error names the lines to open:

    data/ratings.csv: lines 5, 9: column 'userId': negative ids, e.g. [-1, -7]; ids are
    non-negative integers (0 <= id < 2**63) (2 rows)

and "lines 5, 9, 12, ..." when more rows offend than the three listed.

Rows without ``LINE`` (an in-memory table, Parquet) are named by their 1-based row number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recflow.data.schema import ID_DOMAIN, TableSchema

LINE = "_line"
"""Hidden Int64 column: the line of the source text file each row was read from."""

MAX_LINES_SHOWN = 3
"""How many offending line (or row) numbers an error lists."""


class DataValidationError(ValueError):
    """Input that breaks the canonical contract.

    Attributes name where the problem is so callers (and the Dagster UI) can show it:
    ``lines`` are the first offending line numbers of the file (``unit`` "line"), or row
    numbers of a table that has no lines (``unit`` "row"); empty where the problem is the
    whole file (not found, empty). ``more_lines``: further lines offend than are listed.
    """

    def __init__(
        self,
        file: str | Path,
        column: str | None,
        problem: str,
        rows: int,
        *,
        lines: Sequence[int] = (),
        unit: str = "line",
        more_lines: bool = False,
    ) -> None:
        self.file = str(file)
        self.column = column
        self.problem = problem
        self.rows = rows
        self.lines = [int(n) for n in lines]
        self.unit = unit
        at = ""
        if self.lines:
            more = ", ..." if more_lines else ""
            plural = "s" if len(self.lines) > 1 or more else ""
            at = f"{unit}{plural} {', '.join(str(n) for n in self.lines)}{more}: "
        where = f"column {column!r}: " if column else ""
        super().__init__(f"{self.file}: {at}{where}{problem} ({rows} rows)")


def offending_lines(df: pl.DataFrame, mask: pl.Series | pl.Expr) -> tuple[list[int], str]:
    """The first ``MAX_LINES_SHOWN`` line numbers (from ``LINE``) of the rows where ``mask``
    holds, in file order, and "line"; or 1-based row numbers and "row" without ``LINE``."""
    if LINE in df.columns:
        numbers = df.select(pl.col(LINE).filter(mask)).get_column(LINE)
        return numbers.sort().head(MAX_LINES_SHOWN).to_list(), "line"
    index = pl.int_range(1, pl.len() + 1, dtype=pl.Int64())
    numbers = df.select(index.filter(mask).alias("row")).get_column("row")
    return numbers.head(MAX_LINES_SHOWN).to_list(), "row"


def fail_on_rows(
    df: pl.DataFrame,
    mask: pl.Series | pl.Expr,
    file: str | Path,
    column: str | None,
    problem: str,
) -> None:
    """Raise naming the first offending lines of ``df`` where ``mask`` holds, if any does."""
    n = int(mask.sum()) if isinstance(mask, pl.Series) else int(df.select(mask.sum()).item())
    if n:
        lines, unit = offending_lines(df, mask)
        raise DataValidationError(
            file, column, problem, n, lines=lines, unit=unit, more_lines=n > len(lines)
        )


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
        found = [c for c in df.columns if c != LINE]
        raise DataValidationError(
            file,
            missing[0],
            f"missing column(s) {missing}; expected {list(expected)}, found {found}",
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
    if bad.any():
        kind = what or str(dtype)
        fail_on_rows(
            df, bad, file, column, f"values that are not {kind}, e.g. {_examples(base.filter(bad))}"
        )
    return df.with_columns(out.alias(column))


def check_not_null(df: pl.DataFrame, columns: Sequence[str], file: str | Path) -> None:
    """Ids and other required values are never null."""
    for c in columns:
        if df.get_column(c).null_count():
            fail_on_rows(
                df, df.get_column(c).is_null(), file, c, "null or empty values in a required column"
            )


def check_ids(df: pl.DataFrame, columns: Sequence[str], file: str | Path) -> None:
    """Id columns hold values of the id domain (``schema.ID_DOMAIN``): integers >= 0.

    Run after the cast to Int64 (a value that is no integer at all fails that cast), so
    this catches the negative ids (``-1`` is a common "unknown" code) the cast lets by.
    """
    for c in columns:
        negative = df.get_column(c) < 0
        if negative.any():
            examples = df.get_column(c).filter(negative).head(MAX_LINES_SHOWN).to_list()
            fail_on_rows(df, negative, file, c, f"negative ids, e.g. {examples}; {ID_DOMAIN}")


def check_unique(df: pl.DataFrame, key: Sequence[str], file: str | Path) -> None:
    """No two rows share ``key`` (the whole row when key is all columns).

    Rows are hashed first and compared exactly only where hashes collide, so checking
    tens of millions of wide rows costs one 64-bit column, not a copy of the table.
    """
    key = [c for c in key if c != LINE]
    hashes = df.select(pl.struct(key).hash().alias("h")).get_column("h")
    candidates = hashes.is_duplicated()
    if not candidates.any():
        return
    subset = df.filter(candidates)
    dup = subset.select(key).is_duplicated()
    if dup.any():
        example = subset.filter(dup).select(key).head(1).to_dicts()[0]
        column = ",".join(key) if len(key) <= 4 else None
        fail_on_rows(subset, dup, file, column, f"duplicate rows on {list(key)}, e.g. {example}")


def conform(df: pl.DataFrame, schema: TableSchema, file: str | Path) -> pl.DataFrame:
    """Return ``df`` in the canonical column order and types, or raise.

    Missing nullable columns are added as nulls; missing required columns, values of the
    wrong type, nulls in required columns, duplicate keys (or fully duplicate rows for
    tables without a key) and empty tables are errors. Extra columns are kept only where
    the schema allows them. Id columns must hold ids (``check_ids``). A ``LINE`` column
    is used to name lines in errors and dropped from the result.
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
    check_ids(df, [c.name for c in schema.columns if c.is_id], file)
    extras = [c for c in df.columns if c not in schema.names and c != LINE]
    if extras and not schema.extra_columns_allowed:
        raise DataValidationError(
            file, extras[0], f"unexpected column(s) {extras} in {schema.name}", df.height
        )
    check_unique(df, schema.key or schema.names + extras, file)
    return df.select(schema.names + extras)
