"""Reading raw delimited files so that every problem becomes one clear error.

Raw files are read with every column as text, checked line by line (field counts,
header names), and only then cast through ``recflow.data.validate.cast_column``, so a
bad value is counted and reported with its file, first line numbers, column and row count
instead of failing deep inside a reader. Each row keeps its line number in the file
(``validate.LINE``) until the loader selects its canonical columns. ``content_hash`` gives the data version of a set of raw files.

Handles what polars' CSV reader does not: multi-character separators (MovieLens 1M's
``::``), encodings other than UTF-8 (MovieLens 100K/1M are Latin-1), and exact counts of
lines with the wrong number of fields (polars fills short lines with nulls silently).
The whole file is decoded in memory: fine for MovieLens-sized files; the Tenrec loader
streams its huge files with ``polars.scan_csv`` instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recflow.data.validate import (
    LINE,
    MAX_LINES_SHOWN,
    DataValidationError,
    cast_column,
    check_ids,
    check_not_null,
    check_unique,
    fail_on_rows,
)

TIMESTAMP = "unix timestamps (integer seconds)"
"""How a timestamp column is described in errors (``cast_column``'s ``what``)."""

_HASH_CHUNK_BYTES = 1 << 20
_QUOTED_FIELD = r'"[^"]*"'  # a quoted field; a doubled "" inside is two adjacent matches


@dataclass(frozen=True)
class DelimitedFormat:
    """How a raw delimited text file is laid out.

    ``columns`` names the fields of a file without a header row (and must then be set);
    ``quoted`` means fields may be wrapped in double quotes (CSV); files whose separator
    never needs quoting (tab, pipe, ``::``) are split literally, so a ``"`` stays text.
    """

    separator: str = ","
    has_header: bool = True
    columns: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    quoted: bool = True

    def __post_init__(self) -> None:
        if not self.separator:
            raise ValueError("separator must not be empty")
        if not self.has_header and not self.columns:
            raise ValueError("a file without a header needs its column names")
        if self.quoted and len(self.separator) != 1:
            raise ValueError("quoted fields need a one-character separator")


CSV = DelimitedFormat()
"""Comma-separated with a header row and optional double quotes, UTF-8."""


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """(line, byte within the line), both 1-based, of byte ``offset`` of ``data``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


def _decode(path: Path, encoding: str) -> str:
    """The text of ``path``; undecodable bytes and NUL bytes (a binary or UTF-16 file, a
    truncated copy) are errors naming the line and byte."""
    if not path.is_file():
        raise DataValidationError(path, None, "file not found", 0)
    data = path.read_bytes()
    nul = data.find(b"\x00")
    if nul >= 0:
        with_nul = [i + 1 for i, text in enumerate(data.split(b"\n")) if b"\x00" in text]
        line, byte = _position(data, nul)
        raise DataValidationError(
            path,
            None,
            f"NUL byte at byte {byte} of line {line}: not a {encoding} text file "
            "(binary, UTF-16, or padded by a failed copy?)",
            len(with_nul),
            lines=with_nul[:MAX_LINES_SHOWN],
            more_lines=len(with_nul) > MAX_LINES_SHOWN,
        )
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line, byte = _position(data, err.start)
        raise DataValidationError(
            path,
            None,
            f"not valid {encoding} text at byte {byte} of line {line} "
            f"({data[err.start : err.start + 4]!r}; expected encoding {encoding})",
            1,
            lines=[line],
        ) from err


def _split_header(line: str, fmt: DelimitedFormat) -> list[str]:
    if fmt.quoted:
        return [name.strip() for name in next(csv.reader([line], delimiter=fmt.separator))]
    return [name.strip() for name in line.split(fmt.separator)]


def _field_counts(lines: pl.Series, fmt: DelimitedFormat) -> pl.Series:
    """Fields on each line: separators outside quoted fields, plus one."""
    text = lines.str.replace_all(_QUOTED_FIELD, "") if fmt.quoted else lines
    return text.str.count_matches(fmt.separator, literal=True) + 1


def read_delimited(
    path: str | Path,
    fmt: DelimitedFormat = CSV,
    required: Sequence[str] = (),
    *,
    allow_no_rows: bool = False,
) -> pl.DataFrame:
    """Read ``path`` with every column as text (empty fields are null), plus ``LINE``.

    Raises ``DataValidationError`` for a missing or undecodable file, a file without data
    rows, lines with the wrong number of fields (counted; blank lines are skipped), and
    ``required`` columns missing from the header (naming expected and found). Every error
    about lines names the first offending line numbers. ``allow_no_rows``: a file with a
    header and no data rows gives an empty frame instead (a day without events).
    """
    path = Path(path)
    text = _decode(path, fmt.encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = pl.Series("line", text.split("\n"), dtype=pl.String).str.strip_suffix("\r")
    numbered = pl.DataFrame(
        {"line": lines, "line_no": pl.int_range(1, lines.len() + 1, eager=True)}
    )
    numbered = numbered.filter(pl.col("line").str.strip_chars() != "")

    if fmt.has_header:
        if numbered.height == 0:
            raise DataValidationError(path, None, "file is empty (no header row)", 0)
        header_line = int(numbered.item(0, "line_no"))
        names = _split_header(numbered.item(0, "line"), fmt)
        numbered = numbered.slice(1)
    else:
        header_line = None
        names = list(fmt.columns or ())
    if numbered.height == 0 and not (allow_no_rows and fmt.has_header):
        raise DataValidationError(path, None, "file has no data rows", 0)
    header_at = [header_line] if header_line is not None else []
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataValidationError(
            path,
            twice[0],
            f"header names column(s) {twice} twice: {names}",
            numbered.height,
            lines=header_at,
        )
    _check_header(path, names, required, numbered.height, header_at)

    if numbered.height == 0:
        return pl.DataFrame(schema={**dict.fromkeys(names, pl.String()), LINE: pl.Int64()})
    if header_line is not None:
        header_text = lines[header_line - 1]
        repeated = numbered.get_column("line") == header_text
        if repeated.any():
            fail_on_rows(
                numbered.rename({"line_no": LINE}),
                repeated,
                path,
                None,
                f"the header repeated as data (files joined together?): {header_text[:80]!r}",
            )

    if fmt.quoted:
        # fields are quoted whole and inner quotes doubled: every line has an even count
        odd = numbered.get_column("line").str.count_matches('"', literal=True) % 2 == 1
        if odd.any():
            first = numbered.filter(odd).item(0, "line")
            fail_on_rows(
                numbered.rename({"line_no": LINE}),
                odd,
                path,
                None,
                "malformed quoting: an odd number of double quotes (a quote never closed?): "
                f"{first[:80]!r}",
            )

    counts = _field_counts(numbered.get_column("line"), fmt)
    wrong = counts != len(names)
    if wrong.any():
        first = numbered.filter(wrong).row(0, named=True)
        is_last = first["line_no"] == numbered.get_column("line_no").max()
        last = " (the last line: a truncated file?)" if is_last else ""
        found = counts.filter(wrong)[0]
        lone = " (a different separator?)" if found == 1 and len(names) > 1 else ""
        numbered = numbered.rename({"line_no": LINE})
        fail_on_rows(
            numbered,
            wrong,
            path,
            None,
            f"wrong number of fields: expected {len(names)} separated by {fmt.separator!r}, "
            f"line {first['line_no']} has {found}{lone}{last}: {first['line'][:80]!r}",
        )

    body = numbered.get_column("line")
    if fmt.quoted and bool(body.str.contains('"', literal=True).any()):
        try:
            df = pl.read_csv(
                io.BytesIO("\n".join(body.to_list()).encode("utf-8")),
                has_header=False,
                new_columns=names,
                separator=fmt.separator,
                quote_char='"',
                infer_schema=False,
            )
        except pl.exceptions.PolarsError as err:
            raise DataValidationError(
                path, None, f"malformed quoting: {str(err).splitlines()[0]}", body.len()
            ) from err
        if df.height != body.len():  # an unclosed quote swallowed line breaks
            raise DataValidationError(
                path,
                None,
                f"malformed quoting: {body.len()} lines parsed as {df.height} rows",
                abs(body.len() - df.height),
            )
    else:
        fields = body.str.split(fmt.separator, literal=True)
        df = pl.DataFrame({name: fields.list.get(i) for i, name in enumerate(names)})
    df = df.with_columns(pl.all().replace("", None))
    return df.with_columns(numbered.get_column("line_no").cast(pl.Int64()).alias(LINE))


def _check_header(
    path: Path, found: Sequence[str], expected: Sequence[str], rows: int, lines: list[int]
) -> None:
    """Every expected column is present; a near miss (case, spaces) is pointed out."""
    missing = [c for c in expected if c not in found]
    if not missing:
        return
    by_folded = {f.lower().replace("_", "").replace(" ", ""): f for f in found}
    hints = [
        f"{m!r} looks like {by_folded[key]!r}"
        for m in missing
        if (key := m.lower().replace("_", "").replace(" ", "")) in by_folded
    ]
    hint = f" ({'; '.join(hints)})" if hints else ""
    separator = (
        " (a different separator?)" if len(found) == 1 and len(expected) > 1 and lines else ""
    )
    raise DataValidationError(
        path,
        missing[0],
        f"missing column(s) {missing}{hint}{separator}; expected {list(expected)}, "
        f"found {list(found)}",
        rows,
        lines=lines,
    )


def read_table(
    path: str | Path,
    fmt: DelimitedFormat,
    dtypes: Mapping[str, pl.DataType],
    *,
    not_null: Sequence[str] = (),
    unique: Sequence[str] | None = None,
    what: Mapping[str, str] | None = None,
    ids: Sequence[str] = (),
) -> pl.DataFrame:
    """Read the ``dtypes`` columns of ``path`` (and ``LINE``), cast and checked.

    ``not_null`` columns may hold no null or empty value; ``unique`` is a key no two rows
    may share (``()`` for whole duplicate rows); ``what`` describes a column's expected
    values in errors (e.g. ``TIMESTAMP``); ``ids`` columns hold ids (non-negative
    integers). Other columns of the file are dropped.
    """
    df = read_delimited(path, fmt, required=list(dtypes)).select(*dtypes, LINE)
    for name, dtype in dtypes.items():
        df = cast_column(df, name, dtype, path, what=(what or {}).get(name))
    check_not_null(df, not_null, path)
    check_ids(df, ids, path)
    if unique is not None:
        check_unique(df, list(unique) or list(dtypes), path)
    return df


def check_allowed_values(
    df: pl.DataFrame, column: str, allowed: Collection[object], file: str | Path
) -> None:
    """Every non-null value of ``column`` is one of ``allowed`` (codes, flags)."""
    values = df.get_column(column)
    bad = values.is_not_null() & ~values.is_in(pl.Series(list(allowed)).implode())
    if bad.any():
        examples = values.filter(bad).head(MAX_LINES_SHOWN).to_list()
        fail_on_rows(
            df,
            bad,
            file,
            column,
            f"values outside the allowed set {sorted(allowed)}, e.g. {examples}",
        )


def content_hash(paths: Sequence[str | Path]) -> str:
    """SHA-256 over the names and bytes of ``paths``: the data version of a raw source.

    Files are taken in name order and streamed in chunks, so the hash does not depend on
    the order given or the folder they sit in, and large files never sit in memory.
    """
    digest = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: (p.name, str(p))):
        if not path.is_file():
            raise DataValidationError(path, None, "file not found", 0)
        name = path.name.encode("utf-8")
        # name length, name, byte length: the boundaries between files are unambiguous
        digest.update(len(name).to_bytes(8, "big") + name)
        digest.update(path.stat().st_size.to_bytes(8, "big"))
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()
