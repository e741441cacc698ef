"""Daily feed files: naming, reading and checking one day, splitting a log into days and
putting a base dataset and its days back together."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from recflow.data.daily import (
    DailyFeed,
    FeedOrderError,
    check_day_references,
    combine_days,
    day_bounds,
    ingested_days,
    list_day_files,
    missing_days,
    read_day_file,
    run_feed_dataset,
    run_ingest_days,
    write_day_files,
)
from recflow.data.dataset import CanonicalTables, write_dataset
from recflow.data.raw import content_hash
from recflow.data.validate import LINE, DataValidationError

D1 = date(2020, 1, 1)
T1 = 1_577_836_800  # 2020-01-01 00:00:00 UTC


def test_day_bounds_are_utc_days() -> None:
    assert day_bounds(D1) == (T1, T1 + 86_400)
    assert day_bounds(date(2020, 3, 1))[0] - day_bounds(date(2020, 2, 28))[0] == 2 * 86_400


def test_list_day_files(tmp_path: Path) -> None:
    assert list_day_files(tmp_path / "not-yet") == {}
    (tmp_path / "2020-01-02.csv").write_text("user_id,item_id,timestamp\n")
    (tmp_path / "2020-01-01.parquet").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "2020-01-03.csv.tmp").write_text("x")
    assert list(list_day_files(tmp_path)) == [date(2020, 1, 1), date(2020, 1, 2)]

    (tmp_path / "2020-01-02.parquet").write_bytes(b"")
    with pytest.raises(DataValidationError, match="two files for 2020-01-02"):
        list_day_files(tmp_path)
    (tmp_path / "2020-01-02.parquet").unlink()
    (tmp_path / "2020-02-30.csv").write_text("user_id,item_id,timestamp\n")
    with pytest.raises(DataValidationError, match="not a valid date"):
        list_day_files(tmp_path)


def test_missing_days() -> None:
    present = [date(2020, 1, 1), date(2020, 1, 3)]
    assert missing_days(D1, date(2020, 1, 4), present) == [date(2020, 1, 2), date(2020, 1, 4)]
    assert missing_days(D1, D1, present) == []


def test_read_day_file(tmp_path: Path) -> None:
    path = tmp_path / "2020-01-01.csv"
    path.write_text(
        f"user_id,item_id,timestamp,label,device\n1,10,{T1},4.5,tv\n2,11,{T1 + 86_399},,\n"
    )
    df = read_day_file(path, D1)
    assert df.columns == [
        *("user_id", "item_id", "timestamp", "label", "event", "entity", "device"),
        LINE,
    ]
    assert df.get_column(LINE).to_list() == [2, 3]
    assert df.get_column("timestamp").to_list() == [T1, T1 + 86_399]
    assert df.get_column("label").to_list() == [4.5, None]
    assert df.schema["user_id"] == pl.Int64

    path.write_text("user_id,item_id,timestamp\n")
    assert read_day_file(path, D1).height == 0  # a day without events

    path.write_text(f"user_id,item_id,timestamp\n1,10,{T1 - 1}\n1,11,{T1 + 86_400}\n1,12,{T1}\n")
    with pytest.raises(DataValidationError) as err:
        read_day_file(path, D1)
    assert (err.value.file, err.value.column, err.value.rows) == (str(path), "timestamp", 2)
    assert err.value.lines == [2, 3]
    assert "outside 2020-01-01" in str(err.value)

    path.write_text(f"user,item_id,timestamp\n1,10,{T1}\n")
    with pytest.raises(DataValidationError, match="missing column"):
        read_day_file(path, D1)
    path.write_text(f"user_id,item_id,timestamp\nx,10,{T1}\n1,10,{T1}\n")
    with pytest.raises(DataValidationError) as err:
        read_day_file(path, D1)
    assert (err.value.column, err.value.rows, err.value.lines) == ("user_id", 1, [2])
    path.write_text(f"user_id,item_id,timestamp\n1,10,{T1}\n1,-10,{T1}\n")
    with pytest.raises(DataValidationError, match="negative ids") as err:
        read_day_file(path, D1)
    assert (err.value.column, err.value.rows, err.value.lines) == ("item_id", 1, [3])
    path.write_text(f"user_id,item_id,timestamp\n1,10,{T1}\n1,10,{T1}\n")
    with pytest.raises(DataValidationError, match="duplicate"):
        read_day_file(path, D1)
    path.write_text("")
    with pytest.raises(DataValidationError, match="file is empty"):
        read_day_file(path, D1)


def test_references_are_checked_and_entity_filled(tmp_path: Path) -> None:
    items = pl.DataFrame({"item_id": [10, 11], "entity": ["movie", "show"]})
    users = pl.DataFrame({"user_id": [1, 2]})
    path = tmp_path / "2020-01-01.csv"
    path.write_text(f"user_id,item_id,timestamp,entity\n1,10,{T1},\n2,11,{T1},clip\n")
    events = check_day_references(read_day_file(path, D1), path, items, users)
    assert events.get_column("entity").to_list() == ["movie", "clip"]
    assert LINE not in events.columns

    path.write_text(f"user_id,item_id,timestamp\n1,10,{T1}\n3,12,{T1}\n4,99,{T1}\n")
    with pytest.raises(DataValidationError) as err:
        check_day_references(read_day_file(path, D1), path, items, users)
    assert (err.value.column, err.value.rows, err.value.lines) == ("item_id", 2, [3, 4])


def _log() -> pl.DataFrame:
    # day 0: two events, day 1: none, day 2: one event, and one event before day 0
    return pl.DataFrame(
        {
            "user_id": [1, 1, 2, 2],
            "item_id": [10, 11, 10, 11],
            "timestamp": [T1 - 5, T1 + 7, T1 + 3, T1 + 2 * 86_400 + 1],
            "label": [1.0, 2.0, 3.0, 4.0],
            "event": ["rating"] * 4,
            "entity": ["movie"] * 4,
        }
    )


def test_write_day_files_splits_by_utc_day(tmp_path: Path) -> None:
    paths = write_day_files(_log(), tmp_path, D1, date(2020, 1, 3))
    assert [p.name for p in paths] == ["2020-01-01.csv", "2020-01-02.csv", "2020-01-03.csv"]
    day0 = read_day_file(paths[0], D1)
    assert day0.select("user_id", "item_id", "timestamp").rows() == [
        (2, 10, T1 + 3),
        (1, 11, T1 + 7),
    ]
    assert read_day_file(paths[1], date(2020, 1, 2)).height == 0
    assert read_day_file(paths[2], date(2020, 1, 3)).get_column("label").to_list() == [4.0]


def test_combine_days_is_history_plus_days(tmp_path: Path) -> None:
    base = write_dataset(
        CanonicalTables(
            name="base",
            interactions=_log(),
            items=pl.DataFrame({"item_id": [10, 11], "entity": ["movie", "movie"]}),
            users=pl.DataFrame({"user_id": [1, 2]}),
        ),
        tmp_path / "base",
    )
    parts = []
    for path in write_day_files(_log(), tmp_path / "days", D1, date(2020, 1, 2)):
        day = date.fromisoformat(path.stem)
        events = check_day_references(read_day_file(path, day), path, base.items(), base.users())
        parts.append(tmp_path / f"{day}.parquet")
        events.write_parquet(parts[-1])
    tables = combine_days(base, "feed", D1, parts)
    rows = tables.interactions.select("user_id", "item_id", "timestamp").rows()
    # the event before the feed's start comes from the base; day 2 was not delivered
    assert rows == [(1, 10, T1 - 5), (2, 10, T1 + 3), (1, 11, T1 + 7)]
    assert tables.info["history_events"] == 1 and tables.info["days"] == 2
    assert write_dataset(tables, tmp_path / "feed").manifest["rows"]["interactions"] == 3


def test_ingest_days_in_order_and_the_feed_dataset(tmp_path: Path) -> None:
    """The stage functions behind the daily assets: days land in order, each as Parquet
    with a receipt, and the feed dataset is the base history plus every ingested day."""
    base = write_dataset(
        CanonicalTables(
            name="base",
            interactions=_log(),
            items=pl.DataFrame({"item_id": [10, 11], "entity": ["movie", "movie"]}),
            users=pl.DataFrame({"user_id": [1, 2]}),
        ),
        tmp_path / "base",
    )
    feed = DailyFeed(name="feed", base="base", start=D1, end=date(2020, 1, 3))
    files: dict[date, Path] = {}
    for path in write_day_files(_log(), tmp_path / "days", D1, date(2020, 1, 3)):
        files[date.fromisoformat(path.stem)] = path
    parts = tmp_path / "parts"
    day2, day3 = date(2020, 1, 2), date(2020, 1, 3)
    with pytest.raises(FeedOrderError, match="2020-01-01 has not been ingested"):
        run_ingest_days(feed, [day2], files, parts, base)
    messages: list[str] = []
    rows = run_ingest_days(feed, [D1, day2], files, parts, base, messages.append)
    assert rows == [{"day": "2020-01-01", "events": 2}, {"day": "2020-01-02", "events": 0}]
    assert messages == [
        "feed: ingested 2020-01-01 (2 events)",
        "feed: ingested 2020-01-02 (0 events)",
    ]
    assert ingested_days(parts) == {
        D1: content_hash([files[D1]]),
        day2: content_hash([files[day2]]),
    }
    with pytest.raises(FeedOrderError, match="no file for 2020-01-03"):
        run_ingest_days(feed, [day3], {}, parts, base)

    tables, days = run_feed_dataset(feed, base, parts)
    assert days == [D1, day2]
    rows_out = tables.interactions.select("user_id", "item_id", "timestamp").rows()
    assert rows_out == [(1, 10, T1 - 5), (2, 10, T1 + 3), (1, 11, T1 + 7)]
    (parts / "2020-01-01.json").unlink()  # day 1 lost: day 2 cannot stand alone
    with pytest.raises(FeedOrderError, match=r"\['2020-01-01'\] are missing"):
        run_feed_dataset(feed, base, parts)
