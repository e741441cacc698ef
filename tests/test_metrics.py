"""Metrics against hand-computed values and brute-force definitions."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recflow import metrics


def test_recall_and_r_precision_by_hand() -> None:
    ranked = [5, 3, 9, 1, 7]
    assert metrics.recall_at_k(ranked, {3, 7, 8}, 2) == pytest.approx(1 / 3)
    assert metrics.recall_at_k(ranked, {3, 7, 8}, 5) == pytest.approx(2 / 3)
    # |S| = 3 → top 3 = {5, 3, 9}: one hit.
    assert metrics.r_precision(ranked, {3, 7, 8}) == pytest.approx(1 / 3)


def test_ndcg_by_hand() -> None:
    ranked = [5, 3, 9, 1]
    # hits at positions 1 and 3 (0-based): 1/log2(3) + 1/log2(5); ideal for |S|=2: 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert metrics.ndcg_at_k(ranked, {3, 1}, 4) == pytest.approx(expected)
    assert metrics.ndcg_at_k([1, 3], {3, 1}, 2) == pytest.approx(1.0)
    assert metrics.ndcg_at_k([2, 4], {3, 1}, 2) == 0.0


def test_empty_relevant_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty relevant"):
        metrics.recall_at_k([1, 2], set(), 2)


def test_sampled_ranking_metrics() -> None:
    # positive in column 0; ties count against it
    scores = np.array([[0.9, 0.1, 0.2], [0.5, 0.7, 0.5], [0.1, 0.2, 0.3]])
    rank = metrics.rank_of_positive(scores)
    assert rank.tolist() == [0, 2, 2]
    assert metrics.hit_rate_at_k(rank, 1) == pytest.approx(1 / 3)
    assert metrics.mrr(rank) == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)
    assert metrics.ndcg_from_rank(rank, 5) == pytest.approx((1 + 2 / math.log2(4)) / 3)
    assert metrics.ndcg_from_rank(rank, 2) == pytest.approx(1 / 3)


def test_gauc_by_hand() -> None:
    users = np.array([1, 1, 1, 2, 2, 2, 2, 3, 3])
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 1, 1])
    scores = np.array([0.9, 0.5, 0.95, 0.8, 0.2, 0.3, 0.1, 0.4, 0.6])
    # user 1: positive 0.9 vs negatives {0.5, 0.95} → AUC 1/2, 3 impressions
    # user 2: positives {0.8, 0.2} vs negatives {0.3, 0.1} → pairs won 2 + 1 of 4 → 3/4, 4 impressions
    # user 3: one class only → skipped
    res = metrics.gauc(users, labels, scores)
    assert res.value == pytest.approx((3 * 0.5 + 4 * 0.75) / 7)
    assert (res.users_used, res.users_skipped, res.impressions_used) == (2, 1, 7)


def test_gauc_equals_auc_for_one_user() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    scores = rng.random(50)
    res = metrics.gauc(np.zeros(50, dtype=int), labels, scores)
    assert res.value == pytest.approx(roc_auc_score(labels, scores))


def test_classification_metrics() -> None:
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    assert metrics.accuracy(y, p) == pytest.approx(3 / 5)
    # per-class F1: class0 P=1/2 R=1/2 → 1/2; class1 P=2/3 R=1 → 4/5; class2 → 0
    assert metrics.macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 0) / 3)
