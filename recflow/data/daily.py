"""Interactions that arrive as one file per day, and the dataset they extend.

A daily feed is a folder of files named ``YYYY-MM-DD.csv`` (or ``.parquet``), one per
UTC day, each holding that day's events in the canonical interaction columns
(``user_id,item_id,timestamp`` required; ``label``, ``event``, ``entity`` and any extra
columns optional). A day without events is a file with only the header. The feed
extends a base dataset: its items, users and queries, and its interactions before the
feed's first day, plus every delivered day in order::

    feed dataset = base tables  +  base interactions with timestamp < start
                                +  day(start) + day(start + 1) + ... + day(last)

Days must be contiguous: a missing day blocks the days after it (``missing_days``), so
a late file can never be silently skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from recflow.data.dataset import CanonicalDataset, CanonicalTables
from recflow.data.raw import CSV, TIMESTAMP, content_hash, read_delimited
from recflow.data.schema import INTERACTIONS
from recflow.data.validate import (
    LINE,
    DataValidationError,
    cast_column,
    check_ids,
    check_not_null,
    check_unique,
    fail_on_rows,
    require_columns,
)
from recflow.store import atomic_path, read_json, write_json

DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(csv|parquet)$")
REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")


@dataclass(frozen=True)
class DailyFeed:
    """A dataset that grows by one file per day on top of a base dataset."""

    name: str  # asset key prefix of the feed, e.g. "ml_small_daily"
    base: str  # asset key prefix of the base dataset, e.g. "ml_small"
    start: date  # first day delivered as a file; earlier events come from the base
    end: date | None = None  # last day (inclusive) of a finished feed; None = open-ended
    description: str = ""


def day_bounds(day: date) -> tuple[int, int]:
    """[start, end) of a UTC day in unix seconds."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return start, start + 86_400


def list_day_files(folder: str | Path) -> dict[date, Path]:
    """The day files in ``folder`` by day. Other files are ignored; a folder that does not
    exist yet holds no days; two files for one day (csv and parquet) are an error."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    days: dict[date, Path] = {}
    for path in sorted(folder.iterdir()):
        match = DAY_FILE.match(path.name)
        if not match or not path.is_file():
            continue
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError as err:
            raise DataValidationError(
                path, None, f"file name is not a valid date: {err}", 0
            ) from err
        if day in days:
            raise DataValidationError(
                path, None, f"two files for {day}: {days[day].name} and {path.name}", 0
            )
        days[day] = path
    return days


def missing_days(start: date, through: date, present: Sequence[date]) -> list[date]:
    """Days in [start, through] that are not in ``present``."""
    have = set(present)
    n = (through - start).days + 1
    return [start + timedelta(days=i) for i in range(n) if start + timedelta(days=i) not in have]


def _read_text_columns(path: Path) -> pl.DataFrame:
    """A CSV day file as text with ``LINE``; a Parquet one as it is (errors name rows)."""
    if path.suffix == ".parquet":
        return pl.read_parquet(path, glob=False)
    return read_delimited(path, CSV, required=REQUIRED_COLUMNS, allow_no_rows=True)


def read_day_file(path: str | Path, day: date) -> pl.DataFrame:
    """One day's events in canonical column types; every event must fall inside ``day``.

    Returns the required columns, the optional canonical ones (null where absent), any
    extra columns and, for a CSV file, ``LINE`` (so ``check_day_references`` can name
    lines; it drops the column). A header-only file is a day without events (zero rows).
    """
    path = Path(path)
    df = _read_text_columns(path)
    require_columns(df, REQUIRED_COLUMNS, path)
    for col in INTERACTIONS.columns:
        if col.name not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=col.dtype).alias(col.name))
        else:
            what = TIMESTAMP if col.name == "timestamp" else None
            df = cast_column(df, col.name, col.dtype, path, what=what)
    check_not_null(df, REQUIRED_COLUMNS, path)
    check_ids(df, ["user_id", "item_id"], path)
    check_unique(df, df.columns, path)
    lo, hi = day_bounds(day)
    outside = ~pl.col("timestamp").is_between(lo, hi, closed="left")
    if df.select(outside.any()).item():
        first = df.filter(outside).get_column("timestamp").head(3).to_list()
        fail_on_rows(
            df,
            outside,
            path,
            "timestamp",
            f"events outside {day} (UTC, [{lo}, {hi})), e.g. {first}",
        )
    extras = [c for c in df.columns if c not in INTERACTIONS.names and c != LINE]
    return df.select(INTERACTIONS.names + extras + ([LINE] if LINE in df.columns else []))


def check_day_references(
    events: pl.DataFrame, path: str | Path, items: pl.DataFrame, users: pl.DataFrame
) -> pl.DataFrame:
    """Every event names a known item and user; a missing ``entity`` is taken from the
    item. Returns the events with ``entity`` filled (and without ``LINE``)."""
    for column, table, what in (("item_id", items, "items"), ("user_id", users, "users")):
        known = table.get_column(column).implode()
        unknown = ~pl.col(column).is_in(known)
        if events.select(unknown.any()).item():
            ex = events.filter(unknown).get_column(column).head(3).to_list()
            fail_on_rows(
                events, unknown, path, column, f"ids not in the base dataset's {what}, e.g. {ex}"
            )
    entity = items.select("item_id", pl.col("entity").alias("_item_entity"))
    return (
        events.join(entity, on="item_id", how="left")
        .with_columns(pl.coalesce("entity", "_item_entity").alias("entity"))
        .drop("_item_entity", LINE, strict=False)
    )


def combine_days(
    base: CanonicalDataset, name: str, start: date, day_parts: Sequence[Path]
) -> CanonicalTables:
    """The feed's canonical tables: the base dataset up to ``start`` plus the day parts
    (Parquet files written from ``read_day_file``), in the order given."""
    lo, _ = day_bounds(start)
    history = base.scan_interactions().filter(pl.col("timestamp") < lo).collect()
    parts = [pl.read_parquet(p, glob=False) for p in day_parts]
    interactions = pl.concat([history, *parts], how="diagonal_relaxed")
    interactions = interactions.select(
        INTERACTIONS.names + [c for c in interactions.columns if c not in INTERACTIONS.names]
    )
    queries = base.queries()
    return CanonicalTables(
        name=name,
        interactions=interactions,
        items=base.items(),
        users=base.users(),
        queries=queries,
        info={
            "base": str(base.root),
            "feed_start": start.isoformat(),
            "days": len(day_parts),
            "history_events": history.height,
        },
    )


class FeedOrderError(ValueError):
    """Days of a feed asked for out of order, or a day's file is missing: days land in
    order, so the message says which range to ingest instead."""


def ingested_days(parts: str | Path) -> dict[date, str]:
    """Days already ingested into ``parts`` (one ``<day>.parquet`` + ``<day>.json``
    receipt each), with the content hash of the file each came from."""
    parts = Path(parts)
    if not parts.is_dir():
        return {}
    return {
        date.fromisoformat(receipt.stem): read_json(receipt)["content_hash"]
        for receipt in parts.glob("*.json")
    }


def run_ingest_days(
    feed: DailyFeed,
    days: Sequence[date],
    files: Mapping[date, Path],
    parts: str | Path,
    base: CanonicalDataset,
    on_progress: Callable[[str], None] | None = None,
) -> list[dict[str, object]]:
    """Ingest ``days`` (sorted) of ``feed`` from their ``files`` into ``parts``: each day's
    file read and checked (``read_day_file``, ``check_day_references``), written as
    ``<day>.parquet`` with a ``<day>.json`` receipt naming its source and content hash.

    The day before the first must be ingested already (days land in order), and every
    day needs a file (a day without events is a header-only file): ``FeedOrderError``
    otherwise; bad content raises ``DataValidationError``. Returns one row per day:
    ``{"day", "events"}``."""
    parts = Path(parts)
    before = days[0] - timedelta(days=1)
    if days[0] > feed.start and not (parts / f"{before}.parquet").exists():
        gaps = missing_days(feed.start, before, list(ingested_days(parts)))
        raise FeedOrderError(
            f"{feed.name}: {before} has not been ingested, and days land in order; "
            f"ingest {gaps[0]} .. {days[-1]} (a backfill of that range) instead"
        )
    items, users = base.items(), base.users()
    rows: list[dict[str, object]] = []
    for day in days:
        path = files.get(day)
        if path is None:
            raise FeedOrderError(
                f"{feed.name}: no file for {day} (expected {day}.csv or {day}.parquet; a "
                "day without events is a file with only the header)"
            )
        events = check_day_references(read_day_file(path, day), path, items, users)
        with atomic_path(parts / f"{day}.parquet") as tmp:
            events.write_parquet(tmp)
        receipt = {"source": str(path), "content_hash": content_hash([path]), "rows": events.height}
        write_json(receipt, parts / f"{day}.json")
        if on_progress is not None:
            on_progress(f"{feed.name}: ingested {day} ({events.height} events)")
        rows.append({"day": day.isoformat(), "events": events.height})
    return rows


def run_feed_dataset(
    feed: DailyFeed, base: CanonicalDataset, parts: str | Path
) -> tuple[CanonicalTables, list[date]]:
    """The feed's canonical tables from ``base`` and every day ingested into ``parts``
    (``combine_days``), and those days; ``FeedOrderError`` when a day before the last
    ingested one is missing."""
    parts = Path(parts)
    ingested = sorted(ingested_days(parts))
    if ingested:
        gaps = missing_days(feed.start, ingested[-1], ingested)
        if gaps:
            raise FeedOrderError(
                f"{feed.name}: days {[d.isoformat() for d in gaps[:5]]} are missing "
                f"before {ingested[-1]}; ingest them first (a backfill of the range)"
            )
    paths = [parts / f"{d}.parquet" for d in ingested]
    return combine_days(base, feed.name, feed.start, paths), ingested


def write_day_files(
    interactions: pl.DataFrame, folder: str | Path, start: date, end: date
) -> list[Path]:
    """Split canonical ``interactions`` into one CSV per UTC day in [start, end] (a day
    without events gets a header-only file). Used to replay a dataset as a daily feed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = [c for c in ("user_id", "item_id", "timestamp", "label") if c in interactions.columns]
    written = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        lo, hi = day_bounds(day)
        rows = interactions.filter(pl.col("timestamp").is_between(lo, hi, closed="left"))
        path = folder / f"{day.isoformat()}.csv"
        with atomic_path(path) as tmp:
            rows.select(columns).sort("timestamp", "user_id", "item_id").write_csv(tmp)
        written.append(path)
    return written
