"""The co-consumption correlation matrix, computed out of core with DuckDB.

Wu et al., "Zero-Shot Heterogeneous Transfer Learning from Recommender Systems to Cold-Start
Search Retrieval" (CIKM 2020), section 3.1: for each user, sort the consumed items by time;
every consecutive pair p→q with p≠q adds 1 to M[p, q]. Each seed row keeps its top K
neighbours by count (ties: the smaller item id), and the kept matrix carries the paper's
row and column weights r_p ∝ 1/√nnz(row p), c_q ∝ 1/√nnz(column q), each rescaled to
mean 1.0 over the non-empty rows / columns.

Order within a user is (timestamp, item_id): events with equal timestamps are ordered by
item id, which makes the result deterministic but means their "order" carries no signal.
The stats report how many consecutive pairs share a timestamp or lie within 60 s, so a user
can judge how much to trust the order, and the window mode (``CoocConfig.mode="window"``)
counts every pair within W positions and/or T seconds, optionally in both directions or in
both directions only for equal timestamps.

Outputs, written into ``out_dir``:
    matrix.parquet      row Int32, col Int32, count Int64, row_weight Float64,
                        col_weight Float64; sorted by (row, count desc, col)
    item_index.parquet  index Int32 (0..n-1), item_id Int64, events Int64 (its number of
                        events after filtering); every item of the filtered interactions,
                        sorted by item_id, so index order is item-id order
    stats.json          the numbers shown in the asset metadata (see ``build_cooc``)

Plan, chosen for speed (see bench/bench_cooc.py): one window pass sorts each user's events
and feeds a hash aggregate of (p, q) counts directly (no sorted copy is materialized);
the same aggregate, through a second grouping set, counts the per-step statistics. Top-K
is a window over the aggregate restricted to the rows with more than K neighbours, ids are
mapped to dense indices only on the kept pairs, and Parquet is written with COPY.
Everything runs under DuckDB's ``memory_limit`` and spills to ``temp_dir`` beyond it.

No SQL text is built from a value: file paths and numbers (K, window sizes) reach DuckDB as
prepared parameters (``$top_k``), and the input files as a relation made by DuckDB's own
``read_parquet``, so a path or setting cannot change what a statement does. The only text
spliced into SQL is this module's own fragments (column lists, the step flags).
"""

from __future__ import annotations

import glob
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recflow.artifacts import Artifact
from recflow.cooc_stats import NEAR_SECONDS, matrix_stats, step_stats
from recflow.data.validate import DataValidationError
from recflow.store import atomic_path, write_json

MATRIX_FILE = "matrix.parquet"
ITEM_INDEX_FILE = "item_index.parquet"
STATS_FILE = "stats.json"


REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")


@dataclass(frozen=True)
class CoocConfig:
    """How pairs are counted and how the computation is resourced.

    Window mode counts every ordered pair of one user's events i before j (in (timestamp,
    item_id) order) with j - i <= ``window_positions`` and timestamp_j - timestamp_i <=
    ``window_seconds``; when both are given both must hold, when one is None it does not
    constrain. ``symmetric`` also adds q→p for every such pair; ``ties_unordered`` adds
    q→p only for pairs with equal timestamps (implied by ``symmetric``). Self pairs (p = q)
    never count. Window mode with ``window_positions=1`` and no other option equals the
    consecutive mode.
    """

    top_k: int = 250
    mode: Literal["consecutive", "window"] = "consecutive"
    window_positions: int | None = None
    window_seconds: int | None = None
    symmetric: bool = False
    ties_unordered: bool = False
    positive_only: bool = True
    """Drop events whose label is not null and <= 0 (unclicked impressions, zero ratings)."""
    memory_limit: str = "1GB"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.mode not in ("consecutive", "window"):
            raise ValueError(f"mode must be 'consecutive' or 'window', got {self.mode!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        window_options = {
            "window_positions": self.window_positions,
            "window_seconds": self.window_seconds,
            "symmetric": self.symmetric or None,
            "ties_unordered": self.ties_unordered or None,
        }
        if self.mode == "consecutive":
            used = [k for k, v in window_options.items() if v is not None]
            if used:
                raise ValueError(f"{used} only apply to mode='window'")
            return
        if self.window_positions is None and self.window_seconds is None:
            raise ValueError("mode='window' needs window_positions and/or window_seconds")
        if self.window_positions is not None and self.window_positions < 1:
            raise ValueError(f"window_positions must be >= 1, got {self.window_positions}")
        if self.window_seconds is not None and self.window_seconds < 0:
            raise ValueError(f"window_seconds must be >= 0, got {self.window_seconds}")


@dataclass(frozen=True)
class CoocResult:
    """Where ``build_cooc`` wrote the matrix, and its statistics."""

    matrix_path: Path
    """Parquet: row, col (Int32 indices into the item index), count (Int64), row_weight,
    col_weight (Float64); sorted by (row, count desc, col)."""
    item_index_path: Path
    """Parquet: index (Int32, 0..n-1), item_id (Int64), events (Int64); sorted by item_id."""
    stats: dict[str, Any]
    """Also written as stats.json beside the Parquet files."""


@dataclass(frozen=True)
class CoocArtifact(Artifact):
    """A stored co-consumption matrix (``path``: its version folder): the Parquet files
    ``CoocResult`` describes and the top-K it was cut at."""

    matrix: str
    item_index: str
    top_k: int


def build_cooc(
    interactions: str | Path | Sequence[str | Path],
    out_dir: Path,
    config: CoocConfig = CoocConfig(),  # noqa: B008 (frozen, so a shared default is safe)
    temp_dir: Path | None = None,
) -> CoocResult:
    """Count co-consumed item pairs in canonical interactions and write the top-K matrix.

    ``interactions`` is one Parquet file, a directory of them, a glob pattern, or a list of
    files (e.g. one per day); only user_id, item_id, timestamp and (when present) label are
    read. ``out_dir`` should be a fresh folder (a store version); each file is written to a
    temporary name and renamed. ``temp_dir`` is where DuckDB spills (default: the system
    temp folder); a private subfolder is created there and removed afterwards.

    Stats: events (after filtering), users, items, nnz, rows / cols (non-empty), pairs_total
    (sum of counts before top-K), distinct_pairs (nnz before top-K), mean / max neighbours
    per row, rows_at_top_k, neighbour_histogram (bucket edges and counts), and over the
    consecutive pairs with p≠q: consecutive_pairs, share_equal_timestamp, share_within_60s.
    """
    started = time.perf_counter()
    files = resolve_interaction_files(interactions)
    has_label = validate_interaction_files(files)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    with _duckdb(config, temp_dir) as con:
        _create_events_view(con, files, has_label, config)
        lap = time.perf_counter()
        if config.mode == "consecutive":
            _count_consecutive_pairs(con)
        else:
            _count_window_pairs(con, config)
        seconds["count_pairs"] = time.perf_counter() - lap

        step_stats = _step_stats(con)
        if step_stats["events"] == 0:
            raise DataValidationError(
                _describe(files),
                "label" if has_label and config.positive_only else None,
                "no events left after dropping unclicked impressions (label <= 0)"
                if has_label and config.positive_only
                else "no events",
                0,
            )

        lap = time.perf_counter()
        _keep_top_k(con, config.top_k)
        seconds["top_k_and_weights"] = time.perf_counter() - lap

        lap = time.perf_counter()
        matrix_path = out_dir / MATRIX_FILE
        item_index_path = out_dir / ITEM_INDEX_FILE
        _copy_to_parquet(con, _ITEM_INDEX_OUT_SQL, item_index_path)
        _copy_to_parquet(con, _MATRIX_OUT_SQL, matrix_path)
        seconds["write"] = time.perf_counter() - lap

        stats = {**step_stats, **_matrix_stats(con, config.top_k)}

    seconds["total"] = time.perf_counter() - started
    stats["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    stats["config"] = asdict(config)
    stats["inputs"] = [str(f) for f in files]
    write_json(stats, out_dir / STATS_FILE)
    return CoocResult(matrix_path=matrix_path, item_index_path=item_index_path, stats=stats)


def read_cooc(out_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Load a written matrix and its item index: ``(matrix, item_index)``."""
    out_dir = Path(out_dir)
    return pl.read_parquet(out_dir / MATRIX_FILE, glob=False), pl.read_parquet(
        out_dir / ITEM_INDEX_FILE, glob=False
    )


def resolve_interaction_files(interactions: str | Path | Sequence[str | Path]) -> list[Path]:
    """Expand a file, a directory (its *.parquet), a glob pattern or a list into files.

    A path that exists is taken as it is, so a folder named with ``[``, ``*`` or ``?`` (a
    store root the user chose) is not mistaken for a pattern.
    """
    items = [interactions] if isinstance(interactions, str | Path) else list(interactions)
    files: list[Path] = []
    for item in items:
        text = str(item)
        if Path(item).is_dir():
            matched = sorted(Path(item).glob("*.parquet"))
            if not matched:
                raise FileNotFoundError(f"no *.parquet interaction files in {text}")
            files.extend(matched)
        elif Path(item).is_file():
            files.append(Path(item))
        elif any(ch in text for ch in "*?["):
            matched = sorted(Path(p) for p in glob.glob(text))
            if not matched:
                raise FileNotFoundError(f"no interaction files match {text!r}")
            files.extend(matched)
        else:
            raise FileNotFoundError(f"interaction file not found: {text}")
    if not files:
        raise FileNotFoundError("no interaction files given")
    return files


def validate_interaction_files(files: list[Path]) -> bool:
    """Check schemas and id nulls from Parquet metadata; return whether any file has a label.

    Nulls are counted from row-group statistics where the writer stored them, and by a scan
    of the file otherwise.
    """
    has_label = False
    for f in files:
        try:
            meta = pq.ParquetFile(f).metadata
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataValidationError(f, None, f"not a readable Parquet file ({exc})", 0) from exc
        schema = meta.schema.to_arrow_schema()
        missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
        if missing:
            raise DataValidationError(
                f,
                missing[0],
                f"missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
                f"(+ optional label), found {schema.names}",
                meta.num_rows,
            )
        for name in REQUIRED_COLUMNS:
            dtype = schema.field(name).type
            if not pa.types.is_integer(dtype):
                raise DataValidationError(
                    f, name, f"expected an integer column, found {dtype}", meta.num_rows
                )
        if "label" in schema.names:
            dtype = schema.field("label").type
            if not (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)):
                raise DataValidationError(
                    f, "label", f"expected a numeric column, found {dtype}", meta.num_rows
                )
            has_label = True
        for name, nulls in _null_counts(f, meta, REQUIRED_COLUMNS).items():
            if nulls:
                raise DataValidationError(f, name, "null values in a required id column", nulls)
    return has_label


def _null_counts(f: Path, meta: pq.FileMetaData, columns: Sequence[str]) -> dict[str, int]:
    positions = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    counts = dict.fromkeys(columns, 0)
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        for name in columns:
            stats = group.column(positions[name]).statistics
            if stats is None or not stats.has_null_count:
                return _scan_null_counts(f, columns)
            counts[name] += stats.null_count
    return counts


def _scan_null_counts(f: Path, columns: Sequence[str]) -> dict[str, int]:
    selects = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in columns)
    with duckdb.connect() as con:
        row = con.execute(f"SELECT {selects} FROM read_parquet($file)", {"file": str(f)}).fetchone()
    assert row is not None
    return dict(zip(columns, (int(v) for v in row), strict=True))


@contextmanager
def _duckdb(config: CoocConfig, temp_dir: Path | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB that spills to a private folder, removed afterwards."""
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
    spill = Path(tempfile.mkdtemp(prefix="recflow-cooc-", dir=temp_dir))
    settings: dict[str, Any] = {
        "memory_limit": config.memory_limit,
        "temp_directory": str(spill),
        "preserve_insertion_order": False,
    }
    if config.threads is not None:
        settings["threads"] = config.threads
    con = duckdb.connect(":memory:", config=settings)
    con.execute("SET enable_progress_bar = false")
    try:
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _describe(files: list[Path]) -> str:
    if len(files) <= 3:
        return ", ".join(str(f) for f in files)
    return f"{files[0]} and {len(files) - 1} more files"


def _create_events_view(
    con: duckdb.DuckDBPyConnection, files: list[Path], has_label: bool, config: CoocConfig
) -> None:
    """The view ``events``: the filtered user_id, item_id, timestamp of ``files``.

    A view cannot take prepared parameters, so the files enter as a relation (DuckDB's
    ``read_parquet`` called from Python, lazy like the SQL table function) named
    ``source_events``, and the view is plain SQL over it.
    """
    source = con.read_parquet([str(f) for f in files], union_by_name=True)
    source.create_view("source_events")
    where = "WHERE label IS NULL OR label > 0" if has_label and config.positive_only else ""
    con.execute(
        "CREATE TEMP VIEW events AS SELECT user_id::BIGINT AS user_id, "
        f"item_id::BIGINT AS item_id, timestamp::BIGINT AS timestamp FROM source_events {where}"
    )


# Each event as a step to its user's next event in (timestamp, item_id) order:
# p = its item, q = the next item (NULL for the user's last event), dt = seconds to it.
_STEPS_SELECT = (
    "user_id, timestamp, item_id AS p, lead(item_id) OVER w AS q, "
    "lead(timestamp) OVER w - timestamp AS dt"
)
_STEPS_WINDOW = "WINDOW w AS (PARTITION BY user_id ORDER BY timestamp, item_id)"
_STEP_FLAGS = (
    f"q IS NULL AS is_last, p = q AS is_self, dt = 0 AS is_tie, dt <= {NEAR_SECONDS} AS is_near"
)


def _step_counts_sql(source: str, item_keys: str) -> str:
    """Group the steps twice in one pass: by ``item_keys`` (counts per item or per pair) and
    by the step flags (how many steps are last / self / tied / near, for the stats)."""
    return f"""
        CREATE TEMP TABLE step_counts AS
        SELECT {item_keys}, is_last, is_self, is_tie, is_near,
               GROUPING(p) AS flag_set, count(*) AS c
        FROM (SELECT p, q, {_STEP_FLAGS} FROM ({source}))
        GROUP BY GROUPING SETS (({item_keys}), (is_last, is_self, is_tie, is_near))
    """


def _count_consecutive_pairs(con: duckdb.DuckDBPyConnection) -> None:
    """M[p, q] = number of consecutive steps p→q with p≠q, straight from the window pass."""
    steps = f"SELECT {_STEPS_SELECT} FROM events {_STEPS_WINDOW}"
    con.execute(_step_counts_sql(steps, "p, q"))
    con.execute("""
        CREATE TEMP VIEW item_events AS
        SELECT p AS item_id, sum(c)::BIGINT AS events FROM step_counts
        WHERE flag_set = 0 GROUP BY p
    """)
    con.execute("""
        CREATE TEMP VIEW pair_counts AS
        SELECT p, q, c FROM step_counts WHERE flag_set = 0 AND q IS NOT NULL AND p <> q
    """)


def _count_window_pairs(con: duckdb.DuckDBPyConnection, config: CoocConfig) -> None:
    """M[p, q] = number of pairs i before j of one user within the window, with p≠q.

    With ``window_positions`` W, each event lists the next W events of its user (a ROWS
    frame) and pairs beyond ``window_seconds`` are filtered out. With only
    ``window_seconds`` T, each event gets the last position ``window_end`` whose timestamp is
    within T, and the pairs (pos, pos2) for pos2 in (pos, window_end] are joined back to the
    events by (user, position). Both cost time linear in events + pairs.
    """
    positions, seconds = config.window_positions, config.window_seconds
    # rank() is the position of the first event with this timestamp and the RANGE frame
    # counts the events with timestamp in [t, t + T], so this is the last such position.
    window_end = (
        ", rank() OVER wt + count(*) OVER "
        "(wt RANGE BETWEEN CURRENT ROW AND $seconds FOLLOWING) - 1 AS window_end"
        if positions is None and seconds is not None
        else ""
    )
    con.execute(
        f"""
        CREATE TEMP TABLE steps AS
        SELECT {_STEPS_SELECT}, row_number() OVER w AS pos {window_end}
        FROM events {_STEPS_WINDOW}, wt AS (PARTITION BY user_id ORDER BY timestamp)
        """,
        {"seconds": seconds} if window_end else {},
    )
    con.execute(_step_counts_sql("SELECT p, q, dt FROM steps", "p"))
    con.execute("""
        CREATE TEMP VIEW item_events AS
        SELECT p AS item_id, c::BIGINT AS events FROM step_counts WHERE flag_set = 0
    """)

    # every pair (i before j) within the window as (p, q, dt = seconds from i to j)
    params: dict[str, int] = {}
    if positions is not None:
        within_seconds = "WHERE dt <= $seconds" if seconds is not None else ""
        pairs = f"""
            SELECT p, x.q AS q, x.t - timestamp AS dt FROM (
                SELECT p, timestamp, unnest(list(struct_pack(q := p, t := timestamp)) OVER (
                    PARTITION BY user_id ORDER BY pos
                    ROWS BETWEEN 1 FOLLOWING AND $positions FOLLOWING)) AS x
                FROM steps)
            {within_seconds}
        """
        params["positions"] = positions
        if seconds is not None:
            params["seconds"] = seconds
    else:
        pairs = """
            SELECT a.p, b.p AS q, b.timestamp - a.timestamp AS dt
            FROM (SELECT user_id, p, timestamp, unnest(range(pos + 1, window_end + 1)) AS pos2
                  FROM steps) AS a
            JOIN steps AS b ON b.user_id = a.user_id AND b.pos = a.pos2
        """
    reverse = "TRUE" if config.symmetric else "dt = 0" if config.ties_unordered else "FALSE"
    # Each pair adds p→q, and q→p too where ``reverse`` holds (both lists unnest in step).
    con.execute(
        f"""
        CREATE TEMP TABLE pair_counts AS
        SELECT p, q, count(*) AS c FROM (
            SELECT unnest(CASE WHEN {reverse} THEN [p, q] ELSE [p] END) AS p,
                   unnest(CASE WHEN {reverse} THEN [q, p] ELSE [q] END) AS q
            FROM ({pairs}) WHERE p <> q
        )
        GROUP BY p, q
        """,
        params,
    )


def _step_stats(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    row = con.execute("""
        SELECT coalesce(sum(c), 0),
               coalesce(sum(c) FILTER (WHERE is_last), 0),
               coalesce(sum(c) FILTER (WHERE is_self), 0),
               coalesce(sum(c) FILTER (WHERE NOT is_self), 0),
               coalesce(sum(c) FILTER (WHERE NOT is_self AND is_tie), 0),
               coalesce(sum(c) FILTER (WHERE NOT is_self AND is_near), 0)
        FROM step_counts WHERE flag_set = 1
    """).fetchone()
    assert row is not None
    events, users, self_steps, consecutive, tied, near = (int(v) for v in row)
    return step_stats(
        events=events,
        users=users,
        self_steps=self_steps,
        consecutive=consecutive,
        tied=tied,
        near=near,
    )


def _keep_top_k(con: duckdb.DuckDBPyConnection, top_k: int) -> None:
    """Top-K neighbours per row, the dense item index, and the row/column weights.

    Only rows with more than K neighbours are ranked; the others are kept whole.
    """
    k = {"k": top_k}
    con.execute(
        "CREATE TEMP TABLE row_nnz AS "
        "SELECT p, count(*) AS nnz, count(*) > $k AS ranked FROM pair_counts GROUP BY p",
        k,
    )
    con.execute(
        """
        CREATE TEMP TABLE ranked_rows AS
        SELECT p, q, c FROM pair_counts WHERE p IN (SELECT p FROM row_nnz WHERE ranked)
        QUALIFY row_number() OVER (PARTITION BY p ORDER BY c DESC, q) <= $k
        """,
        k,
    )
    con.execute("""
        CREATE TEMP VIEW kept AS
        SELECT p, q, c FROM pair_counts WHERE p IN (SELECT p FROM row_nnz WHERE NOT ranked)
        UNION ALL
        SELECT p, q, c FROM ranked_rows
    """)
    con.execute("""
        CREATE TEMP TABLE item_index AS
        SELECT (row_number() OVER (ORDER BY item_id) - 1)::INTEGER AS index, item_id, events
        FROM item_events
    """)
    # r_p = nnz(row p)^(-1/2) / mean over non-empty rows of the same; nnz of the kept row
    con.execute(
        """
        CREATE TEMP TABLE row_weights AS
        SELECT i.item_id, i.index, least(n.nnz, $k) AS nnz,
               pow(least(n.nnz, $k), -0.5) / avg(pow(least(n.nnz, $k), -0.5)) OVER () AS weight
        FROM row_nnz AS n JOIN item_index AS i ON i.item_id = n.p
        """,
        k,
    )
    # c_q = nnz(column q)^(-1/2) / mean over non-empty columns of the same
    con.execute("""
        CREATE TEMP TABLE col_weights AS
        SELECT i.item_id, i.index, n.nnz, pow(n.nnz, -0.5) / avg(pow(n.nnz, -0.5)) OVER () AS weight
        FROM (SELECT q, count(*) AS nnz FROM kept GROUP BY q) AS n
        JOIN item_index AS i ON i.item_id = n.q
    """)


_ITEM_INDEX_OUT_SQL = "SELECT index, item_id, events FROM item_index ORDER BY index"

_MATRIX_OUT_SQL = """
    SELECT r.index AS row, c.index AS col, k.c::BIGINT AS count,
           r.weight::DOUBLE AS row_weight, c.weight::DOUBLE AS col_weight
    FROM kept AS k
    JOIN row_weights AS r ON r.item_id = k.p
    JOIN col_weights AS c ON c.item_id = k.q
    ORDER BY row, count DESC, col
"""


def _copy_to_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    with atomic_path(path) as tmp:
        con.execute(f"COPY ({query}) TO $path (FORMAT parquet)", {"path": str(tmp)})


def _matrix_stats(con: duckdb.DuckDBPyConnection, top_k: int) -> dict[str, Any]:
    items = con.execute("SELECT count(*) FROM item_index").fetchone()
    before = con.execute("SELECT count(*), coalesce(sum(c), 0) FROM pair_counts").fetchone()
    cols = con.execute("SELECT count(*) FROM col_weights").fetchone()
    assert items is not None and before is not None and cols is not None
    by_nnz = con.execute("SELECT nnz, count(*) FROM row_weights GROUP BY nnz").fetchall()
    return matrix_stats(
        items=int(items[0]),
        cols=int(cols[0]),
        distinct_pairs=int(before[0]),
        pairs_total=int(before[1]),
        rows_by_nnz={int(k): int(n) for k, n in by_nnz},
        top_k=top_k,
    )
