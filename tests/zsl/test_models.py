"""STL / ZSL_ME / ZSL_TE trained on a small synthetic world: monotone loss, determinism,
the ZSL_TE context vectors are the bag-of-words encodings, CPU = CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recflow.zsl.models import METHODS, ZslConfig, train


@pytest.mark.parametrize("method", METHODS)
def test_loss_decreases_and_is_reproducible(small_world, method):
    inputs, _ = small_world
    cfg = ZslConfig(method=method, dim=8, lam=1.0, omega0=0.01, text_omega0=0.01, iterations=4)
    seen = []
    model = train(inputs, cfg, on_progress=lambda step, total, v: seen.append((step, total)))
    h = np.array(model.loss_history)
    assert np.isfinite(h).all() and len(h) == 5
    # each block is solved exactly (ZSL_TE's words by CG from the current point)
    assert (np.diff(h) <= 1e-6 * h[:-1]).all(), h
    assert h[-1] < 0.7 * h[0]
    assert seen == [(i, 4) for i in range(1, 5)]
    again = train(inputs, cfg)
    np.testing.assert_array_equal(model.item_vectors, again.item_vectors)
    assert model.item_vectors.shape == (inputs.n_items, 8)
    assert model.word_vectors.shape == (len(inputs.vocab), 8)
    assert (model.context_vectors is None) == (method == "stl")


def test_te_contexts_are_bag_of_words_encodings(small_world):
    inputs, _ = small_world
    model = train(inputs, ZslConfig(method="zsl_te", dim=6, iterations=2, omega0=0.01))
    b = inputs.bag_of_words().to_scipy()
    np.testing.assert_allclose(model.context_vectors, b @ model.word_vectors, rtol=1e-5, atol=1e-6)
    # row j of B is item j's term counts over their total
    row = b[[5]].toarray().ravel()
    counts = inputs.item_terms.to_scipy()[[5]].toarray().ravel()
    np.testing.assert_allclose(row, counts / counts.sum())


def test_config_validation():
    with pytest.raises(ValueError, match="method"):
        ZslConfig(method="nope")
    with pytest.raises(ValueError, match="dtype"):
        ZslConfig(dtype="float16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", METHODS)
def test_cuda_matches_cpu(small_world, method):
    inputs, _ = small_world
    cfg = ZslConfig(method=method, dim=8, iterations=3, omega0=0.01, dtype="float64")
    cpu = train(inputs, cfg, device="cpu")
    gpu = train(inputs, cfg, device="cuda")
    np.testing.assert_allclose(gpu.loss_history, cpu.loss_history, rtol=1e-6)
    np.testing.assert_allclose(gpu.item_vectors, cpu.item_vectors, rtol=1e-4, atol=1e-6)
