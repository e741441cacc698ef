"""Sequences from canonical interactions: ordering, filters, splits, tokens, windows."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recflow.data.validate import DataValidationError
from recflow.seq.sequences import (
    CLS,
    PAD,
    ItemIndex,
    RaggedTokens,
    SequenceConfig,
    build_sequences,
    read_sequences,
    split_by_time,
    split_by_user,
    with_cls,
    write_sequences,
)


def _interactions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [2, 2, 2, 1, 1, 1, 1, 3],
            "item_id": [30, 10, 20, 50, 40, 60, 70, 10],
            "timestamp": [5, 5, 1, 9, 3, 4, 8, 1],
            "label": [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "event": ["click"] * 8,
            "entity": ["a", "a", "a", "a", "a", "b", "a", "a"],
        }
    )


def test_sequences_sorted_by_time_then_item_and_short_users_dropped() -> None:
    seqs = build_sequences(_interactions(), SequenceConfig(min_len=2))
    assert seqs.get_column("user_id").to_list() == [1, 2]
    # user 1: t=3:40, t=4:60, t=8:70, t=9:50; user 2: t=1:20, then t=5 tie → 10 before 30
    assert seqs.get_column("items").to_list() == [[40, 60, 70, 50], [20, 10, 30]]
    assert seqs.get_column("timestamps").to_list() == [[3, 4, 8, 9], [1, 5, 5]]


def test_entity_label_and_length_filters() -> None:
    seqs = build_sequences(
        _interactions(), SequenceConfig(entity="a", min_label=1.0, min_len=2, max_events=2)
    )
    # user 1 loses item 60 (entity b), user 2 loses item 10 (label 0); keep the last 2
    assert seqs.get_column("items").to_list() == [[70, 50], [20, 30]]


def test_split_by_time_is_leave_last_out() -> None:
    seqs = build_sequences(_interactions(), SequenceConfig(min_len=3))
    parts = split_by_time(seqs)
    got = {(r["user_id"], r["split"]): r["items"] for r in parts.iter_rows(named=True)}
    assert got[(1, "train")] == [40, 60]
    assert got[(1, "valid")] == [40, 60, 70]
    assert got[(1, "test")] == [40, 60, 70, 50]
    assert got[(2, "train")] == [20]


def test_split_by_time_rejects_too_short_sequences() -> None:
    seqs = build_sequences(_interactions(), SequenceConfig(min_len=1))
    with pytest.raises(DataValidationError, match="at least 3 events") as err:
        split_by_time(seqs)
    assert err.value.rows == 1


def test_split_by_user_is_a_seeded_partition() -> None:
    seqs = pl.DataFrame({"user_id": np.arange(100), "items": [[1, 2]] * 100})
    a = split_by_user(seqs, valid_share=0.1, test_share=0.2, seed=3)
    b = split_by_user(seqs, valid_share=0.1, test_share=0.2, seed=3)
    c = split_by_user(seqs, valid_share=0.1, test_share=0.2, seed=4)
    counts = dict(a.group_by("split").len().iter_rows())
    assert counts == {"train": 70, "valid": 10, "test": 20}
    assert a.equals(b)
    assert not a.equals(c)


def test_item_index_round_trip_and_unknown_ids() -> None:
    index = ItemIndex.from_item_ids(np.array([50, 10, 30, 10]))
    assert index.n_tokens == 5  # 3 items + PAD + CLS
    assert index.encode(np.array([30, 10, 50])).tolist() == [3, 2, 4]
    assert index.decode(np.array([4, 2])).tolist() == [50, 10]
    with pytest.raises(DataValidationError, match=r"e\.g\. \[20, 99\]") as err:
        index.encode(np.array([10, 20, 99]), where="f.parquet")
    assert err.value.rows == 2 and err.value.file == "f.parquet"
    assert ItemIndex.from_frame(index.to_frame()).item_ids.tolist() == [10, 30, 50]


def _reference_window(seq: list[int], start: int, width: int) -> list[int]:
    part = seq[start : start + width]
    return [PAD] * (width - len(part)) + part


def test_windows_match_a_plain_python_reference() -> None:
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(2, 50, size=n)) for n in (1, 4, 7, 12, 3)]
    index = ItemIndex.from_item_ids(np.arange(2, 50))
    items = pl.Series("items", seqs, dtype=pl.List(pl.Int64))
    ragged = RaggedTokens.from_items(items, index)
    token_seqs = [[int(x) for x in index.encode(np.array(s))] for s in seqs]
    rows = np.array([0, 1, 2, 3, 4, 3, 2])
    starts = np.array([0, 1, 3, 5, 0, 0, 6])
    got = ragged.windows(rows, starts, 5)
    want = [_reference_window(token_seqs[r], s, 5) for r, s in zip(rows, starts, strict=True)]
    assert got.tolist() == want
    last = ragged.last(np.arange(5), 4)
    assert last.tolist() == [_reference_window(s[-4:], 0, 4) for s in token_seqs]


def test_with_cls_appends_cls_after_the_last_items() -> None:
    tokens = np.array([[0, 5, 6, 7], [0, 0, 0, 9]])
    assert with_cls(tokens).tolist() == [[5, 6, 7, CLS], [0, 0, 9, CLS]]


def test_parquet_round_trip_and_missing_column(tmp_path: Path) -> None:
    seqs = build_sequences(_interactions(), SequenceConfig(min_len=2))
    write_sequences(seqs, tmp_path / "s.parquet")
    assert read_sequences(tmp_path / "s.parquet").equals(seqs)
    seqs.drop("timestamps").write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match="timestamps"):
        read_sequences(tmp_path / "bad.parquet")
