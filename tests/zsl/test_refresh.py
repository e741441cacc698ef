"""Warm-start refresh: old vectors carried over by id/term, new ones added, then trained."""

from __future__ import annotations

import numpy as np
import pytest

from recflow.text import TextConfig
from recflow.zsl.artifact import load_model, save_model
from recflow.zsl.models import ZslConfig, train
from recflow.zsl.refresh import carry_over, warm_start_refresh

from .conftest import inputs_from_tables


def test_carry_over_by_key():
    old = np.array([[1.0, 1.0], [2.0, 2.0]])
    fresh = np.zeros((3, 2))
    out, kept = carry_over(["b", "a"], old, ["a", "c", "b"], fresh)
    assert kept == 2
    np.testing.assert_array_equal(out, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("method", ["zsl_te", "zsl_me"])
def test_refresh_keeps_old_vectors_and_adds_new(small_world, tmp_path, method):
    _, tables = small_world
    last_day = int(tables.interactions.get_column("timestamp").max()) - 86_400
    before = inputs_from_tables(tables, until=last_day)
    today = inputs_from_tables(tables)
    cfg = ZslConfig(method=method, dim=8, omega0=0.01, lam=1.0, iterations=4)
    old = train(before, cfg)
    save_model(tmp_path / "old", old, before.vocab, before.item_ids, TextConfig())
    prev = load_model(tmp_path / "old")

    same, stats = warm_start_refresh(prev, today, iterations=0)
    new_ids = set(today.item_ids.tolist()) - set(before.item_ids.tolist())
    assert stats.new_items == len(new_ids) > 0  # the synthetic world releases new items
    assert stats.kept_items == len(set(today.item_ids.tolist()) & set(before.item_ids.tolist()))
    old_pos = {k: i for i, k in enumerate(before.item_ids.tolist())}
    for j, k in enumerate(today.item_ids.tolist()):
        if k in old_pos:
            np.testing.assert_array_equal(same.item_vectors[j], prev.item_vectors[old_pos[k]])
    term_pos = before.vocab.index
    for j, t in enumerate(today.vocab.terms):
        if t in term_pos:
            np.testing.assert_array_equal(same.word_vectors[j], prev.word_vectors[term_pos[t]])
    assert stats.new_terms == len(set(today.vocab.terms) - set(before.vocab.terms))

    refreshed, _ = warm_start_refresh(prev, today, iterations=2)
    h = refreshed.loss_history
    assert h[-1] < h[0] and np.isfinite(refreshed.item_vectors).all()
    # warm start begins far closer to today's optimum than a random start does
    cold = train(today, ZslConfig(method=method, dim=8, omega0=0.01, lam=1.0, iterations=0))
    assert h[0] < 0.5 * cold.loss_history[0]


def test_refresh_rejects_other_dim(small_world, tmp_path):
    inputs, _ = small_world
    m = train(inputs, ZslConfig(dim=4, iterations=1))
    save_model(tmp_path / "m", m, inputs.vocab, inputs.item_ids, TextConfig())
    with pytest.raises(ValueError, match="dim"):
        warm_start_refresh(load_model(tmp_path / "m"), inputs, config=ZslConfig(dim=8))
