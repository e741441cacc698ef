"""The co-consumption matrix on Apache Spark: ``recflow.cooc``'s definition, past one machine.

Same inputs, same definition, same outputs as ``recflow.cooc.build_cooc`` (DuckDB):
``matrix.parquet`` (row, col, count, row_weight, col_weight; sorted by row, count desc,
col), ``item_index.parquet`` and ``stats.json`` in ``out_dir``, equal cell by cell
(``tests/test_cooc_spark.py``). Use it when the log no longer fits one machine's disk or
time budget; on one machine DuckDB is faster (no JVM, no shuffle files).

How the steps map onto Spark: a window partitioned by user and ordered by (timestamp,
item_id) numbers each user's events; every pair (i before j) of the window is a join of
(user, position) against (user, position + offset), which Spark shuffles by user; counts
are a ``groupBy(p, q)``; top-K is ``row_number`` partitioned by the seed row; the weights
are two aggregates over the kept pairs. Only the item index (one row per item) passes
through a single partition.

Output files are written by the executors into ``spark_temp_dir`` (default: a folder
beside ``out_dir``; on a cluster, a path every executor and the driver can reach) and then
streamed, part by part in sort order, into the single Parquet file downstream readers
expect; the driver never holds the matrix in memory.

pyspark is an optional extra (``pip install -e '.[spark]'``, Java 17+ on the PATH); this
module imports it only when a function is called.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from recflow.cooc import (
    ITEM_INDEX_FILE,
    MATRIX_FILE,
    STATS_FILE,
    CoocConfig,
    CoocResult,
    resolve_interaction_files,
    validate_interaction_files,
)
from recflow.cooc_stats import NEAR_SECONDS, matrix_stats, step_stats
from recflow.data.validate import DataValidationError
from recflow.store import atomic_path, write_json

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class SparkSettings:
    """Where Spark runs. ``master``: ``local[2]`` (this machine, 2 threads) or a cluster
    URL (``spark://host:7077``, ``yarn``, ``k8s://...``). ``shuffle_partitions``: Spark's
    ``spark.sql.shuffle.partitions`` (its default 200 is slow for a local run; on a
    cluster use 2-3 per executor core). ``spark_temp_dir``: where executors write the
    output parts (must be shared storage on a cluster). ``conf``: any other Spark
    settings, passed as they are."""

    master: str = "local[2]"
    shuffle_partitions: int = 8
    spark_temp_dir: str | None = None
    conf: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.shuffle_partitions < 1:
            raise ValueError(f"shuffle_partitions must be >= 1, got {self.shuffle_partitions}")


@contextmanager
def spark_session(settings: SparkSettings = SparkSettings()) -> Iterator[SparkSession]:  # noqa: B008
    """A Spark session for one computation; stopped afterwards when this call made it.

    A local session binds its driver to 127.0.0.1 and runs no web UI.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the optional extra is not installed
        raise ImportError(
            "the spark engine needs pyspark: pip install -e '.[spark]' (and Java 17+)"
        ) from exc
    builder = (
        SparkSession.builder.master(settings.master)
        .appName("recflow-cooc")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if settings.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the JVM's own lookup too
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    for key, value in settings.conf:
        builder = builder.config(key, value)
    active = SparkSession.getActiveSession()
    spark = builder.getOrCreate()
    if active is None:
        spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()


def build_cooc_spark(
    interactions: str | Path | Sequence[str | Path],
    out_dir: Path,
    config: CoocConfig = CoocConfig(),  # noqa: B008 (frozen)
    settings: SparkSettings = SparkSettings(),  # noqa: B008 (frozen)
    spark: SparkSession | None = None,
) -> CoocResult:
    """``recflow.cooc.build_cooc`` computed by Spark (see the module docstring).

    The input files are validated (schema, integer ids, no null ids) before Spark starts.
    ``spark``: an existing session to use (left running); else one is made from
    ``settings`` and stopped afterwards. ``config.memory_limit`` and ``config.threads``
    are DuckDB settings and are ignored here (Spark's own settings size the work).
    """
    started = time.perf_counter()
    files = resolve_interaction_files(interactions)
    has_label = validate_interaction_files(files)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temp_root = Path(settings.spark_temp_dir) if settings.spark_temp_dir else out_dir.parent
    scratch = temp_root / f".spark-cooc-{uuid.uuid4().hex[:8]}"
    seconds: dict[str, float] = {}
    try:
        if spark is None:
            with spark_session(settings) as session:
                stats = _compute(session, files, has_label, config, out_dir, scratch, seconds)
        else:
            stats = _compute(spark, files, has_label, config, out_dir, scratch, seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds["total"] = time.perf_counter() - started
    stats["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    stats["config"] = asdict(config)
    stats["engine"] = {"name": "spark", "master": settings.master}
    stats["inputs"] = [str(f) for f in files]
    write_json(stats, out_dir / STATS_FILE)
    return CoocResult(
        matrix_path=out_dir / MATRIX_FILE, item_index_path=out_dir / ITEM_INDEX_FILE, stats=stats
    )


def _compute(
    spark: SparkSession,
    files: list[Path],
    has_label: bool,
    config: CoocConfig,
    out_dir: Path,
    scratch: Path,
    seconds: dict[str, float],
) -> dict[str, Any]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    lap = time.perf_counter()
    events = _read_events(spark, files, has_label, config)
    by_user = Window.partitionBy("user_id").orderBy("timestamp", "item_id")
    steps = events.select(
        "user_id",
        "timestamp",
        F.col("item_id").alias("p"),
        F.lead("item_id").over(by_user).alias("q"),
        (F.lead("timestamp").over(by_user) - F.col("timestamp")).alias("dt"),
        F.row_number().over(by_user).alias("pos"),
    ).cache()
    step_stats = _step_stats(steps)
    if step_stats["events"] == 0:
        raise DataValidationError(
            ", ".join(str(f) for f in files[:3]),
            "label" if has_label and config.positive_only else None,
            "no events left after dropping unclicked impressions (label <= 0)"
            if has_label and config.positive_only
            else "no events",
            0,
        )
    if config.mode == "consecutive":
        pairs = steps.where(F.col("q").isNotNull()).select("p", "q")
    else:
        pairs = _window_pairs(steps, config)
    pair_counts = (
        pairs.where(F.col("p") != F.col("q")).groupBy("p", "q").agg(F.count("*").alias("c"))
    ).cache()
    seconds["count_pairs"] = time.perf_counter() - lap

    lap = time.perf_counter()
    by_row = Window.partitionBy("p").orderBy(F.col("c").desc(), F.col("q"))
    kept = (
        pair_counts.withColumn("rank", F.row_number().over(by_row))
        .where(F.col("rank") <= config.top_k)
        .drop("rank")
        .cache()
    )
    item_events = events.groupBy("item_id").agg(F.count("*").alias("events"))
    item_index = item_events.select(
        (F.row_number().over(Window.orderBy("item_id")) - 1).cast("int").alias("index"),
        F.col("item_id"),
        F.col("events"),
    ).cache()
    row_nnz = kept.groupBy("p").agg(F.count("*").alias("nnz")).cache()  # weights and stats
    row_weights = _mean_one_weights(row_nnz, "p")
    col_weights = _mean_one_weights(kept.groupBy("q").agg(F.count("*").alias("nnz")), "q")
    index = item_index.select("item_id", "index")
    matrix = (
        kept.join(row_weights, "p")
        .join(col_weights, "q")
        .join(index.withColumnRenamed("item_id", "p").withColumnRenamed("index", "row"), "p")
        .join(index.withColumnRenamed("item_id", "q").withColumnRenamed("index", "col"), "q")
        .select(
            F.col("row").cast("int"),
            F.col("col").cast("int"),
            F.col("c").cast("long").alias("count"),
            F.col("row_weight").cast("double"),
            F.col("col_weight").cast("double"),
        )
        .orderBy(F.col("row"), F.col("count").desc(), F.col("col"))
    )
    seconds["top_k_and_weights"] = time.perf_counter() - lap

    lap = time.perf_counter()
    _write_sorted(
        item_index.orderBy("index"),
        scratch / "item_index",
        out_dir / ITEM_INDEX_FILE,
        ITEM_INDEX_SCHEMA,
    )
    _write_sorted(matrix, scratch / "matrix", out_dir / MATRIX_FILE, MATRIX_SCHEMA)
    seconds["write"] = time.perf_counter() - lap

    totals = pair_counts.agg(F.count("*"), F.coalesce(F.sum("c"), F.lit(0))).first()
    by_nnz = row_nnz.groupBy("nnz").count().collect()
    stats = {
        **step_stats,
        **matrix_stats(
            items=item_index.count(),
            cols=col_weights.count(),
            distinct_pairs=int(totals[0]),
            pairs_total=int(totals[1]),
            rows_by_nnz={int(r["nnz"]): int(r["count"]) for r in by_nnz},
            top_k=config.top_k,
        ),
    }
    for frame in (steps, pair_counts, kept, row_nnz, item_index):
        frame.unpersist()
    return stats


def _read_events(
    spark: SparkSession, files: list[Path], has_label: bool, config: CoocConfig
) -> DataFrame:
    """The filtered (user_id, item_id, timestamp) of ``files``, as 64-bit integers."""
    from pyspark.sql import functions as F

    frames = []
    for f in files:
        # one read per file: files may differ in whether they carry a label column
        df = spark.read.parquet(str(f))
        if has_label and config.positive_only and "label" in df.columns:
            df = df.where(F.col("label").isNull() | (F.col("label") > 0))
        frames.append(
            df.select(
                F.col("user_id").cast("long"),
                F.col("item_id").cast("long"),
                F.col("timestamp").cast("long"),
            )
        )
    events = frames[0]
    for frame in frames[1:]:
        events = events.unionByName(frame)
    return events


def _step_stats(steps: DataFrame) -> dict[str, Any]:
    """The per-step numbers of ``recflow.cooc`` (events, users, consecutive pairs, ties)."""
    from pyspark.sql import functions as F

    moved = F.col("q").isNotNull() & (F.col("p") != F.col("q"))
    row = steps.agg(
        F.count("*"),
        F.count(F.when(F.col("q").isNull(), 1)),
        F.count(F.when(F.col("p") == F.col("q"), 1)),
        F.count(F.when(moved, 1)),
        F.count(F.when(moved & (F.col("dt") == 0), 1)),
        F.count(F.when(moved & (F.col("dt") <= NEAR_SECONDS), 1)),
    ).first()
    events, users, self_steps, consecutive, tied, near = (int(v) for v in row)
    return step_stats(
        events=events,
        users=users,
        self_steps=self_steps,
        consecutive=consecutive,
        tied=tied,
        near=near,
    )


def _window_pairs(steps: DataFrame, config: CoocConfig) -> DataFrame:
    """Every (p, q) of window mode, q→p added where ``symmetric`` / ``ties_unordered``.

    Each event i pairs with the events at positions i+1 .. end of its user: end = i + W
    with ``window_positions`` W, else the last position whose timestamp is within
    ``window_seconds`` T (rank of the first event at this timestamp, plus the number of
    events in [t, t + T], minus 1); pairs more than T seconds apart are then dropped.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    positions, seconds = config.window_positions, config.window_seconds
    if positions is not None:
        end = F.col("pos") + F.lit(positions)
        starts = steps.withColumn("end", end)
    else:
        by_time = Window.partitionBy("user_id").orderBy("timestamp")
        within = by_time.rangeBetween(0, int(seconds))
        starts = steps.withColumn(
            "end", F.rank().over(by_time) + F.count("*").over(within) - F.lit(1)
        )
    starts = starts.where(F.col("end") > F.col("pos")).select(
        "user_id",
        F.col("p").alias("a"),
        F.col("timestamp").alias("t"),
        F.explode(F.sequence(F.col("pos") + 1, F.col("end"))).alias("pos2"),
    )
    targets = steps.select(
        "user_id", F.col("pos").alias("pos2"), F.col("p").alias("b"), F.col("timestamp").alias("t2")
    )
    pairs = starts.join(targets, ["user_id", "pos2"]).select(
        F.col("a").alias("p"), F.col("b").alias("q"), (F.col("t2") - F.col("t")).alias("dt")
    )
    if seconds is not None:
        pairs = pairs.where(F.col("dt") <= seconds)
    forward = pairs.select("p", "q")
    if config.symmetric:
        backward = pairs.select(F.col("q").alias("p"), F.col("p").alias("q"))
    elif config.ties_unordered:
        backward = pairs.where(F.col("dt") == 0).select(
            F.col("q").alias("p"), F.col("p").alias("q")
        )
    else:
        return forward
    return forward.unionByName(backward)


def _mean_one_weights(nnz: DataFrame, key: str) -> DataFrame:
    """(key, <row|col>_weight): nnz^(-1/2) divided by its mean over the non-empty keys."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    name = "row_weight" if key == "p" else "col_weight"
    raw = F.pow(F.col("nnz").cast("double"), -0.5)
    return nnz.select(key, (raw / F.avg(raw).over(Window.partitionBy())).alias(name))


MATRIX_SCHEMA = pa.schema(
    [
        ("row", pa.int32()),
        ("col", pa.int32()),
        ("count", pa.int64()),
        ("row_weight", pa.float64()),
        ("col_weight", pa.float64()),
    ]
)
ITEM_INDEX_SCHEMA = pa.schema(
    [("index", pa.int32()), ("item_id", pa.int64()), ("events", pa.int64())]
)
"""The column types ``recflow.cooc`` writes; Spark's parts are cast to them."""


def _write_sorted(frame: DataFrame, parts_dir: Path, path: Path, schema: pa.Schema) -> None:
    """Write ``frame`` (already ordered) as one Parquet file: Spark writes ordered part
    files, which are streamed batch by batch, in part order, into ``path`` (atomically)."""
    frame.write.mode("overwrite").parquet(str(parts_dir))
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part in sorted(parts_dir.glob("part-*.parquet")):
            for batch in pq.ParquetFile(part).iter_batches():
                writer.write_table(pa.Table.from_batches([batch]).select(schema.names).cast(schema))
