"""What the data must hold for the downstream tasks, checked before training: genre names
from the data's vocabulary, the negatives rule, per-split minimums, attribute columns, and
the comparison's verdict against the best simple baseline."""

import numpy as np
import polars as pl
import pytest

from recflow.seq.comparison import baseline_verdicts, comparison_table, versus_best_baseline
from recflow.seq.domains import TransferSetup, genre_vocabulary, resolve_genres
from recflow.seq.finetune import LabelledSequences
from recflow.seq.sequences import CLS, ItemIndex
from recflow.seq.tasks import (
    ColdStartTask,
    TaskPreconditionError,
    TaskSpec,
    build_tasks,
    describe_tasks,
)


def test_genre_names_come_from_the_data_whatever_the_spelling() -> None:
    ml100k = ["Action", "Animation", "Children's", "Comedy", "Film-Noir"]
    assert resolve_genres(["Animation", "Children"], ml100k) == ("Animation", "Children's")
    assert resolve_genres(["children's", "film noir"], ml100k) == ("Children's", "Film-Noir")
    latest = ["Animation", "Children", "Comedy"]
    assert resolve_genres(["Animation", "Children's"], latest) == ("Animation", "Children")
    with pytest.raises(ValueError, match=r"\['Anime'\].*Children's.*target_genres"):
        resolve_genres(["Animation", "Anime"], ml100k)


def test_genre_split_on_ml100k_spelling_puts_childrens_films_in_the_target() -> None:
    items = pl.DataFrame(
        {"item_id": [1, 2, 3, 4], "genres": ["Animation|Children's", "Children's", "Drama", None]}
    )
    events = pl.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [1, 2, 3, 4]})
    assert genre_vocabulary(items) == ["Animation", "Children's", "Drama"]
    source, target = TransferSetup("genre").split_events(events, items)
    assert sorted(target.get_column("item_id")) == [1, 2]
    assert sorted(source.get_column("item_id")) == [3, 4]


def _task(n_outputs: int, relevant: list[list[int]], n_negatives: int) -> ColdStartTask:
    tokens = np.full((len(relevant), 3), CLS)
    train = LabelledSequences(tokens[:1], np.array([0]))
    rel = [np.asarray(r) for r in relevant]
    return ColdStartTask("t", np.arange(n_outputs), {"test": tokens}, {"test": rel}, train,
                         n_negatives=n_negatives, seed=0)  # fmt: skip


def test_too_few_unseen_items_falls_back_to_full_ranking() -> None:
    # 10 target items, 99 negatives asked: every pair is ranked against all unseen items
    task = _task(10, [[2, 5], [9]], n_negatives=99)
    scores = np.tile(np.arange(10, dtype=float)[::-1], (2, 1))  # class c scores 9 − c
    got = task.score(scores)
    # user 0 (unseen = 8 items): item 2 beaten by 0, 1 → rank 2; item 5 by 0,1,3,4 → rank 4
    # user 1 (unseen = 9 items): item 9 beaten by all 9 unseen → rank 9
    assert got["full_rank_share"] == 1.0
    assert got["hr@5"] == pytest.approx(2 / 3)
    assert got["mrr"] == pytest.approx((1 / 3 + 1 / 5 + 1 / 10) / 3)
    sampled = _task(10, [[2, 5], [9]], n_negatives=3).score(scores)
    assert sampled["full_rank_share"] == 0.0  # 3 ≤ 8 unseen: sampled as configured


def _world(n_users: int = 60, n_target_items: int = 6, with_gender: bool = True):
    rng = np.random.default_rng(0)
    sequences = pl.DataFrame(
        {"user_id": np.arange(n_users), "items": [[10, 11, 12]] * n_users},
        schema={"user_id": pl.Int64, "items": pl.List(pl.Int64)},
    )
    target = pl.DataFrame(
        {"user_id": np.arange(n_users), "item_id": 500 + rng.integers(0, n_target_items, n_users)}
    )
    users = pl.DataFrame({"user_id": np.arange(n_users)})
    if with_gender:
        users = users.with_columns(pl.Series("gender", ["M", "F"] * (n_users // 2)))
    return sequences, target, users, ItemIndex.from_item_ids(np.array([10, 11, 12]))


def test_build_tasks_names_the_setting_when_data_cannot_feed_a_task() -> None:
    seqs, target, users, index = _world()
    tasks = build_tasks(TaskSpec(attributes={"gender": None}), seqs, target, users, index, 4)
    assert [t.name for t in tasks] == ["cold_start", "attribute:gender"]
    rows = describe_tasks(tasks)
    assert rows[0]["test users"] == 12 and rows[0]["train users"] == 42
    assert "full ranking for" in rows[0]["negatives rule"]

    with pytest.raises(TaskPreconditionError, match="no column 'age'.*attributes"):
        build_tasks(TaskSpec(attributes={"age": None}), seqs, target, users, index, 4)
    with pytest.raises(TaskPreconditionError, match="min_users_per_split"):
        build_tasks(TaskSpec(min_users_per_split=10), seqs, target, users, index, 4)
    one_item = target.with_columns(pl.lit(500).alias("item_id"))
    with pytest.raises(TaskPreconditionError, match="1 item.*target_genres"):
        build_tasks(TaskSpec(), seqs, one_item, users, index, 4)
    with pytest.raises(ValueError, match="n_negatives"):
        TaskSpec(n_negatives=0)


def test_comparison_says_which_rows_beat_the_best_baseline() -> None:
    rows = [
        {"task": "a", "method": "fine_all", "accuracy": 0.70, "trained_params": 10},
        {"task": "a", "method": "fine_cls", "accuracy": 0.60, "trained_params": 1},
        {"task": "a", "method": "majority", "accuracy": 0.62},
        {"task": "a", "method": "logreg_bag_of_items", "accuracy": 0.65},
        {"task": "c", "method": "fine_all", "ndcg@5": 0.10, "trained_params": 10},
        {"task": "c", "method": "popularity", "ndcg@5": 0.20},
    ]
    table = versus_best_baseline(comparison_table(rows), {"a": "accuracy", "c": "ndcg@5"})
    vs = dict(zip(table.get_column("method") + table.get_column("task"),
                  table.get_column("vs_best_baseline"), strict=True))  # fmt: skip
    assert vs["fine_alla"] == pytest.approx(0.05) and vs["fine_clsa"] == pytest.approx(-0.05)
    assert vs["fine_allc"] == pytest.approx(-0.10)
    verdicts = baseline_verdicts(table)
    assert verdicts[0] == (
        "a: best accuracy: fine_all 0.7000; beat the best baseline "
        "(logreg_bag_of_items 0.6500): fine_all"
    )
    assert verdicts[1] == (
        "c: best ndcg@5: popularity 0.2000; no trained method beats the best baseline "
        "(popularity 0.2000)"
    )
