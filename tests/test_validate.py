"""``conform``: canonical order and types, or one error naming file, lines, column and rows."""

from __future__ import annotations

import polars as pl
import pytest

from recflow.data.schema import INTERACTIONS, ITEMS, QUERIES, USERS
from recflow.data.validate import LINE, DataValidationError, conform


def interactions_as_text() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "entity": ["movie", "movie", "movie"],
            "timestamp": ["100", "200", " 300 "],
            "item_id": ["10", "11", "10"],
            "user_id": ["1", "1", "2"],
            "like": [1, 0, 1],
        }
    )


def test_orders_casts_and_adds_nullable_columns() -> None:
    df = conform(interactions_as_text(), INTERACTIONS, "i.parquet")
    assert df.columns == ["user_id", "item_id", "timestamp", "label", "event", "entity", "like"]
    assert df.schema["user_id"] == pl.Int64()
    assert df.schema["label"] == pl.Float64() and df.schema["event"] == pl.String()
    assert df.rows() == [
        (1, 10, 100, None, None, "movie", 1),
        (1, 11, 200, None, None, "movie", 0),
        (2, 10, 300, None, None, "movie", 1),
    ]


def test_missing_required_column() -> None:
    with pytest.raises(DataValidationError) as err:
        conform(interactions_as_text().drop("entity"), INTERACTIONS, "i.parquet")
    e = err.value
    assert (e.file, e.column, e.rows) == ("i.parquet", "entity", 3)
    assert "expected ['user_id', 'item_id', 'timestamp', 'entity']" in e.problem


def test_wrong_type_counts_rows() -> None:
    df = interactions_as_text().with_columns(pl.Series("timestamp", ["100", "noon", "1e"]))
    with pytest.raises(DataValidationError) as err:
        conform(df, INTERACTIONS, "i.parquet")
    assert (err.value.column, err.value.rows) == ("timestamp", 2)
    assert (err.value.lines, err.value.unit) == ([2, 3], "row")
    assert "'noon'" in err.value.problem


def test_null_in_required_column() -> None:
    df = interactions_as_text().with_columns(pl.Series("user_id", ["1", "", None]))
    with pytest.raises(DataValidationError, match="null") as err:
        conform(df, INTERACTIONS, "i.parquet")
    assert (err.value.column, err.value.rows) == ("user_id", 2)


def test_duplicate_rows_without_key() -> None:
    df = pl.concat([interactions_as_text(), interactions_as_text().head(1)])
    with pytest.raises(DataValidationError, match="duplicate") as err:
        conform(df, INTERACTIONS, "i.parquet")
    assert err.value.rows == 2


def test_duplicate_key() -> None:
    items = pl.DataFrame({"item_id": [1, 2, 1], "entity": ["movie"] * 3, "title": ["a", "b", "c"]})
    with pytest.raises(DataValidationError, match="duplicate") as err:
        conform(items, ITEMS, "items.parquet")
    assert (err.value.column, err.value.rows) == ("item_id", 2)


def test_extra_columns_only_where_allowed() -> None:
    users = pl.DataFrame({"user_id": [1, 2], "zip_code": ["x", "y"]})
    assert conform(users, USERS, "u").columns == [
        "user_id",
        "gender",
        "age",
        "occupation",
        "zip_code",
    ]
    queries = pl.DataFrame({"query": ["a"], "item_id": [1], "score": [0.5]})
    with pytest.raises(DataValidationError, match="unexpected") as err:
        conform(queries, QUERIES, "q")
    assert (err.value.column, err.value.rows) == ("score", 1)


def test_empty_table() -> None:
    empty = pl.DataFrame(schema={"user_id": pl.Int64()})
    with pytest.raises(DataValidationError, match="no data rows") as err:
        conform(empty, USERS, "u")
    assert err.value.rows == 0


def test_negative_ids_are_outside_the_id_domain() -> None:
    df = interactions_as_text().with_columns(pl.Series("user_id", ["1", "-1", "-7"]))
    with pytest.raises(DataValidationError) as err:
        conform(df, INTERACTIONS, "i.parquet")
    assert str(err.value) == (
        "i.parquet: rows 2, 3: column 'user_id': negative ids, e.g. [-1, -7]; "
        "ids are non-negative integers (0 <= id < 2**63) (2 rows)"
    )
    items = pl.DataFrame({"item_id": [0, -2], "entity": ["movie"] * 2})
    with pytest.raises(DataValidationError, match="negative ids") as err:
        conform(items, ITEMS, "items.parquet")
    assert (err.value.column, err.value.lines) == ("item_id", [2])
    # a query's user is optional, but where given it is an id too
    queries = pl.DataFrame({"query": ["a", "b"], "item_id": [1, 2], "user_id": [None, -3]})
    with pytest.raises(DataValidationError, match="negative ids") as err:
        conform(queries, QUERIES, "q")
    assert (err.value.column, err.value.lines) == ("user_id", [2])


def test_source_lines_are_named_after_a_sort_and_dropped_from_the_result() -> None:
    # rows read from lines 7, 3, 5 of a file and sorted since: errors still name lines
    df = interactions_as_text().with_columns(pl.Series(LINE, [7, 3, 5]))
    bad = df.with_columns(pl.Series("item_id", ["10", "x", "y"]))
    with pytest.raises(DataValidationError) as err:
        conform(bad, INTERACTIONS, "ratings.csv")
    assert str(err.value).startswith("ratings.csv: lines 3, 5: column 'item_id': ")
    assert LINE not in conform(df, INTERACTIONS, "ratings.csv").columns
    duplicated = df.with_columns(
        pl.Series("user_id", ["1", "1", "1"]), pl.lit("10").alias("item_id")
    )
    duplicated = duplicated.with_columns(pl.lit("100").alias("timestamp"))
    with pytest.raises(DataValidationError, match="duplicate") as err:
        conform(duplicated, INTERACTIONS, "ratings.csv")
    # lines 7 and 5 agree on every column; line 3 differs in ``like``
    assert (err.value.rows, err.value.lines) == (2, [5, 7])


def test_more_offending_rows_than_shown_end_with_an_ellipsis() -> None:
    df = pl.DataFrame({"user_id": [-1, -2, -3, -4, 5]})
    with pytest.raises(DataValidationError) as err:
        conform(df, USERS, "u")
    assert str(err.value).startswith("u: rows 1, 2, 3, ...: column 'user_id': ")
    assert err.value.rows == 4
