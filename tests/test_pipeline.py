"""The Dagster graph end to end: definitions load, assets materialize on real and
synthetic data, checks pass, bad input fails clearly and keeps the last good version,
and raw data versions follow file content."""

import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import dagster as dg
import polars as pl
import pytest

from assets.cooc import build_cooc_assets
from assets.datasets import build_file_dataset_asset, synthetic_dataset
from assets.groups import group_name
from assets.io_manager import JsonHandleIOManager
from assets.metadata import INLINE_MARKDOWN_CHARS, bar_chart, line_chart
from assets.raw import build_raw_source, raw_files_key
from assets.resources import DataSourcesResource, StoreResource
from jobs.definitions import defs
from recflow.data.registry import FILE_DATASETS
from recflow.store import ArtifactStore

REPO = Path(__file__).resolve().parent.parent
ML_SMALL = REPO / "data" / "ml-latest-small"
# every asset sits in the group <dataset>_<stage> (the dataset is the first key part)
STAGE_OF = {
    "raw_files": "raw",
    "daily_files": "raw",
    "dataset": "canonical",
    "daily_interactions": "canonical",
    "cooc_matrix": "cooc",
    "seq_sequences": "sequences",
    "seq_downstream_splits": "sequences",
    "nextitnet_pretrain": "peterrec",
    "report": "report",
}
STAGE_OF_PREFIX = {"zsl_": "zsl", "stl_": "zsl", "finetune_": "peterrec", "mkt_": "mkt"}


def _stage(name: str) -> str:
    """The stage an asset named ``name`` belongs to (a new name must be added here)."""
    if name in STAGE_OF:
        return STAGE_OF[name]
    stages = [s for prefix, s in STAGE_OF_PREFIX.items() if name.startswith(prefix)]
    assert len(stages) == 1, f"no stage known for the asset name {name!r}"
    return stages[0]


SMALL_SYNTHETIC = {"n_users": 300, "n_items": 400, "n_events": 30_000, "n_clusters": 8, "seed": 3}


def _resources(root: Path, ml_small_dir: Path = ML_SMALL) -> dict[str, object]:
    return {
        "store": StoreResource(root=str(root)),
        "io_manager": JsonHandleIOManager(root=str(root)),
        "data_sources": DataSourcesResource(movielens_small_dir=str(ml_small_dir)),
    }


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed
        for e in result.get_asset_check_evaluations()
    }


def test_definitions_load_with_the_default_graph() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for name in ("ml_small", "synthetic"):
        assert f"{name}/dataset" in keys and f"{name}/cooc_matrix" in keys
    for name in FILE_DATASETS:
        assert f"{name}/raw_files" in keys and f"{name}/dataset" in keys
    job = defs.resolve_job_def("materialize_default")
    in_job = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    assert "ml_small/cooc_matrix" in in_job and "ml_small/zsl_te_model" in in_job
    assert not any(k.startswith(("synthetic/", "ml100k/", "ml1m/", "tenrec/")) for k in in_job)
    synthetic = defs.resolve_job_def("materialize_synthetic")
    in_synthetic = {k.to_user_string() for k in synthetic.asset_layer.executable_asset_keys}
    assert {"synthetic/cooc_matrix", "synthetic/mkt_comparison"} <= in_synthetic
    assert all(k.startswith("synthetic/") for k in in_synthetic)
    daily = defs.resolve_job_def("daily_refresh")
    in_daily = {k.to_user_string() for k in daily.asset_layer.executable_asset_keys}
    assert {"ml_small/cooc_matrix", "ml_small/zsl_te_refresh"} <= in_daily
    assert "ml_small/zsl_te_model" not in in_daily  # full retrains are not daily work
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        expected = group_name(key.path[0], _stage(key.path[-1]))
        assert node.group_name == expected, f"{key.to_user_string()}: {node.group_name}"
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.description, f"{key.to_user_string()} has no description"
        assert node.code_version, f"{key.to_user_string()} has no code version"


def test_jobs_select_whole_groups() -> None:
    """A chain job is the union of its dataset's groups, raw source included."""
    graph = defs.resolve_asset_graph()
    job = defs.resolve_job_def("materialize_default")
    in_job = set(job.asset_layer.executable_asset_keys)
    ml_small = {k for k in graph.get_all_asset_keys() if k.path[0] == "ml_small"}
    assert in_job == ml_small
    assert raw_files_key("ml_small") in in_job


@pytest.mark.slow
def test_synthetic_graph_materializes_and_checks_pass(tmp_path: Path) -> None:
    result = dg.materialize(
        [synthetic_dataset, *build_cooc_assets("synthetic")],
        resources=_resources(tmp_path),
        run_config={"ops": {"synthetic__dataset": {"config": SMALL_SYNTHETIC}}},
    )
    assert result.success
    checks = _check_results(result)
    assert len(checks) == 5 and all(checks.values()), checks
    handle = result.output_for_node("synthetic__cooc_matrix")
    matrix = pl.read_parquet(handle.matrix)
    assert matrix.height > 0
    assert matrix.group_by("row").len().get_column("len").max() <= 250
    mat = result.asset_materializations_for_node("synthetic__cooc_matrix")[0]
    assert mat.metadata["nnz"].value == matrix.height


@pytest.mark.slow
def test_movielens_graph_on_the_bundled_data(tmp_path: Path) -> None:
    ds = FILE_DATASETS["ml_small"]
    result = dg.materialize(
        [build_raw_source(ds), build_file_dataset_asset(ds), *build_cooc_assets("ml_small")],
        resources=_resources(tmp_path),
        selection=dg.AssetSelection.key_prefixes(["ml_small"])
        - dg.AssetSelection.keys(raw_files_key("ml_small")),
    )
    assert result.success
    meta = result.asset_materializations_for_node("ml_small__dataset")[0].metadata
    assert meta["interactions"].value == 100_836
    assert meta["items"].value == 9_742
    assert meta["users"].value == 610
    assert all(_check_results(result).values())
    cooc_meta = result.asset_materializations_for_node("ml_small__cooc_matrix")[0].metadata
    assert cooc_meta["events"].value == 100_836


def test_bad_input_fails_clearly_and_keeps_the_previous_version(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(ML_SMALL, raw)
    for p in raw.iterdir():
        p.chmod(0o644)
    ds = FILE_DATASETS["ml_small"]
    asset = build_file_dataset_asset(ds)
    store_root = tmp_path / "store"
    ok = dg.materialize([asset], resources=_resources(store_root, raw))
    assert ok.success
    good = ArtifactStore(store_root).latest("ml_small/dataset")

    lines = (raw / "ratings.csv").read_text().splitlines()
    lines[5] = "1,50,four,964982931"
    (raw / "ratings.csv").write_text("\n".join(lines) + "\n")
    bad = dg.materialize([asset], resources=_resources(store_root, raw), raise_on_error=False)
    assert not bad.success
    failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "ratings.csv" in message and "rating" in message and "(1 rows)" in message
    assert ArtifactStore(store_root).latest("ml_small/dataset") == good


def test_raw_data_version_follows_content(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(ML_SMALL, raw)
    for p in raw.iterdir():
        p.chmod(0o644)
    source = build_raw_source(FILE_DATASETS["ml_small"])
    instance = dg.DagsterInstance.ephemeral()
    job_defs = dg.Definitions(
        assets=[source],
        jobs=[dg.define_asset_job("observe", selection=[raw_files_key("ml_small")])],
        resources=_resources(tmp_path / "store", raw),
    )
    job = job_defs.resolve_job_def("observe")

    def observed_version() -> str:
        assert job.execute_in_process(instance=instance).success
        record = instance.get_latest_data_version_record(raw_files_key("ml_small"))
        assert record is not None
        return record.asset_event.tags["dagster/data_version"]

    first = observed_version()
    assert observed_version() == first  # unchanged content, same version
    with (raw / "movies.csv").open("a") as f:
        f.write('999999,"New Movie (2020)",Drama\n')
    changed = observed_version()
    assert changed != first


def test_charts_fit_inline_in_the_ui() -> None:
    """The UI shows markdown metadata in place below 1,000 characters: the matrix
    histogram is an SVG that fits, bars as tall as their counts (hand-computed)."""
    chart = bar_chart(["1", "2", "4"], [10, 40, 20], "neighbours", "neighbours").value
    assert len(chart) < INLINE_MARKDOWN_CHARS
    prefix = "![chart](data:image/svg+xml,"
    assert chart.startswith(prefix)
    svg = unquote(chart[len(prefix) : -1])
    # plot area y from 6 (top) to 92 (zero): 40 → top 6, 20 → 92 - 86/2 = 49, 10 → 70.5
    bars = re.search(r"<path d='([^']*)' fill='steelblue'/>", svg).group(1)
    assert [int(v) for v in re.findall(r"V(\d+)h", bars)] == [70, 6, 49]
    assert ">40<" in svg and ">1<" in svg and ">4<" in svg  # y max, first and last bucket
    long = line_chart({"loss": [1 / (i + 1) for i in range(500)]}, "loss", "step", "loss")
    assert len(long.value) < INLINE_MARKDOWN_CHARS
