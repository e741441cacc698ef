"""The sequences/peterrec asset chain materialized end to end on a tiny synthetic world,
and the Launchpad configs the chain's assets generate from recflow's dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.config import CONFIG_SOURCES
from assets.datasets import synthetic_dataset
from assets.io_manager import JsonHandleIOManager
from assets.resources import StoreResource, TorchDeviceResource
from assets.seq import build_seq_assets
from recflow.artifacts import EvaluationArtifact
from recflow.seq.finetune import Method
from recflow.seq.stages import FINETUNE_LR, FinetuneConfig, PretrainedArtifact


def _config_defaults(asset: dg.AssetsDefinition) -> dict:
    fields = asset.op.config_schema.config_type.fields
    return {name: f.default_value if f.default_provided else None for name, f in fields.items()}


def test_launchpad_configs_carry_the_library_defaults() -> None:
    assets = {a.key.path[-1]: a for a in build_seq_assets("ml100k")}
    assert set(assets) == {
        "seq_sequences",
        "seq_downstream_splits",
        "nextitnet_pretrain",
        *(f"finetune_{m.value}" for m in Method),
        "finetune_comparison",
    }
    assert {a.group_names_by_key[a.key] for a in assets.values()} == {
        "ml100k_sequences",
        "ml100k_peterrec",
    }
    for m in Method:  # each method's own step size, visible in the Launchpad
        defaults = _config_defaults(assets[f"finetune_{m.value}"])
        assert defaults["lr"] == FINETUNE_LR[m]
        assert defaults["patience"] == FinetuneConfig().patience
        assert "select_by" not in defaults and "device" not in defaults
    splits = _config_defaults(assets["seq_downstream_splits"])
    assert splits["attributes"] == {
        "gender": None,
        "age": [18.0, 25.0, 35.0, 45.0, 56.0],
        "occupation": None,
    }
    assert splits["split_seed"] == 0 and splits["n_negatives"] == 99
    sequences = _config_defaults(assets["seq_sequences"])
    assert sequences["target_genres"] == ["Animation", "Children"]
    assert "attributes" not in sequences and "split_seed" not in sequences
    pretrain = _config_defaults(assets["nextitnet_pretrain"])
    assert pretrain["dilations"] == [1, 2, 4, 8] and pretrain["max_len"] == 50
    assert "n_tokens" not in pretrain


def test_every_library_field_is_in_a_launchpad_config_or_excluded_with_a_reason() -> None:
    build_seq_assets("synthetic")
    mine = {s.config.__name__: s for s in CONFIG_SOURCES if s.config.__module__ == "assets.seq"}
    assert {
        "SeqSequencesConfig",
        "SeqDownstreamSplitsConfig",
        "NextItNetPretrainConfig",
        "FinetuneFineAllConfig",
        "FinetunePeterrecSerialConfig",
    } <= set(mine)
    for name, source in mine.items():
        fields = set(source.config.model_fields)
        library = {f.name for lib in source.library for f in dataclasses.fields(lib)}
        assert fields <= library, f"{name}: fields no library class reads"
        for field in library - fields:
            assert source.excluded.get(field), f"{name}: {field} neither settable nor excused"


@pytest.mark.slow
def test_seq_chain_materializes_into_one_comparison_table(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    small = {"n_users": 300, "n_items": 600, "n_events": 30_000, "n_clusters": 10, "seed": 1}
    tune = {"epochs": 1, "batch_size": 64}
    ops = {
        "synthetic__dataset": {"config": small},
        "synthetic__nextitnet_pretrain": {
            "config": {
                "channels": 16,
                "dilations": [1, 2],
                "n_stacks": 1,
                "max_len": 12,
                "epochs": 2,
                "batch_size": 64,
            }
        },
        **{f"synthetic__finetune_{m.value}": {"config": tune} for m in Method},
        "synthetic__seq_downstream_splits": {"config": {"split_seed": 3}},
    }
    result = dg.materialize(
        [synthetic_dataset, *build_seq_assets("synthetic")],
        resources={
            "store": StoreResource(root=root),
            "torch_device": TorchDeviceResource(device="cpu"),
            "io_manager": JsonHandleIOManager(root=root),
        },
        run_config={"ops": ops},
    )
    assert result.success
    comparison = result.output_for_node("synthetic__finetune_comparison")
    assert isinstance(comparison, EvaluationArtifact)
    table = pl.read_parquet(Path(comparison.path) / "comparison.parquet")
    tasks = set(table.get_column("task"))
    assert tasks == {"cold_start", "attribute:gender", "attribute:age"}
    for task in tasks:
        methods = set(table.filter(pl.col("task") == task).get_column("method"))
        assert {m.value for m in Method} <= methods
    peter = table.filter(
        (pl.col("method") == "peterrec_serial") & (pl.col("task") == "attribute:gender")
    )
    assert 0 < peter.get_column("share_of_fine_all").item() < 0.5
    # split seed 3: every method and the baselines were scored on the split's test users
    splits = result.output_for_node("synthetic__seq_downstream_splits").load()
    summary = {r["task"]: r for r in comparison.table("summary")}
    assert {t: r["test_users_sha"] for t, r in summary.items()} == {
        t: splits.test_users_sha(t) for t in tasks
    }
    for m in Method:
        rows = result.output_for_node(f"synthetic__finetune_{m.value}").load()["rows"]
        assert {r["task"]: r["test_users_sha"] for r in rows} == {
            t: r["test_users_sha"] for t, r in summary.items()
        }
    pre = result.output_for_node("synthetic__nextitnet_pretrain")
    assert isinstance(pre, PretrainedArtifact) and pre.max_len == 12
    model, index, meta = pre.load()
    assert model.config.channels == 16 and len(meta["history"]) == 2
    assert index.n_tokens == model.config.n_tokens
