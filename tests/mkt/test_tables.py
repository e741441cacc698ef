"""Feature-aligned tables built from a tiny hand-made frame, checked value by value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recflow.data.tenrec import load_tenrec
from recflow.data.validate import DataValidationError
from recflow.mkt.encoding import MISSING, UNSEEN
from recflow.mkt.mappings import TENREC
from recflow.mkt.tables import FeatureTables, TableConfig, activity_bucket, build_feature_tables

CONFIG = TableConfig(train_share=0.8, sequence_length=3, numeric_buckets=2)


@pytest.fixture
def tables(tiny_mapping, tiny_interactions, tiny_items, tiny_users) -> FeatureTables:
    return build_feature_tables(tiny_interactions, tiny_items, tiny_users, tiny_mapping, CONFIG)


def _row(t: FeatureTables, user: int, ts: int, item: int) -> dict:
    df = t.frame.filter(
        (pl.col("user_id") == user) & (pl.col("timestamp") == ts) & (pl.col("item_id") == item)
    )
    assert df.height == 1
    return df.to_dicts()[0]


def test_time_ordered_split_puts_the_last_20_percent_in_test(tables: FeatureTables) -> None:
    # 11 events; ranks < 0.8 * 11 = 8.8 → the 9 earliest (timestamps 1..8) train.
    test = tables.frame.filter(pl.col("split") == "test").sort("timestamp")
    assert test.get_column("timestamp").to_list() == [9, 10]
    assert tables.frame.filter(pl.col("split") == "train").get_column("timestamp").max() == 8


def test_per_user_split_where_timestamps_are_positions(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    mapping = dataclasses.replace(tiny_mapping, timestamps_are_positions=True)
    t = build_feature_tables(tiny_interactions, tiny_items, tiny_users, mapping, CONFIG)
    # user 10: 7 events, positions < 5.6 train → only t=10 tests; user 11: 4 events, < 3.2 → all
    test = t.frame.filter(pl.col("split") == "test")
    assert test.select("user_id", "timestamp").rows() == [(10, 10)]


def test_sequences_hold_earlier_clicks_only_per_entity(tables: FeatureTables) -> None:
    # item codes fitted on train: items 1,2,3,4 → 2,3,4,5; item 5 only in test → UNSEEN.
    cases = {
        (10, 1, 1): ([0, 0, 0], [0, 0, 0]),
        (10, 2, 3): ([0, 0, 2], [0, 0, 0]),
        (10, 3, 2): ([0, 0, 2], [0, 0, 4]),  # same-timestamp post 4 click is not seen
        (10, 3, 4): ([0, 0, 2], [0, 0, 4]),
        (10, 6, 1): ([0, 0, 2], [0, 4, 5]),
        (10, 10, 5): ([0, 2, 2], [4, 5, 4]),  # last 3 post clicks, oldest first
        (11, 9, 4): ([0, 0, 2], [0, 0, 0]),  # user 11's post 3 impression was not clicked
    }
    for (user, ts, item), (product, post) in cases.items():
        row = _row(tables, user, ts, item)
        assert list(row["seq:product"]) == product, (user, ts)
        assert list(row["seq:post"]) == post, (user, ts)


def test_encoders_are_fitted_on_train_rows_only(tables: FeatureTables) -> None:
    late = _row(tables, 10, 10, 5)  # post 5: item, category "c" and style "z" only in test
    assert late["item:item_id"] == UNSEEN
    assert late["shared:category"] == UNSEEN
    assert late["specific:style"] == UNSEEN
    assert late["specific:price"] == MISSING  # a post has no price
    early = _row(tables, 10, 2, 3)
    assert (early["item:item_id"], early["shared:category"], early["specific:style"]) == (4, 2, 2)
    # prices of train rows 1,5,1,5,1 → median edge 1.0: price 1 → bucket 0, price 5 → bucket 1
    assert _row(tables, 10, 1, 1)["specific:price"] == 2
    assert _row(tables, 10, 3, 2)["specific:price"] == 3
    assert tables.encoders["user:gender"].vocabulary == ["f", "m"]


def test_activity_counts_target_clicks_in_train(tables: FeatureTables) -> None:
    by_user = dict(tables.frame.group_by("user_id").agg(pl.first("target_clicks_in_train")).rows())
    assert by_user == {10: 3, 11: 0}  # user 10 clicked posts at t2, t3, t8; user 11 only in test


def test_tensors_and_spec_line_up(tables: FeatureTables) -> None:
    x = tables.tensors("train")
    assert x["user"].shape == (9, 2) and x["seq"].shape == (9, 2, 3)
    assert x["specific"].shape == (9, 2) and x["shared"].shape == (9, 1)
    assert x["entity"].tolist().count(1) == 4  # train posts: t2, t3, t7, t8
    spec = tables.spec()
    assert spec.specific_entity == (0, 1) and spec.item_vocab == 2 + 4
    # rows in (user, timestamp) order: user 10's t10 (no click), then user 11's t9 (click)
    assert tables.tensors("test", "post")["label"].tolist() == [0.0, 1.0]
    # the item → shared-code table: item code 4 (item 3) has category "a" (code 2)
    assert tables.item_shared[4].tolist() == [2]
    assert tables.item_shared[UNSEEN].tolist() == [MISSING]


def test_save_and_load_round_trip(tables: FeatureTables, tmp_path: Path) -> None:
    tables.save(tmp_path / "t")
    back = FeatureTables.load(tmp_path / "t")
    assert back.frame.equals(tables.frame)
    assert back.mapping == tables.mapping and back.spec() == tables.spec()
    np.testing.assert_array_equal(back.item_shared, tables.item_shared)


def test_labels_must_be_binary(tiny_mapping, tiny_interactions, tiny_items, tiny_users) -> None:
    bad = tiny_interactions.with_columns(pl.col("label").replace(0.0, 2.0))
    with pytest.raises(DataValidationError, match="0 or 1") as e:
        build_feature_tables(bad, tiny_items, tiny_users, tiny_mapping, CONFIG)
    assert (e.value.column, e.value.rows) == ("label", 4)


def test_activity_buckets() -> None:
    got = activity_bucket(np.array([0, 9, 10, 30, 31]))
    assert got.tolist() == ["0-10", "0-10", "10-30", "10-30", ">30"]


def test_tenrec_format_fixture_builds_with_like_as_label(tmp_path: Path) -> None:
    header = "user_id,item_id,click,follow,like,share,video_category,watching_times,gender,age\n"
    video = [
        "1,100,1,0,1,0,3,2,1,2",
        "1,101,1,0,0,0,4,1,1,2",
        "1,102,0,0,0,0,3,0,1,2",
        "2,100,1,0,0,0,3,5,2,3",
        "2,103,0,0,0,0,4,0,2,3",
    ]
    article = [
        "1,7,1,0,1,0,,,1,2",
        "1,8,0,0,0,0,,,1,2",
        "1,9,1,0,0,0,,,1,2",
        "2,7,1,0,1,0,,,2,3",
        "2,9,1,0,0,0,,,2,3",
    ]
    (tmp_path / "QK-video.csv").write_text(header + "\n".join(video) + "\n")
    (tmp_path / "QK-article.csv").write_text(header + "\n".join(article) + "\n")
    ct = load_tenrec(tmp_path)
    t = build_feature_tables(ct.interactions, ct.items, ct.users, TENREC, CONFIG)
    assert t.frame.height == 10
    art = t.frame.filter(pl.col("entity") == "article").sort("user_id", "timestamp")
    assert art.get_column("label").to_list() == [1.0, 0.0, 0.0, 1.0, 0.0]  # like, not click
    # user 1's third article (position 2): of articles 7 and 8 before it, only 7 was clicked
    third = art.filter((pl.col("user_id") == 1) & (pl.col("timestamp") == 2)).to_dicts()[0]
    assert [c > 0 for c in third["seq:article"]] == [False, False, True]
    # per-user split of positions: user 1 has 6 rows (5 train), user 2 has 4 (all train)
    test = t.frame.filter(pl.col("split") == "test")
    assert test.select("user_id", "entity", "timestamp").rows() == [(1, "article", 2)]


def test_validation_is_the_latest_share_of_training_rows(tables: FeatureTables) -> None:
    # 9 training rows (t1, t2, t3, t3, t4..t8); ranks < 0.75 * 9 = 6.75 keep training → t7, t8
    v = tables.with_validation(0.25)
    valid = v.frame.filter(pl.col("split") == "valid").sort("timestamp")
    assert valid.get_column("timestamp").to_list() == [7, 8]
    assert v.frame.filter(pl.col("split") == "test").equals(
        tables.frame.filter(pl.col("split") == "test")
    )
    assert v.frame.drop("split").equals(tables.frame.drop("split"))  # only the split moved
    # both are posts: (user 10, t8, post 3, click), (user 11, t7, post 3, no click)
    assert v.tensors("valid", "post")["label"].tolist() == [1.0, 0.0]
    assert v.tensors("valid", "product")["label"].shape == (0,)
    with pytest.raises(ValueError, match="already"):
        v.with_validation(0.25)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        tables.with_validation(1.0)


def test_validation_per_user_where_timestamps_are_positions(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    mapping = dataclasses.replace(tiny_mapping, timestamps_are_positions=True)
    t = build_feature_tables(tiny_interactions, tiny_items, tiny_users, mapping, CONFIG)
    # user 10 trains on 6 rows: positions < 4.5 stay → t8 valid; user 11 on 4: < 3 → t9 valid
    valid = t.with_validation(0.25).frame.filter(pl.col("split") == "valid")
    assert valid.select("user_id", "timestamp").rows() == [(10, 8), (11, 9)]


def test_user_category_click_rate_reference(tables: FeatureTables) -> None:
    from recflow.mkt.experiment import user_feature_rate

    # test rows in frame order: (user 10, category c, t10), (user 11, category b, t9)
    # both entities: base 6/9; user 11 saw b once, no click → (0 + 2·2/3) / (1 + 2) = 4/9
    np.testing.assert_allclose(user_feature_rate(tables, None), [2 / 3, 4 / 9])
    # posts only: base 3/4; neither user saw a post of that category → the base rate
    np.testing.assert_allclose(user_feature_rate(tables, "post"), [0.75, 0.75])
