"""Downstream tasks: labels, bags of items, cold-start construction and its metrics."""

import numpy as np
import polars as pl
import pytest

from recflow.seq.finetune import LabelledSequences
from recflow.seq.sequences import CLS, PAD, ItemIndex
from recflow.seq.tasks import (
    AttributeTask,
    ColdStartTask,
    attribute_labels,
    bag_of_items,
    cold_start_task,
)


def test_attribute_labels_bins_and_drops_missing() -> None:
    users = pl.DataFrame({"user_id": [1, 2, 3, 4, 5], "age": [17, 18, 30, None, 60]})
    got = attribute_labels(users, "age", bins=[18, 25, 56])
    assert got.get_column("user_id").to_list() == [1, 2, 3, 5]
    assert got.get_column("label").to_list() == ["<18", "18-25", "25-56", "56+"]
    with pytest.raises(ValueError, match="not present"):
        attribute_labels(users, "occupation")


def test_bag_of_items_is_binary_and_ignores_pad_and_cls() -> None:
    tokens = np.array([[PAD, 4, 4, CLS], [2, 3, 5, CLS]])
    bag = bag_of_items(tokens, n_tokens=6).toarray()
    assert bag.tolist() == [[0, 0, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1]]


def test_attribute_baselines_on_a_hand_made_task() -> None:
    # class 1 users hold token 3, class 0 users token 2; train majority is class 1
    train = LabelledSequences(
        np.array([[2, CLS]] * 4 + [[3, CLS]] * 6), np.array([0] * 4 + [1] * 6)
    )
    test = LabelledSequences(np.array([[2, CLS], [3, CLS]]), np.array([0, 1]))
    task = AttributeTask("t", ["a", "b"], {"train": train, "valid": test, "test": test}, n_tokens=4)
    base = task.baselines()
    # the majority row predicts add-one smoothed train frequencies: (4+1)/12 and (6+1)/12
    assert base["majority"] == {
        "accuracy": 0.5,
        "macro_f1": pytest.approx((0 + 2 / 3) / 2),
        "log_loss": pytest.approx(-(np.log(5 / 12) + np.log(7 / 12)) / 2),
    }
    logreg = base["logreg_bag_of_items"]
    assert (logreg["accuracy"], logreg["macro_f1"]) == (1.0, 1.0)
    assert 0 < logreg["log_loss"] < base["majority"]["log_loss"]


def test_logreg_log_loss_covers_classes_missing_from_train() -> None:
    # class 2 never occurs in train: logreg gives it the floor 1/9 = 1 / (n_train + classes),
    # then the row is renormalised (softmax of the logs): (1/9) / (1 + 1/9) = 1/10
    train = LabelledSequences(
        np.array([[2, CLS]] * 3 + [[3, CLS]] * 3), np.array([0] * 3 + [1] * 3)
    )
    test = LabelledSequences(np.array([[2, CLS]]), np.array([2]))
    splits = {"train": train, "valid": test, "test": test}
    base = AttributeTask("t", ["a", "b", "c"], splits, n_tokens=4).baselines()
    assert base["logreg_bag_of_items"]["log_loss"] == pytest.approx(-np.log(1 / 10))
    assert base["majority"]["log_loss"] == pytest.approx(-np.log(1 / 9))


def _task(n_outputs: int, relevant: list[list[int]]) -> ColdStartTask:
    users = len(relevant)
    tokens = np.full((users, 3), CLS)
    rel = [np.asarray(r) for r in relevant]
    train = LabelledSequences(tokens[:1], np.array([0]))
    return ColdStartTask(
        "t", np.arange(n_outputs), {"test": tokens}, {"test": rel}, train, n_negatives=99, seed=0
    )


def test_cold_start_metrics_on_hand_computed_ranks() -> None:
    # 100 classes, one relevant item: all 99 others are sampled, so ranks are exact
    task = _task(100, [[7], [3]])
    scores = np.tile(np.arange(100, dtype=float)[::-1], (2, 1))  # class c scores 99 − c
    got = task.score(scores)
    # user 0: item 7 has rank 7 (miss); user 1: item 3 has rank 3 (hit, NDCG 1/log2(5))
    assert got["hr@5"] == 0.5
    assert got["ndcg@5"] == pytest.approx(0.5 / np.log2(5))
    assert got["mrr"] == pytest.approx((1 / 8 + 1 / 4) / 2)
    assert got["recall@20"] == 1.0
    ties = task.score(np.zeros((2, 100)))  # a constant scorer ranks last, never first
    assert ties["hr@5"] == 0.0 and ties["mrr"] == pytest.approx(1 / 100)


def test_cold_start_task_pairs_train_users_with_their_target_items() -> None:
    source = pl.DataFrame(
        {"user_id": list(range(20)), "items": [[10, 11, 12]] * 20},
        schema={"user_id": pl.Int64, "items": pl.List(pl.Int64)},
    )
    target = pl.DataFrame(
        {
            "user_id": [u for u in range(20) for _ in range(u % 3 + 1)] + [99],
            "item_id": [500 + (u + j) % 150 for u in range(20) for j in range(u % 3 + 1)] + [777],
        }
    )
    index = ItemIndex.from_item_ids(np.array([10, 11, 12]))
    task = cold_start_task(
        source, target, index, max_len=4, valid_share=0.1, test_share=0.2, seed=0
    )
    n_targets = {u: u % 3 + 1 for u in range(20)}
    assert sum(len(r) for split in task.relevant.values() for r in split) == sum(n_targets.values())
    assert len(task.tokens["test"]) == 4 and len(task.tokens["valid"]) == 2
    assert len(task.train) == sum(len(r) for r in task.relevant["train"])
    assert task.train.tokens[0].tolist() == [2, 3, 4, CLS]
    assert 777 in task.target_items  # user 99 has no source sequence but its item is a class
