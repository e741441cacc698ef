"""MEM and TEM: shapes, the pretraining loss, and a frozen MEM while TEM trains."""

from __future__ import annotations

import pytest
import torch

from recflow.data.synthetic import SyntheticConfig, generate
from recflow.mkt.baselines import JointModel, SingleTowerModel
from recflow.mkt.batches import shuffled_batches
from recflow.mkt.losses import per_entity_bce
from recflow.mkt.losses import target_bce as _bce
from recflow.mkt.mappings import SYNTHETIC
from recflow.mkt.mem import MemConfig, MultiEntityModel, mem_loss
from recflow.mkt.pdl import polarized_distribution_loss
from recflow.mkt.tables import FeatureTables, TableConfig, build_feature_tables
from recflow.mkt.tem import TargetEntityModel, TemConfig
from recflow.train import TrainConfig, train

SMALL_MEM = MemConfig(
    dim=4, aligned_dim=8, n_experts=2, expert_sizes=(16,), independent_sizes=(16,), tower_sizes=(8,)
)
SMALL_TEM = TemConfig(dim=4, hidden_sizes=(16,), tower_sizes=(8,))


@pytest.fixture(scope="module")
def tables() -> FeatureTables:
    ct = generate(SyntheticConfig(n_users=30, n_items=80, n_events=1_500, n_clusters=4, seed=1))
    return build_feature_tables(
        ct.interactions, ct.items, ct.users, SYNTHETIC, TableConfig(sequence_length=5)
    )


def _mem(tables: FeatureTables, config: MemConfig = SMALL_MEM) -> MultiEntityModel:
    torch.manual_seed(0)
    mem = MultiEntityModel(tables.spec(), config)
    mem.embedder.set_item_shared(torch.from_numpy(tables.item_shared))
    return mem


def test_mem_shapes_and_loss_is_bce_plus_gamma_pdl(tables: FeatureTables) -> None:
    mem = _mem(tables)
    batch = {k: v[:64] for k, v in tables.tensors("train").items()}
    k = mem.knowledge(batch)
    assert k.common.shape == (64, 2, 16) and k.independent.shape == (64, 2, 16)
    logits, common, indep = mem.heads(k, batch["entity"])
    assert logits.shape == (64,) and common.shape == (64, 16)
    # each sample's common knowledge comes from its own entity's gate
    rows = torch.arange(64)
    torch.testing.assert_close(common, k.common[rows, batch["entity"]])
    weighting = mem.config.loss_weighting
    want = per_entity_bce(logits, batch["label"], batch["entity"], weighting=weighting) + 0.01 * (
        polarized_distribution_loss(common, indep, batch["entity"])
    )
    torch.testing.assert_close(mem_loss(mem, batch), want)
    assert bool(batch["entity"].eq(0).any()) and bool(batch["entity"].eq(1).any())


def test_mem_without_hfa_concatenates_specific_embeddings(tables: FeatureTables) -> None:
    mem = _mem(tables, MemConfig(**{**SMALL_MEM.__dict__, "use_hfa": False}))
    assert mem.hfa is None
    batch = {k: v[:8] for k, v in tables.tensors("train").items()}
    assert mem(batch).shape == (8,)


def test_tem_training_leaves_mem_unchanged(tables: FeatureTables) -> None:
    mem = _mem(tables)
    before = {k: v.clone() for k, v in mem.state_dict().items()}
    torch.manual_seed(1)
    tem = TargetEntityModel(tables.spec(), mem, SMALL_TEM)
    tem.embedder.set_item_shared(torch.from_numpy(tables.item_shared))
    tem_before = {k: v.clone() for k, v in tem.embedder.state_dict().items()}
    target = tables.tensors("train", "post")
    res = train(
        tem, _bce, shuffled_batches(target, 64), TrainConfig(epochs=1, lr=1e-2, device="cpu")
    )
    for k, v in mem.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, tem_before[k]) for k, v in tem.embedder.state_dict().items())
    assert res.trained_params == res.total_params - sum(p.numel() for p in mem.parameters())
    assert not mem.training  # a frozen MEM stays in eval mode inside a training TEM
    tem.train()
    assert tem.training and not mem.training


def test_unfrozen_mem_trains_with_tem(tables: FeatureTables) -> None:
    mem = _mem(tables)
    before = mem.embedder.user[0].weight.detach().clone()
    tem = TargetEntityModel(tables.spec(), mem, SMALL_TEM, freeze_mem=False)
    target = tables.tensors("train", "post")
    res = train(
        tem, _bce, shuffled_batches(target, 64), TrainConfig(epochs=1, lr=1e-2, device="cpu")
    )
    assert res.trained_params == res.total_params
    assert not torch.equal(mem.embedder.user[0].weight, before)


def test_tem_can_start_from_mem_embeddings(tables: FeatureTables) -> None:
    mem = _mem(tables)
    tem = TargetEntityModel(
        tables.spec(), mem, TemConfig(**{**SMALL_TEM.__dict__, "init_embeddings_from_mem": True})
    )
    assert torch.equal(tem.embedder.item.weight, mem.embedder.item.weight)
    assert tem.embedder.item.weight.data_ptr() != mem.embedder.item.weight.data_ptr()
    # TEM keeps only the target's specific columns: they are MEM's columns 2 and 3 (post)
    assert tem.embedder.specific_columns == [2, 3]
    assert torch.equal(tem.embedder.specific[0].weight, mem.embedder.specific[2].weight)


def test_baselines_score_every_row(tables: FeatureTables) -> None:
    batch = {k: v[:16] for k, v in tables.tensors("train").items()}
    spec = tables.spec()
    assert SingleTowerModel(spec, specific_columns=[2, 3])(batch).shape == (16,)
    for bottom in ("shared", "mmoe"):
        assert JointModel(spec, bottom=bottom)(batch).shape == (16,)
    with pytest.raises(ValueError, match="bottom"):
        JointModel(spec, bottom="ple")
