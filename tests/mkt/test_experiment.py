"""Evaluation by activity bucket, the summary's lift, resumable runs and checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from recflow.data.synthetic import SyntheticConfig, generate
from recflow.mkt.baselines import BaselineConfig
from recflow.mkt.batches import predict_scores
from recflow.mkt.checkpoint import load_mem, load_tem, save_tem
from recflow.mkt.experiment import (
    ExperimentConfig,
    SeedRunner,
    evaluate_target,
    run_experiment,
    summarize,
)
from recflow.mkt.mappings import SYNTHETIC
from recflow.mkt.mem import MemConfig
from recflow.mkt.tables import FeatureTables, TableConfig, build_feature_tables
from recflow.mkt.tem import TemConfig
from recflow.mkt.training import finetune_tem, pretrain_mem, validation_gauc
from recflow.train import TrainConfig

SMALL = ExperimentConfig(
    seeds=(0,),
    models=("mlp_target", "mkt"),
    ablations=("mkt_without_tem_finetuning",),
    batch_size=256,
    pretrain_epochs=1,
    target_epochs=1,
    device="cpu",
    mem=MemConfig(dim=4, aligned_dim=8, n_experts=2, expert_sizes=(8,), independent_sizes=(8,)),
    tem=TemConfig(dim=4, hidden_sizes=(8,)),
    baseline=BaselineConfig(dim=4, hidden_sizes=(8,)),
)


@pytest.fixture(scope="module")
def tables() -> FeatureTables:
    ct = generate(SyntheticConfig(n_users=30, n_items=80, n_events=1_500, n_clusters=4, seed=2))
    return build_feature_tables(
        ct.interactions, ct.items, ct.users, SYNTHETIC, TableConfig(sequence_length=5)
    )


def test_evaluate_target_by_activity_bucket() -> None:
    rows = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3, 3],
            "label": [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0],
            "target_clicks_in_train": [0, 0, 0, 40, 40, 12, 12],
        }
    )
    scores = np.array([0.9, 0.1, 0.95, 0.2, 0.8, 0.5, 0.5])
    got = evaluate_target(rows, scores)
    # user 1: AUC 1/2 over 3 impressions; user 2: AUC 0 over 2; user 3 has one class → skipped
    assert got["gauc"] == pytest.approx((3 * 0.5 + 2 * 0.0) / 5)
    assert (got["gauc_users_used"], got["gauc_users_skipped"]) == (2, 1)
    assert got["gauc[0-10]"] == pytest.approx(0.5) and got["gauc[>30]"] == pytest.approx(0.0)
    assert got["gauc[10-30]"] is None and got["users[10-30]"] == 1


def test_summary_reports_mean_std_and_lift_over_the_mlp() -> None:
    table = pl.DataFrame(
        {
            "model": ["mlp_target", "mlp_target", "mkt", "mkt"],
            "seed": [0, 1, 0, 1],
            "auc": [0.6, 0.62, 0.7, 0.72],
            "gauc": [0.55, 0.57, 0.6, 0.64],
        }
    )
    s = {r["model"]: r for r in summarize(table).to_dicts()}
    assert s["mkt"]["gauc_mean"] == pytest.approx(0.62)
    assert s["mkt"]["gauc_std"] == pytest.approx(np.std([0.6, 0.64], ddof=1))
    assert s["mkt"]["gauc_lift"] == pytest.approx(0.62 - 0.56)
    assert s["mlp_target"]["gauc_lift"] == pytest.approx(0.0)


def test_experiment_resumes_from_its_checkpoints(tables: FeatureTables, tmp_path: Path) -> None:
    first = run_experiment(tables, SMALL, checkpoint_root=tmp_path)
    assert {r["model"] for r in first.rows} == {
        "mlp_target",
        "mkt",
        "mkt_without_tem_finetuning",
        "rate_target",
        "rate_both",
    }
    again = run_experiment(tables, SMALL, checkpoint_root=tmp_path)
    assert all(t["resumed_from_epoch"] == 1 for t in again.training)
    for a, b in zip(first.rows, again.rows, strict=True):
        assert a["auc"] == pytest.approx(b["auc"]) and a["gauc"] == pytest.approx(b["gauc"])


def test_tem_checkpoint_round_trip(tables: FeatureTables, tmp_path: Path) -> None:
    tc = TrainConfig(epochs=1, device="cpu")
    mem, _ = pretrain_mem(tables, SMALL.mem, tc, 256)
    tem, _ = finetune_tem(tables, mem, SMALL.tem, tc, 256)
    save_tem(tem, tmp_path / "tem")
    back = load_tem(tmp_path / "tem")
    x = tables.tensors("test", "post")
    np.testing.assert_allclose(predict_scores(back, x), predict_scores(tem, x), rtol=1e-6)
    with pytest.raises(ValueError, match="not a MEM checkpoint"):
        load_mem(tmp_path / "tem")
    torch.testing.assert_close(back.mem.towers[1].net[0].weight, mem.towers[1].net[0].weight)


def test_each_stage_keeps_its_best_validation_epoch(tables: FeatureTables) -> None:
    """With a validation share, the model a stage hands back scores its best valid GAUC."""
    config = dataclasses.replace(
        SMALL, validation_share=0.2, patience=1, pretrain_epochs=3, target_epochs=3
    )
    split = tables.with_validation(0.2)
    runner = SeedRunner(split, config, seed=0, checkpoint_root=None)
    model = runner.model("mlp_target")
    (record,) = runner.training
    assert 1 <= record["best_epoch"] <= record["epochs_run"] <= 3
    assert validation_gauc(split, "post")(model)["valid_gauc"] == pytest.approx(
        record["valid_gauc"]
    )
    scores = predict_scores(model, split.tensors("valid", "post"))
    labels = split.rows("valid", "post").get_column("label").to_numpy()
    expected = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
    got = validation_gauc(split, "post")(model)["valid_loss"]
    assert got == pytest.approx(expected, rel=1e-5)
    runner.model("finetune")  # source stage selects on source rows, target stage on target
    assert [t["stage"] for t in runner.training[1:]] == ["finetune_source", "finetune_target"]
    assert all(t["best_epoch"] is not None for t in runner.training)


def test_a_validation_split_without_both_labels_is_refused(tables: FeatureTables) -> None:
    split = tables.with_validation(0.2)
    split.frame = split.frame.with_columns(label=pl.lit(0.0))
    with pytest.raises(ValueError, match="both labels"):
        validation_gauc(split, "post")
    with pytest.raises(ValueError, match="with_validation"):
        validation_gauc(tables, "post")  # no valid split at all


def test_summary_without_the_reference_model_has_empty_lifts() -> None:
    table = pl.DataFrame(
        {"model": ["mkt", "mkt"], "seed": [0, 1], "auc": [0.7, 0.72], "gauc": [0.6, 0.64]}
    )
    s = summarize(table).to_dicts()[0]
    assert s["gauc_mean"] == pytest.approx(0.62)
    assert s["gauc_lift"] is None and s["auc_lift"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ("mlp_target", "mtk")}, r"unknown MKT model \['mtk'\]"),
        ({"ablations": ("mkt",)}, r"unknown MKT ablation \['mkt'\]"),
        ({"references": ("rate_all",)}, r"unknown MKT reference \['rate_all'\]"),
        ({"select_by": "valid_acc"}, "select_by must be one of"),
        ({"validation_share": 1.0}, r"validation_share must be in \[0, 1\)"),
    ],
)
def test_experiment_config_refuses_bad_settings_before_training(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **change)


def test_selection_direction_follows_the_metric(tables: FeatureTables) -> None:
    """Stopping on log loss keeps the lowest-loss epoch; on GAUC the highest."""
    split = tables.with_validation(0.2)
    for select_by, mode in (("valid_loss", "min"), ("valid_gauc", "max")):
        runner = SeedRunner(
            split, dataclasses.replace(SMALL, select_by=select_by), 0, checkpoint_root=None
        )
        tc = runner._train_config(2)
        assert (tc.select_by, tc.select_mode) == (select_by, mode)


def test_cli_refuses_an_unknown_model_before_building_the_world(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from recflow.mkt.experiment import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--models", "finetune,mtk", "--events", "10"])  # 10 events: no world could be built
    assert exit_info.value.code == 2
    assert "--models: unknown ['mtk']" in capsys.readouterr().err
