"""The MKT stage functions: artifacts that round-trip, TEM sized by its MEM, and the
comparison that scores the MEM/TEM assets as one seed's MKT exactly as if it had
trained them itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from recflow.artifacts import decode, encode
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.metrics import gauc
from recflow.mkt.baselines import BaselineConfig
from recflow.mkt.batches import predict_scores
from recflow.mkt.experiment import ExperimentConfig, RunConfig, run_experiment
from recflow.mkt.mappings import SYNTHETIC
from recflow.mkt.mem import MemConfig
from recflow.mkt.stages import (
    MemArtifact,
    TemArtifact,
    reuse_blockers,
    run_comparison,
    run_mem,
    run_tem,
)
from recflow.mkt.tables import FeatureTables, TableConfig, build_feature_tables
from recflow.mkt.tem import TemConfig

MEM = MemConfig(dim=4, aligned_dim=8, n_experts=2, expert_sizes=(8,), independent_sizes=(8,))
TEM = TemConfig(dim=99, hidden_sizes=(8,))  # dim is MEM's whatever this says
EXP = ExperimentConfig(
    seeds=(0,),
    models=("mlp_target", "mkt"),
    ablations=("mkt_without_tem_finetuning",),
    references=("rate_target",),
    pretrain_epochs=2,
    target_epochs=2,
    device="cpu",
    baseline=BaselineConfig(dim=4, hidden_sizes=(8,)),
)


@pytest.fixture(scope="module")
def tables() -> FeatureTables:
    ct = generate(SyntheticConfig(n_users=30, n_items=80, n_events=1_500, n_clusters=4, seed=2))
    return build_feature_tables(
        ct.interactions, ct.items, ct.users, SYNTHETIC, TableConfig(sequence_length=5)
    )


@pytest.fixture(scope="module")
def trained(
    tables: FeatureTables, tmp_path_factory: pytest.TempPathFactory
) -> tuple[MemArtifact, TemArtifact, dict]:
    """MEM and TEM trained by their stages with the experiment's settings for seed 0."""
    root = tmp_path_factory.mktemp("stages")
    (root / "mem").mkdir()
    (root / "tem").mkdir()
    mem, _ = run_mem(tables, MEM, EXP.run(2, 0), root / "mem", device="cpu")
    tem, res = run_tem(tables, mem.load(), TEM, EXP.run(2, 0), root / "tem", device="cpu")
    return mem, tem, res.test


def test_artifacts_round_trip_through_their_json(trained: tuple) -> None:
    mem, tem, _ = trained
    for artifact in (mem, tem):
        assert decode(encode(artifact)) == artifact
    assert mem.run_config() == EXP.run(2, 0)
    assert mem.load().config == MEM


def test_tem_takes_mems_embedding_size(trained: tuple) -> None:
    _, tem, _ = trained
    assert tem.tem_config() == dataclasses.replace(TEM, dim=MEM.dim)
    assert tem.load().config.dim == MEM.dim


def test_tem_test_metrics_are_the_saved_models_gauc(tables: FeatureTables, trained: tuple) -> None:
    """The reported GAUC is Σ_u n_u·AUC_u / Σ_u n_u of the saved model's test scores."""
    _, tem, test = trained
    rows = tables.rows("test", "post")
    scores = predict_scores(tem.load(), tables.tensors("test", "post"))
    users, labels = rows.get_column("user_id").to_numpy(), rows.get_column("label").to_numpy()
    assert test["gauc"] == pytest.approx(gauc(users, labels, scores).value, rel=1e-6)
    assert test["impressions"] == rows.height


def test_comparison_scores_the_assets_as_the_models_it_would_train(
    tables: FeatureTables, trained: tuple, tmp_path: Path
) -> None:
    """Reusing the MEM/TEM assets changes nothing: per-seed rows equal a full retrain."""
    mem, tem, test = trained
    artifact, result = run_comparison(tables, mem, tem, EXP, tmp_path)
    assert result.reused_seed == 0 and result.reuse_blockers == []
    reused = [(t["stage"], t["reused"]) for t in result.training if t["reused"]]
    assert reused == [("mkt_mem", True), ("mkt_tem", True)]
    retrained = run_experiment(tables, dataclasses.replace(EXP, mem=MEM, tem=tem.tem_config()))
    assert_frame_equal(result.per_seed, retrained.table())
    summary = pl.read_parquet(artifact.folder / "summary.parquet")
    assert_frame_equal(summary, retrained.summary())
    mkt = result.per_seed.filter(pl.col("model") == "mkt").row(0, named=True)
    assert mkt["gauc"] == pytest.approx(test["gauc"])  # the TEM asset's own test GAUC
    assert artifact.has_table("per_seed")


def test_comparison_retrains_when_the_assets_ran_otherwise(
    tables: FeatureTables, trained: tuple, tmp_path: Path
) -> None:
    mem, tem, _ = trained
    other = dataclasses.replace(mem, run={**mem.run, "lr": 0.5})
    blockers = reuse_blockers(other, tem, EXP, other.load(), tem.load())
    assert blockers == ["mkt_mem's lr is 0.5, the comparison's 0.002"]
    wrong_seed = dataclasses.replace(EXP, seeds=(1,))
    blockers = reuse_blockers(mem, tem, wrong_seed, mem.load(), tem.load())
    assert blockers == ["mkt_mem's seed 0 is not among the comparison's seeds (1,)"]
    _, result = run_comparison(tables, other, tem, EXP, tmp_path)
    assert result.reused_seed is None and not any(t["reused"] for t in result.training)
    assert {t["stage"] for t in result.training} == {"mlp_target", "mkt_mem", "mkt_tem"}


def test_a_tem_on_another_mem_is_not_reused(
    tables: FeatureTables, trained: tuple, tmp_path: Path
) -> None:
    mem, tem, _ = trained
    other, _ = run_mem(tables, MEM, EXP.run(1, 0), tmp_path, device="cpu")
    other = dataclasses.replace(other, run=mem.run)  # same settings claimed, other weights
    blockers = reuse_blockers(other, tem, EXP, other.load(), tem.load())
    assert blockers == ["mkt_tem was fine-tuned on another MEM than mkt_mem's"]


def test_run_config_is_the_experiments_default_stated_once() -> None:
    run, exp = RunConfig(), ExperimentConfig()
    assert exp.run(exp.pretrain_epochs, run.seed) == run
    assert MemConfig().loss_weighting == "volume"
    with pytest.raises(ValueError, match="select_by"):
        RunConfig(select_by="valid_f1")
    assert exp.target_epochs == run.epochs
