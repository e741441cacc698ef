"""End to end: the mkt asset group materializes on a tiny synthetic world."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.datasets import synthetic_dataset
from assets.io_manager import JsonHandleIOManager
from assets.mkt import build_mkt_assets
from assets.report import build_sections
from assets.resources import StoreResource, TorchDeviceResource
from recflow.mkt.batches import predict_scores


def _gauc_by_pairs(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """GAUC from its definition: per user with both labels, the share of (clicked,
    not clicked) pairs ordered right (ties ½), weighted by the user's impressions."""
    total = weight = 0.0
    for u in np.unique(users):
        y, s = labels[users == u], scores[users == u]
        pos, neg = s[y == 1], s[y == 0]
        if len(pos) and len(neg):
            pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
            total += len(y) * pairs.mean()
            weight += len(y)
    return total / weight


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
        "batch_size": 256,
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
                "config": {"hidden_sizes": [8], "tower_sizes": [4], "epochs": 1, "batch_size": 256}
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
    # the TEM's reported test GAUC is that of the saved model, computed from the definition
    tem_meta = result.asset_materializations_for_node("synthetic__mkt_tem")[0].metadata
    tables = result.output_for_node("synthetic__mkt_feature_tables").load()
    test = tables.rows("test", "post")
    scores = predict_scores(
        result.output_for_node("synthetic__mkt_tem").load(), tables.tensors("test", "post")
    )
    users, labels = test.get_column("user_id").to_numpy(), test.get_column("label").to_numpy()
    want = _gauc_by_pairs(users, labels, scores)
    assert tem_meta["test GAUC"].value == pytest.approx(want, rel=1e-9)
    mem_meta = result.asset_materializations_for_node("synthetic__mkt_mem")[0].metadata
    assert mem_meta["trained_params"].value == mem_meta["total_params"].value
    # the comparison scored the mem/tem assets as seed 0's MKT (same settings, same seed)
    cmp_meta = result.asset_materializations_for_node("synthetic__mkt_comparison")[0].metadata
    assert cmp_meta["assets reused as seed"].value == 0
    handle = result.output_for_node("synthetic__mkt_comparison")
    per_seed = pl.read_parquet(Path(handle.path) / "per_seed.parquet")
    assert per_seed.height == 11  # 5 models + 4 ablations, one seed; 2 count references
    assert set(per_seed.get_column("model")) >= {"mlp_target", "finetune", "mkt", "rate_both"}
    mkt = per_seed.filter(pl.col("model") == "mkt").row(0, named=True)
    assert mkt["gauc"] == pytest.approx(want, rel=1e-9)
    assert {r["model"] for r in handle.table()} == set(per_seed.get_column("model"))
    (section,) = build_sections({"mkt_comparison": handle})  # what the report reads
    assert section.tasks and "No summary.parquet" not in section.intro
