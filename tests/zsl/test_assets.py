"""The zsl asset group materialized end to end on a small synthetic world."""

from __future__ import annotations

import dataclasses

import dagster as dg
import pytest

from assets.cooc import build_cooc_assets
from assets.datasets import synthetic_dataset
from assets.io_manager import JsonHandleIOManager
from assets.resources import StoreResource, TorchDeviceResource
from assets.zsl import (
    ZslModelConfig,
    ZslRefreshConfig,
    ZslSyntheticModelConfig,
    ZslSyntheticVocabularyConfig,
    ZslVocabularyConfig,
    build_zsl_assets,
)
from recflow.cli import main
from recflow.text import TextConfig
from recflow.zsl.models import ZslConfig
from recflow.zsl.queries import TagSplitConfig
from recflow.zsl.refresh import RefreshConfig
from recflow.zsl.stages import ModelSettings


def _names(*library: type) -> set[str]:
    return {f.name for cls in library for f in dataclasses.fields(cls)}


def test_configs_are_the_library_dataclasses():
    # every solver field is settable except the method, which each model asset fixes
    model_fields = _names(ZslConfig, ModelSettings) - {"method"}
    assert set(ZslModelConfig.model_fields) == model_fields
    assert set(ZslSyntheticModelConfig.model_fields) == model_fields
    assert ZslModelConfig().model_dump() == {
        f: getattr(ZslConfig(), f, getattr(ModelSettings(), f, None)) for f in model_fields
    }
    assert set(ZslVocabularyConfig.model_fields) == _names(TextConfig, TagSplitConfig)
    assert ZslVocabularyConfig().tag_text_share == 0.5
    assert ZslSyntheticVocabularyConfig().tag_text_share == 0.0  # synonyms never item text
    assert ZslRefreshConfig().model_dump() == dataclasses.asdict(RefreshConfig())


def test_groups_say_the_dataset():
    groups = {
        a.group_names_by_key[k]
        for a in build_zsl_assets("ml_small")
        if isinstance(a, dg.AssetsDefinition) and not isinstance(a, dg.AssetChecksDefinition)
        for k in a.keys
    }
    assert groups == {"ml_small_zsl"}


@pytest.mark.slow
def test_zsl_group_materializes_and_search_answers(tmp_path, capsys):
    root = str(tmp_path / "store")
    model_cfg = {"dim": 8, "lam": 1.0, "omega0": 0.01, "text_omega0": 0.01, "iterations": 3}
    ops = {
        "synthetic__dataset": {
            "config": {
                "n_users": 200,
                "n_items": 200,
                "n_events": 20_000,
                "n_clusters": 8,
                "seed": 3,
            }
        },
        **{f"synthetic__{m}_model": {"config": model_cfg} for m in ("stl", "zsl_me", "zsl_te")},
    }
    result = dg.materialize(
        [synthetic_dataset, *build_cooc_assets("synthetic"), *build_zsl_assets("synthetic", True)],
        resources={
            "store": StoreResource(root=root),
            "torch_device": TorchDeviceResource(device="cpu"),
            "io_manager": JsonHandleIOManager(root=root),
        },
        run_config={"ops": ops},
    )
    assert result.success
    checks = {
        (c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()
    }
    assert (
        checks[("zsl_te_model", "loss_decreasing")] and checks[("zsl_me_model", "finite_vectors")]
    )
    keys = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert {
        "zsl_reconstruction",
        "zsl_queries",
        "zsl_synonyms",
        "zsl_te_refresh",
        "zsl_search_index",
        "zsl_query_sensitivity",
    } <= keys
    assert checks[("stl_model", "query_dependent")]
    assert main(["search", "bakoti", "--store", root, "--dataset", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert "search index" in out and "fusion weights: lexical" in out
    assert (
        main(
            [
                "search",
                "bakoti",
                "--store",
                root,
                "--dataset",
                "synthetic",
                "--vectors-only",
                "--model",
                "zsl_te",
            ]
        )
        == 0
    )
    assert "zsl_te model" in capsys.readouterr().out
