"""Tenrec loader: Tencent's QK/QB video and article feedback logs into canonical tables.

Tenrec (Yuan et al., NeurIPS 2022 Datasets and Benchmarks) publishes one CSV per scenario
(``QK-video.csv``, ``QK-article.csv``, ``QB-video.csv``, ``QB-article.csv``), each with a
header row; the columns read here are::

    user_id,item_id,click,follow,like,share,video_category,watching_times,gender,age

Every row is one exposure of an item to a user, clicked or not. How it is mapped:

- interactions: ``label`` = click (0/1), ``event`` = "impression", ``entity`` from the file
  name (the part after the last "-", lower-cased: "QK-video.csv" -> "video"); ``follow``,
  ``like``, ``share`` and ``watching_times`` are kept as extra Int64 columns.
- ``timestamp``: Tenrec has no time, so it is the row's position (0, 1, 2, ...) within
  that user's rows of that file, in file order. Positions restart in each file: two
  files' logs are not interleaved in time.
- item ids: the files number their items independently, so ids may collide. The i-th file
  (0-based, in ``files`` order) has its ids shifted by ``i * item_id_stride`` (10^9 by
  default), a fixed rule so a sample and the full data agree; the original id is kept as
  the items' ``source_item_id``. A source id outside [0, stride) is an error.
- items: ``category`` (Int64) is the item's ``video_category``; ``title``/``genres`` null.
- users: ``gender`` (the code as text) and ``age`` (the code); where a user's rows
  disagree, the most frequent non-null value wins, ties going to the smallest.

Values are integers; ``\\N`` (how the export writes a missing value, e.g. a video's
``video_category``) and empty fields are null, and an integral float such as ``1.0`` (how
QK-article writes ``click`` and its action flags) is read as that integer.

Only ``user_id``, ``item_id`` and ``click`` are required. Any other of the columns above
that a file lacks (article files may have no ``video_category`` or ``watching_times``) is
null for that file's rows; columns not listed above are ignored.

The files are large (QK-video has about 120 million rows), so they are scanned lazily:
``max_users`` keeps only the users with the smallest ``max_users`` ids (over all files)
before anything is materialized, for a sample that loads in seconds. Without it the whole
data set is materialized in memory (tens of GB for QK-video). Lines with too many fields
are counted and reported; a short line is reported only where it leaves a required column
empty (polars fills the missing trailing fields with nulls). Errors name the first
offending line numbers: a data row's line is its row number + 2 (the header is line 1; a
blank line is a row of nulls, so it counts too; Tenrec's fields are integers, never quoted
across lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recflow.data.dataset import CanonicalTables
from recflow.data.raw import check_allowed_values
from recflow.data.validate import (
    LINE,
    MAX_LINES_SHOWN,
    DataValidationError,
    check_ids,
    check_not_null,
    fail_on_rows,
)

COLUMNS = (
    "user_id",
    "item_id",
    "click",
    "follow",
    "like",
    "share",
    "video_category",
    "watching_times",
    "gender",
    "age",
)
"""The Tenrec columns the loader reads, in the published order."""

REQUIRED = ("user_id", "item_id", "click")
EXTRA_EVENT_COLUMNS = ("follow", "like", "share", "watching_times")
ITEM_ID_STRIDE = 10**9
EVENT = "impression"
NULL = "\\N"
"""How the Tenrec export writes a missing value (read as null)."""
_ROW = "_row"


def _integer(column: str, strict: bool = True) -> pl.Expr:
    """A text column as Int64; an integral float ("1.0", as QK-article writes its flags)
    is that integer. Anything else fails the cast (``strict``) or becomes null."""
    text = pl.col(column).str.strip_chars().str.strip_suffix(".0")
    return text.cast(pl.Int64(), strict=strict)


def entity_of(path: Path) -> str:
    """The entity type of a Tenrec file's items: "QK-video.csv" gives "video"."""
    return path.stem.rsplit("-", 1)[-1].lower()


def _count_rows(path: Path) -> int:
    return int(pl.scan_csv(path, glob=False, infer_schema=False).select(pl.len()).collect().item())


def _header(path: Path) -> list[str]:
    """The file's column names; a missing or empty file, an undecodable or binary header, a
    column named twice, or a missing column is an error."""
    if not path.is_file():
        raise DataValidationError(path, None, "file not found", 0)
    with path.open("rb") as f:
        first = f.readline()
    if not first.strip():
        raise DataValidationError(path, None, "file is empty (no header row)", 0)
    if b"\x00" in first:
        raise DataValidationError(
            path, None, "NUL bytes in the header: not a UTF-8 CSV (UTF-16 or binary?)", 0, lines=[1]
        )
    try:
        header = first.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise DataValidationError(
            path, None, f"header is not valid UTF-8 at byte {err.start + 1}", 0, lines=[1]
        ) from err
    raw_names = [n.strip().strip('"') for n in header.split(",")]
    if len(set(raw_names)) != len(raw_names):  # polars would rename the second "x_duplicated_0"
        twice = sorted({n for n in raw_names if raw_names.count(n) > 1})
        raise DataValidationError(
            path, twice[0], f"header names column(s) {twice} twice: {raw_names}", 0, lines=[1]
        )
    names = pl.scan_csv(path, glob=False, infer_schema=False).collect_schema().names()
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        separator = " (a different separator?)" if len(names) == 1 else ""
        raise DataValidationError(
            path,
            missing[0],
            f"missing column(s) {missing}{separator}; expected at least {list(REQUIRED)} "
            f"(optional {[c for c in COLUMNS if c not in REQUIRED]}), found {names}",
            _count_rows(path),
            lines=[1],
        )
    try:
        has_rows = pl.scan_csv(path, glob=False, infer_schema=False).head(1).collect().height > 0
    except pl.exceptions.PolarsError:
        has_rows = True  # a malformed first row; reading the file reports it
    if not has_rows:
        raise DataValidationError(path, None, "file has no data rows", 0)
    return names


def _diagnose(path: Path, n_fields: int, present: Sequence[str]) -> DataValidationError | None:
    """Why reading ``path`` failed: lines with too many fields, or values not integers."""
    lines = (
        pl.scan_lines(path, glob=False)
        .with_row_index(LINE, offset=1)
        .slice(1)
        .filter(pl.col("line").str.strip_chars() != "")
    )
    fields = pl.col("line").str.count_matches(",", literal=True) + 1
    wrong = lines.filter(fields > n_fields)
    n_wrong = int(wrong.select(pl.len()).collect().item())
    if n_wrong:
        first = wrong.head(MAX_LINES_SHOWN).collect()
        return DataValidationError(
            path,
            None,
            f"lines with more fields than the {n_fields} in the header, "
            f"e.g. {first.item(0, 'line')[:80]!r}",
            n_wrong,
            lines=first.get_column(LINE).to_list(),
        )
    text = (
        pl.scan_csv(path, glob=False, infer_schema=False, null_values=[NULL])
        .with_row_index(LINE, offset=2)
        .select(LINE, *present)
    )
    for column in present:
        value = pl.col(column).str.strip_chars()
        bad = (value != "") & _integer(column, strict=False).is_null()
        n_bad = int(text.select(bad.sum()).collect().item())
        if n_bad:
            first = text.filter(bad).head(MAX_LINES_SHOWN).collect()
            examples = first.get_column(column).to_list()
            return DataValidationError(
                path,
                column,
                f"values that are not integers, e.g. {examples}",
                n_bad,
                lines=first.get_column(LINE).to_list(),
            )
    return None


def _scan(path: Path, present: Sequence[str]) -> pl.LazyFrame:
    """Every column of ``COLUMNS`` as Int64 (null where the file lacks it), in file order,
    with the row's number in the file and its line (``LINE``: row + 2, after the header)."""
    return (
        pl.scan_csv(path, glob=False, infer_schema=False, null_values=[NULL])
        .select(_integer(c) for c in present)
        .with_row_index(_ROW)
        .with_columns(
            (pl.col(_ROW).cast(pl.Int64()) + 2).alias(LINE),
            *(pl.lit(None, dtype=pl.Int64()).alias(c) for c in COLUMNS if c not in present),
        )
    )


def _collect(lf: pl.LazyFrame, path: Path, names: Sequence[str]) -> pl.DataFrame:
    """Run a query over ``path``; a parse failure becomes an error saying what and how many."""
    try:
        return lf.collect(engine="streaming")
    except pl.exceptions.PolarsError as err:
        diagnosis = _diagnose(path, len(names), [c for c in COLUMNS if c in names])
        if diagnosis is None:
            raise DataValidationError(path, None, f"unreadable: {err}", 0) from err
        raise diagnosis from err


def _sample_users(paths: Sequence[Path], max_users: int) -> pl.Series:
    """The ``max_users`` smallest user ids over all files."""
    ids = []
    for path in paths:
        names = _header(path)
        lf = _scan(path, [c for c in COLUMNS if c in names]).select("user_id").unique()
        ids.append(_collect(lf, path, names).get_column("user_id"))
    return pl.concat(ids).drop_nulls().unique().sort().head(max_users)


def _read_file(
    path: Path, index: int, users: pl.Series | None, item_id_stride: int
) -> pl.DataFrame:
    """One file's rows as typed interactions, with ``source_item_id`` and ``category``."""
    names = _header(path)
    lf = _scan(path, [c for c in COLUMNS if c in names])
    if users is not None:
        lf = lf.filter(pl.col("user_id").is_in(users.implode()))
    # position of the row in its user's log, in file order: Tenrec's stand-in for time
    lf = lf.with_columns(
        (pl.col(_ROW).rank("ordinal").over("user_id").cast(pl.Int64()) - 1).alias("timestamp")
    )
    df = _collect(lf, path, names)

    check_not_null(df, REQUIRED, path)
    check_ids(df, ["user_id"], path)
    check_allowed_values(df, "click", (0, 1), path)
    out_of_range = (df.get_column("item_id") < 0) | (df.get_column("item_id") >= item_id_stride)
    if out_of_range.any():
        examples = df.filter(out_of_range).get_column("item_id").head(3).to_list()
        fail_on_rows(
            df,
            out_of_range,
            path,
            "item_id",
            f"ids outside [0, item_id_stride={item_id_stride}), e.g. {examples}; "
            "ids are non-negative, and below the stride (else raise item_id_stride)",
        )
    return df.select(
        "user_id",
        (pl.col("item_id") + index * item_id_stride).alias("item_id"),
        "timestamp",
        pl.col("click").cast(pl.Float64()).alias("label"),
        pl.lit(EVENT).alias("event"),
        pl.lit(entity_of(path)).alias("entity"),
        *EXTRA_EVENT_COLUMNS,
        pl.col("item_id").alias("source_item_id"),
        pl.col("video_category").alias("category"),
        "gender",
        "age",
    )


def _most_frequent(df: pl.DataFrame, key: str, value: str) -> pl.DataFrame:
    """Per ``key``, the most frequent non-null ``value`` (ties: the smallest); keys whose
    values are all null get null."""
    counts = df.select(key, value).drop_nulls(value).group_by(key, value).len("_n")
    best = counts.group_by(key).agg(
        pl.col(value).sort_by("_n", value, descending=[True, False]).first()
    )
    return df.select(key).unique().join(best, on=key, how="left")


def load_tenrec(
    directory: str | Path,
    files: Sequence[str] = ("QK-video.csv", "QK-article.csv"),
    max_users: int | None = None,
    item_id_stride: int = ITEM_ID_STRIDE,
) -> CanonicalTables:
    """Load Tenrec ``files`` from ``directory`` (see the module docstring for the mapping).

    ``max_users`` keeps the users with the smallest ids over all files, with every row of
    theirs, so a sample's positions and item ids equal those of the full data.
    """
    if not files:
        raise ValueError("load_tenrec needs at least one file")
    if max_users is not None and max_users < 1:
        raise ValueError(f"max_users must be positive, got {max_users}")
    directory = Path(directory)
    paths = [directory / f for f in files]
    users = None
    if max_users is not None:
        users = _sample_users(paths, max_users)
    rows = pl.concat(
        [_read_file(p, i, users, item_id_stride) for i, p in enumerate(paths)], how="vertical"
    )
    if rows.height == 0:
        raise DataValidationError(directory, None, "no rows for the sampled users", 0)

    interactions = rows.select(
        "user_id", "item_id", "timestamp", "label", "event", "entity", *EXTRA_EVENT_COLUMNS
    )
    item_first = rows.group_by("item_id").agg(pl.first("entity"), pl.first("source_item_id"))
    items = (
        item_first.join(_most_frequent(rows, "item_id", "category"), on="item_id")
        .with_columns(
            pl.lit(None, dtype=pl.String()).alias("title"),
            pl.lit(None, dtype=pl.String()).alias("genres"),
        )
        .select("item_id", "entity", "title", "genres", "category", "source_item_id")
        .sort("item_id")
    )
    users_table = (
        _most_frequent(rows, "user_id", "gender")
        .join(_most_frequent(rows, "user_id", "age"), on="user_id")
        .with_columns(
            pl.col("gender").cast(pl.String()),
            pl.lit(None, dtype=pl.String()).alias("occupation"),
        )
        .select("user_id", "gender", "age", "occupation")
        .sort("user_id")
    )
    return CanonicalTables(
        name="tenrec",
        interactions=interactions,
        items=items,
        users=users_table,
        info={
            "source": "Tenrec",
            "directory": str(directory),
            "files": list(files),
            "item_id_offsets": {f: i * item_id_stride for i, f in enumerate(files)},
            "max_users": max_users,
        },
    )
