"""The sequences/peterrec asset chain materialized end to end on a tiny synthetic world."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.datasets import synthetic_dataset
from assets.io_manager import JsonHandleIOManager
from assets.resources import StoreResource, TorchDeviceResource
from assets.seq import build_seq_assets
from recflow.seq.checkpoint import load_pretrained
from recflow.seq.finetune import Method


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
    handle = result.output_for_node("synthetic__finetune_comparison")
    table = pl.read_parquet(Path(handle["path"]) / "comparison.parquet")
    tasks = set(table.get_column("task"))
    assert tasks == {"cold_start", "attribute:gender", "attribute:age"}
    for task in tasks:
        methods = set(table.filter(pl.col("task") == task).get_column("method"))
        assert {m.value for m in Method} <= methods
    peter = table.filter(
        (pl.col("method") == "peterrec_serial") & (pl.col("task") == "attribute:gender")
    )
    assert 0 < peter.get_column("share_of_fine_all").item() < 0.5
    model, index, meta = load_pretrained(
        result.output_for_node("synthetic__nextitnet_pretrain")["path"]
    )
    assert model.config.channels == 16 and len(meta["history"]) == 2
    assert index.n_tokens == model.config.n_tokens
