"""Pretrained checkpoints: round trip, strict loading, and resuming an interrupted run."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from recflow.seq.checkpoint import MODEL_FILE, load_pretrained, save_pretrained
from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.pretrain import PretrainConfig, pretrain
from recflow.seq.sequences import ItemIndex, RaggedTokens
from recflow.train import TrainConfig


def _index() -> ItemIndex:
    return ItemIndex.from_item_ids(np.arange(100, 130))


def test_round_trip_gives_the_same_function_and_item_map(tmp_path: Path) -> None:
    index = _index()
    torch.manual_seed(0)
    model = NextItNet(
        NextItNetConfig(index.n_tokens, channels=8, dilations=(1, 2), n_stacks=2)
    ).eval()
    save_pretrained(model, index, tmp_path, metadata={"epochs": 3})
    # the weights are a plain tensor dict: loadable without unpickling code
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert set(state) == set(model.state_dict())
    loaded, loaded_index, meta = load_pretrained(tmp_path)
    assert loaded.config == model.config
    assert meta == {"epochs": 3}
    np.testing.assert_array_equal(loaded_index.item_ids, index.item_ids)
    x = torch.randint(0, index.n_tokens, (2, 9), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_loading_fails_loudly_on_mismatched_weights(tmp_path: Path) -> None:
    index = _index()
    model = NextItNet(NextItNetConfig(index.n_tokens, channels=8, dilations=(1,), n_stacks=1))
    save_pretrained(model, index, tmp_path)
    other = NextItNet(replace(model.config, channels=16))
    torch.save(other.state_dict(), tmp_path / MODEL_FILE)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(tmp_path)
    state = model.state_dict()
    state.pop("head.bias")
    torch.save(state, tmp_path / MODEL_FILE)
    with pytest.raises(ValueError, match=r"missing \['head.bias'\]"):
        load_pretrained(tmp_path)


def test_saving_refuses_a_model_that_does_not_fit_the_item_index(tmp_path: Path) -> None:
    model = NextItNet(NextItNetConfig(n_tokens=10, channels=8))
    with pytest.raises(ValueError, match="vocabulary"):
        save_pretrained(model, _index(), tmp_path)


def test_pretraining_resumes_after_an_interruption(tmp_path: Path) -> None:
    index = _index()
    rng = np.random.default_rng(0)
    seqs = pl.Series(
        "items", [list(rng.integers(100, 130, size=n)) for n in rng.integers(3, 30, 40)]
    )
    tokens = RaggedTokens.from_items(seqs, index)
    config = NextItNetConfig(index.n_tokens, channels=8, dilations=(1, 2), n_stacks=1, dropout=0.1)
    data = PretrainConfig(max_len=8, batch_size=8, n_negatives=5)
    full = pretrain(tokens, config, data, TrainConfig(epochs=3, lr=1e-2, device="cpu"))
    ckpt = tmp_path / "ckpt"
    pretrain(
        tokens, config, data, TrainConfig(epochs=2, lr=1e-2, device="cpu"), checkpoint_dir=ckpt
    )
    resumed = pretrain(
        tokens, config, data, TrainConfig(epochs=3, lr=1e-2, device="cpu"), checkpoint_dir=ckpt
    )
    assert resumed.train.resumed_from_epoch == 2
    assert [r["loss"] for r in resumed.train.history] == pytest.approx(
        [r["loss"] for r in full.train.history]
    )
    for a, b in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
