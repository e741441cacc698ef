"""The co-consumption matrix: hand-computed cases, bad input, and the brute-force oracle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recflow.cooc import (
    NEAR_SECONDS,
    CoocConfig,
    build_cooc,
    read_cooc,
)
from recflow.cooc_reference import reference_cooc
from recflow.data.validate import DataValidationError

A, B, C, D = 10, 20, 30, 40  # item ids; their dense indices are 0, 1, 2, 3

EVENT_SCHEMA = {
    "user_id": pl.Int64,
    "item_id": pl.Int64,
    "timestamp": pl.Int64,
    "label": pl.Float64,
}


def events(rows: list[tuple[int, int, int, float | None]]) -> pl.DataFrame:
    """(user, item, timestamp, label) rows in canonical column types."""
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row").with_columns(
        pl.lit("click").alias("event"), pl.lit("movie").alias("entity")
    )


def write(df: pl.DataFrame, path: Path) -> Path:
    df.write_parquet(path)
    return path


def build(df: pl.DataFrame, tmp_path: Path, config: CoocConfig = CoocConfig(), name: str = "out"):  # noqa: B008
    src = write(df, tmp_path / f"{name}.parquet")
    result = build_cooc(src, tmp_path / name, config)
    matrix, index = read_cooc(tmp_path / name)
    return result, matrix, index


def as_id_counts(matrix: pl.DataFrame, index: pl.DataFrame) -> dict[tuple[int, int], int]:
    ids = index["item_id"].to_list()
    return {(ids[r], ids[c]): n for r, c, n in matrix.select("row", "col", "count").iter_rows()}


# --- hand-computed: the paper's consecutive mode -------------------------------------------

# user 1: A(10s) B(20s) C(100s) B(200s)      -> A→B (10 s), B→C (80 s), C→B (100 s)
# user 2: B(5s) A(5s): equal time, item order -> A→B (0 s)
# user 3: C(1s) C(2s) A(3s)                  -> C→C dropped, C→A (1 s)
# The rows are given out of order on purpose.
HAND_LOG = [
    (1, C, 100, 1.0),
    (2, B, 5, 1.0),
    (1, A, 10, 1.0),
    (3, C, 2, 1.0),
    (1, B, 200, 1.0),
    (2, A, 5, 1.0),
    (3, A, 3, 1.0),
    (1, B, 20, 1.0),
    (3, C, 1, 1.0),
]


def test_consecutive_pairs_weights_and_stats_by_hand(tmp_path: Path) -> None:
    result, matrix, index = build(events(HAND_LOG), tmp_path)
    # M: A→B 2, B→C 1, C→B 1, C→A 1. Row nnz A 1, B 1, C 2; column nnz A 1, B 2, C 1.
    # weight(nnz) = nnz^-1/2 / mean: mean = (1 + 1 + 1/√2) / 3
    one = 3 / (2 + 1 / math.sqrt(2))  # nnz 1 -> 1.10819...
    two = (1 / math.sqrt(2)) * one  # nnz 2 -> 0.78361...
    expected = [
        # row, col, count, row_weight, col_weight; sorted by row, count desc, col
        (0, 1, 2, one, two),  # A→B
        (1, 2, 1, one, one),  # B→C
        (2, 0, 1, two, one),  # C→A (tie with C→B: smaller id first)
        (2, 1, 1, two, two),  # C→B
    ]
    assert matrix.columns == ["row", "col", "count", "row_weight", "col_weight"]
    assert matrix.schema["row"] == pl.Int32 and matrix.schema["count"] == pl.Int64
    got = matrix.rows()
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[3] == pytest.approx(e[3], abs=1e-12)
        assert g[4] == pytest.approx(e[4], abs=1e-12)
    assert index.rows() == [(0, A, 3), (1, B, 3), (2, C, 3)]
    assert index.schema["index"] == pl.Int32

    s = result.stats
    assert (s["events"], s["users"], s["items"]) == (9, 3, 3)
    assert (s["nnz"], s["rows"], s["cols"]) == (4, 3, 3)
    assert (s["distinct_pairs"], s["pairs_total"]) == (4, 5)
    assert s["consecutive_pairs"] == 5 and s["consecutive_self_pairs"] == 1
    assert s["share_equal_timestamp"] == pytest.approx(1 / 5)  # user 2's A→B
    assert s[f"share_within_{NEAR_SECONDS}s"] == pytest.approx(3 / 5)  # 10 s, 0 s, 1 s
    assert s["mean_neighbours"] == pytest.approx(4 / 3)
    assert s["max_neighbours"] == 2
    hist = s["neighbour_histogram"]
    assert hist["edges"][:3] == [1, 2, 3] and sum(hist["counts"]) == 3
    assert hist["counts"][:2] == [2, 1]
    assert (tmp_path / "out" / "stats.json").exists()


def test_top_k_one_keeps_the_smaller_id_on_ties(tmp_path: Path) -> None:
    _, matrix, index = build(events(HAND_LOG), tmp_path, CoocConfig(top_k=1))
    # row C has C→A 1 and C→B 1: keep A; every kept row and column then has nnz 1
    assert as_id_counts(matrix, index) == {(A, B): 2, (B, C): 1, (C, A): 1}
    assert matrix["row_weight"].to_list() == pytest.approx([1.0] * 3)
    assert matrix["col_weight"].to_list() == pytest.approx([1.0] * 3)


def test_top_k_truncation_keeps_dropped_items_in_the_index(tmp_path: Path) -> None:
    S, X, Y, Z = 50, 60, 70, 55
    log = [(1, S, 1, 1.0), (1, X, 2, 1.0), (2, S, 1, 1.0), (2, X, 2, 1.0)]  # S→X twice
    log += [(3, S, 1, 1.0), (3, Y, 2, 1.0), (4, S, 1, 1.0), (4, Z, 2, 1.0)]  # S→Y, S→Z once
    result, matrix, index = build(events(log), tmp_path, CoocConfig(top_k=2))
    assert as_id_counts(matrix, index) == {(S, X): 2, (S, Z): 1}  # Z (55) beats Y (70)
    assert index["item_id"].to_list() == [S, Z, X, Y]
    assert result.stats["rows_at_top_k"] == 1
    assert result.stats["distinct_pairs"] == 3 and result.stats["nnz"] == 2


def test_unclicked_impressions_are_dropped(tmp_path: Path) -> None:
    # D shown to user 1 between A and B but not clicked (label 0), and a -1 rating of C
    log = [*HAND_LOG, (1, D, 15, 0.0), (2, C, 6, -1.0), (3, A, 3, None)]
    result, matrix, index = build(events(log), tmp_path)
    # the null-label duplicate of user 3's A is kept: C→A, A→A (dropped)
    assert as_id_counts(matrix, index) == {(A, B): 2, (B, C): 1, (C, B): 1, (C, A): 1}
    assert D not in index["item_id"].to_list()
    assert result.stats["events"] == 10

    _, matrix, index = build(events(log), tmp_path, CoocConfig(positive_only=False), "all")
    # user 1: A D B C B; user 2: A B C; user 3: C C A A
    assert as_id_counts(matrix, index) == {
        (A, D): 1,
        (D, B): 1,
        (B, C): 2,
        (C, B): 1,
        (A, B): 1,
        (C, A): 1,
    }


def test_single_event_users_give_an_empty_matrix_with_its_schema(tmp_path: Path) -> None:
    result, matrix, index = build(events([(1, A, 1, 1.0), (2, B, 1, 1.0)]), tmp_path)
    assert matrix.height == 0
    assert dict(matrix.schema) == {
        "row": pl.Int32,
        "col": pl.Int32,
        "count": pl.Int64,
        "row_weight": pl.Float64,
        "col_weight": pl.Float64,
    }
    assert index["item_id"].to_list() == [A, B]
    assert result.stats["nnz"] == 0 and result.stats["consecutive_pairs"] == 0


# --- hand-computed: window mode ------------------------------------------------------------

# user 1: A(0s) B(0s) C(30s) D(200s) -> positions A0 B1 C2 D3 (A, B tied: item order)
# user 2: B(5s) C(10s)
WINDOW_LOG = [
    (1, C, 30, 1.0),
    (1, B, 0, 1.0),
    (1, D, 200, 1.0),
    (1, A, 0, 1.0),
    (2, C, 10, 1.0),
    (2, B, 5, 1.0),
]

WINDOW_CASES = [
    (dict(window_positions=1), {(A, B): 1, (B, C): 2, (C, D): 1}),
    (dict(window_positions=2), {(A, B): 1, (A, C): 1, (B, C): 2, (B, D): 1, (C, D): 1}),
    (dict(window_seconds=60), {(A, B): 1, (A, C): 1, (B, C): 2}),
    (dict(window_positions=2, window_seconds=60), {(A, B): 1, (A, C): 1, (B, C): 2}),
    (dict(window_positions=1, window_seconds=60), {(A, B): 1, (B, C): 2}),
    (dict(window_seconds=0), {(A, B): 1}),
    (dict(window_seconds=0, ties_unordered=True), {(A, B): 1, (B, A): 1}),
    (
        dict(window_positions=2, window_seconds=60, ties_unordered=True),
        {(A, B): 1, (B, A): 1, (A, C): 1, (B, C): 2},
    ),
    (
        dict(window_positions=2, window_seconds=60, symmetric=True),
        {(A, B): 1, (B, A): 1, (A, C): 1, (C, A): 1, (B, C): 2, (C, B): 2},
    ),
    (
        dict(window_seconds=60, symmetric=True, ties_unordered=True),
        {(A, B): 1, (B, A): 1, (A, C): 1, (C, A): 1, (B, C): 2, (C, B): 2},
    ),
]


@pytest.mark.parametrize(("options", "expected"), WINDOW_CASES)
def test_window_mode_by_hand(
    tmp_path: Path, options: dict, expected: dict[tuple[int, int], int]
) -> None:
    result, matrix, index = build(
        events(WINDOW_LOG), tmp_path, CoocConfig(mode="window", **options)
    )
    assert as_id_counts(matrix, index) == expected
    assert index["item_id"].to_list() == [A, B, C, D]
    assert result.stats["pairs_total"] == sum(expected.values())
    # the consecutive-pair stats do not depend on the mode: A→B 0 s, B→C 30 s, C→D 170 s,
    # B→C 5 s
    assert result.stats["share_equal_timestamp"] == pytest.approx(1 / 4)
    assert result.stats[f"share_within_{NEAR_SECONDS}s"] == pytest.approx(3 / 4)


# --- inputs --------------------------------------------------------------------------------


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="top_k"):
        CoocConfig(top_k=0)
    with pytest.raises(ValueError, match="window_positions and/or window_seconds"):
        CoocConfig(mode="window")
    with pytest.raises(ValueError, match="only apply to mode='window'"):
        CoocConfig(window_positions=3)
    with pytest.raises(ValueError, match="window_positions must be"):
        CoocConfig(mode="window", window_positions=0)


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(events(HAND_LOG).drop("timestamp"), tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError) as err:
        build_cooc(path, tmp_path / "out")
    assert err.value.file == str(path) and err.value.column == "timestamp"
    assert err.value.rows == len(HAND_LOG)


def test_non_integer_ids_are_rejected(tmp_path: Path) -> None:
    df = events(HAND_LOG).with_columns(pl.col("item_id").cast(pl.String))
    path = write(df, tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match="integer") as err:
        build_cooc(path, tmp_path / "out")
    assert err.value.column == "item_id"


@pytest.mark.parametrize("statistics", [True, False])
def test_null_ids_are_counted(tmp_path: Path, statistics: bool) -> None:
    # without row-group statistics the nulls are found by scanning the file
    df = events(HAND_LOG).with_columns(
        pl.when(pl.col("user_id") == 1).then(None).otherwise(pl.col("user_id")).alias("user_id")
    )
    path = tmp_path / "nulls.parquet"
    pq.write_table(df.to_arrow(), path, write_statistics=statistics)
    with pytest.raises(DataValidationError) as err:
        build_cooc(path, tmp_path / "out")
    assert (err.value.column, err.value.rows) == ("user_id", 4)


def test_no_clicked_events_is_an_error(tmp_path: Path) -> None:
    path = write(events([(1, A, 1, 0.0), (1, B, 2, 0.0)]), tmp_path / "unclicked.parquet")
    with pytest.raises(DataValidationError, match="no events left") as err:
        build_cooc(path, tmp_path / "out")
    assert err.value.column == "label"


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        build_cooc(tmp_path / "nope.parquet", tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        build_cooc(str(tmp_path / "nope-*.parquet"), tmp_path / "out")


def test_several_files_equal_one_concatenated_file(tmp_path: Path) -> None:
    log = random_log(np.random.default_rng(7), n_events=300)
    whole_dir, daily = tmp_path / "whole", tmp_path / "daily"
    whole_dir.mkdir()
    daily.mkdir()
    parts = [log[:100], log[100:250], log[250:]]
    for i, part in enumerate(parts):
        # the last day has no label column: all its events count as consumed
        part = part.drop("label") if i == 2 else part
        write(part, daily / f"day{i}.parquet")
    concatenated = pl.concat(
        [parts[0], parts[1], parts[2].with_columns(pl.lit(None, pl.Float64).alias("label"))]
    )
    whole = write(concatenated, whole_dir / "all.parquet")
    config = CoocConfig(top_k=3)
    build_cooc(whole, tmp_path / "one", config)
    expected = read_cooc(tmp_path / "one")
    for name, source in [
        ("list", sorted(daily.glob("*.parquet"))),
        ("glob", str(daily / "day*.parquet")),
        ("dir", daily),
    ]:
        build_cooc(source, tmp_path / name, config)
        got = read_cooc(tmp_path / name)
        assert got[0].equals(expected[0]), name
        assert got[1].equals(expected[1]), name


# --- the oracle ----------------------------------------------------------------------------


def random_log(rng: np.random.Generator, n_events: int | None = None) -> pl.DataFrame:
    """A small log with many equal timestamps, repeats and every kind of label."""
    n = int(rng.integers(0, 80)) if n_events is None else n_events
    n_users = int(rng.integers(1, 8))
    n_items = int(rng.integers(1, 12))
    labels = np.array([1.0, 1.0, 1.0, 0.0, -1.0, 0.5, np.nan])
    label = labels[rng.integers(0, len(labels), n)]
    return pl.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n) * 1000 + 7,
            "item_id": rng.integers(0, n_items, n) * 3 - 5,  # negative ids too
            "timestamp": rng.integers(0, 5, n) * rng.choice([1, 30, 61], n),
            "label": pl.Series(label).fill_nan(None),
        },
        schema=EVENT_SCHEMA,
    )


def random_config(rng: np.random.Generator) -> CoocConfig:
    top_k = int(rng.choice([1, 2, 3, 250]))
    positive_only = bool(rng.random() < 0.7)
    if rng.random() < 0.35:
        return CoocConfig(top_k=top_k, positive_only=positive_only)
    positions = [None, 1, 2, 3, 6][int(rng.integers(0, 5))]
    seconds = [None, 0, 30, 61, 1000][int(rng.integers(0, 5))]
    if positions is None and seconds is None:
        positions = 2
    return CoocConfig(
        top_k=top_k,
        mode="window",
        window_positions=positions,
        window_seconds=seconds,
        symmetric=bool(rng.random() < 0.3),
        ties_unordered=bool(rng.random() < 0.5),
        positive_only=positive_only,
        threads=1,
    )


@pytest.mark.parametrize("seed", range(40))
def test_matches_the_reference_on_random_logs(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    log = random_log(rng)
    config = random_config(rng)
    ref = reference_cooc(log, config)
    if ref.events == 0:
        with pytest.raises(DataValidationError):
            build(log, tmp_path, config)
        return
    result, matrix, index = build(log, tmp_path, config)

    assert index["item_id"].to_list() == ref.item_ids
    assert index["index"].to_list() == list(range(len(ref.item_ids)))
    assert dict(zip(index["item_id"], index["events"], strict=True)) == ref.item_events
    assert as_id_counts(matrix, index) == ref.counts
    ids = index["item_id"].to_list()
    for r, c, _, rw, cw in matrix.iter_rows():
        assert rw == pytest.approx(ref.row_weight[ids[r]], abs=1e-9)
        assert cw == pytest.approx(ref.col_weight[ids[c]], abs=1e-9)
    sort_key = matrix.select("row", -pl.col("count"), "col").rows()
    assert sort_key == sorted(sort_key)

    if matrix.height:
        assert matrix.group_by("row").agg(pl.first("row_weight"))["row_weight"].mean() == (
            pytest.approx(1.0, abs=1e-6)
        )
        assert matrix.group_by("col").agg(pl.first("col_weight"))["col_weight"].mean() == (
            pytest.approx(1.0, abs=1e-6)
        )
        assert matrix.group_by("row").len()["len"].max() <= config.top_k

    s = result.stats
    assert (s["events"], s["users"]) == (ref.events, ref.users)
    assert (s["pairs_total"], s["distinct_pairs"], s["nnz"]) == (
        ref.pairs_total,
        ref.distinct_pairs,
        len(ref.counts),
    )
    assert s["consecutive_pairs"] == ref.consecutive_pairs
    if ref.consecutive_pairs:
        assert s["share_equal_timestamp"] == pytest.approx(
            ref.consecutive_equal_timestamp / ref.consecutive_pairs
        )
        assert s[f"share_within_{NEAR_SECONDS}s"] == pytest.approx(
            ref.consecutive_within_near / ref.consecutive_pairs
        )


@pytest.mark.parametrize("seed", range(5))
def test_window_of_one_position_equals_consecutive_mode(tmp_path: Path, seed: int) -> None:
    log = random_log(np.random.default_rng(100 + seed), n_events=200)
    build(log, tmp_path, CoocConfig(top_k=4), "consecutive")
    build(log, tmp_path, CoocConfig(top_k=4, mode="window", window_positions=1), "window")
    consecutive = read_cooc(tmp_path / "consecutive")
    window = read_cooc(tmp_path / "window")
    assert consecutive[0].equals(window[0])
    assert consecutive[1].equals(window[1])


def test_same_result_under_a_tiny_memory_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    log = pl.DataFrame(
        {
            "user_id": rng.integers(0, 2_000, n),
            "item_id": rng.integers(0, 5_000, n),
            "timestamp": rng.integers(0, 10**6, n),
            "label": np.ones(n),
        },
        schema=EVENT_SCHEMA,
    )
    _, big, _ = build(log, tmp_path, CoocConfig(top_k=20), "roomy")
    small = CoocConfig(top_k=20, memory_limit="20MB", threads=1)
    _, tight, _ = build(log, tmp_path, small, "tight")
    assert tight.select("row", "col", "count").equals(big.select("row", "col", "count"))
    for column in ("row_weight", "col_weight"):  # float sums may differ in the last bits
        assert np.allclose(tight[column].to_numpy(), big[column].to_numpy(), rtol=0, atol=1e-12)


def test_arrow_schema_of_outputs(tmp_path: Path) -> None:
    result, _, _ = build(events(HAND_LOG), tmp_path)
    schema = pq.read_schema(result.item_index_path)
    assert schema.field("item_id").type == pa.int64()
    assert schema.field("index").type == pa.int32()
