"""End to end: the mkt asset group materializes on a tiny synthetic world."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.datasets import synthetic_dataset
from assets.io_manager import JsonHandleIOManager
from assets.mkt import build_mkt_assets
from assets.resources import StoreResource, TorchDeviceResource


@pytest.mark.slow
def test_mkt_group_materializes(tmp_path: Path) -> None:
    store = StoreResource(root=str(tmp_path / "store"))
    small = {
        "dim": 4,
        "aligned_dim": 8,
        "n_experts": 2,
        "expert_sizes": [8],
        "independent_sizes": [8],
        "tower_sizes": [4],
        "epochs": 1,
        "batch_size": 128,
    }
    run_config = {
        "ops": {
            "synthetic__dataset": {
                "config": {
                    "n_users": 30,
                    "n_items": 80,
                    "n_events": 1500,
                    "n_clusters": 4,
                    "late_adopter_share": 0.3,  # the MKT experiment's world, from the UI
                }
            },
            "synthetic__mkt_mem": {"config": small},
            "synthetic__mkt_tem": {
                "config": {"hidden_sizes": [8], "tower_sizes": [4], "epochs": 1, "batch_size": 128}
            },
            "synthetic__mkt_comparison": {
                "config": {
                    "seeds": [0],
                    "pretrain_epochs": 1,
                    "target_epochs": 1,
                    "batch_size": 256,
                }
            },
        }
    }
    result = dg.materialize(
        [synthetic_dataset, *build_mkt_assets("synthetic")],
        resources={
            "store": store,
            "torch_device": TorchDeviceResource(device="cpu"),
            "io_manager": JsonHandleIOManager(root=store.root),
        },
        run_config=run_config,
    )
    assert result.success
    tem_meta = result.asset_materializations_for_node("synthetic__mkt_tem")[0].metadata
    assert 0.0 <= tem_meta["test GAUC"].value <= 1.0
    mem_meta = result.asset_materializations_for_node("synthetic__mkt_mem")[0].metadata
    assert mem_meta["trained_params"].value == mem_meta["total_params"].value
    handle = result.output_for_node("synthetic__mkt_comparison")
    per_seed = pl.read_parquet(Path(handle["path"]) / "per_seed.parquet")
    assert per_seed.height == 11  # 5 models + 4 ablations, one seed; 2 count references
    assert set(per_seed.get_column("model")) >= {"mlp_target", "finetune", "mkt", "rate_both"}
