"""The Spark engine equals the DuckDB engine cell by cell (``recflow.cooc_spark``).

DuckDB's ``build_cooc`` is held to the literal reference in ``test_cooc.py``; here Spark
is held to DuckDB on the bundled ml-latest-small, on a 1M-event long-tailed log, and on
small random logs in every window mode: the same item index, the same (row, col, count)
in the same order, weights within 1e-12, the same statistics. One local[2] Spark session
(a JVM) serves the whole module. Needs the ``spark`` extra and Java 17+, which
``scripts/test.sh`` installs (and then requires: RECFLOW_REQUIRE_SPARK=1).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recflow.cooc import CoocConfig, build_cooc, read_cooc
from recflow.data.dataset import write_dataset
from recflow.data.registry import FILE_DATASETS
from recflow.data.validate import DataValidationError
from tests.test_cooc import random_config, random_log

if os.environ.get("RECFLOW_REQUIRE_SPARK"):  # scripts/test.sh (CI): a missing extra fails
    import pyspark  # noqa: F401
else:
    pytest.importorskip("pyspark", reason="the spark extra: pip install -e '.[spark]'")

from recflow.cooc_spark import SparkSettings, build_cooc_spark, spark_session  # noqa: E402

pytestmark = pytest.mark.slow
ML_SMALL = Path(__file__).resolve().parent.parent / "data" / "ml-latest-small"
RUN_ONLY = ("seconds", "inputs", "config", "engine")  # per-run facts, not results


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    with spark_session(SparkSettings(master="local[2]", shuffle_partitions=4)) as session:
        yield session


def assert_same_matrix(duck_dir: Path, spark_dir: Path, duck_stats: dict, spark_stats: dict):
    (dm, di), (sm, si) = read_cooc(duck_dir), read_cooc(spark_dir)
    assert si.schema == di.schema and sm.schema == dm.schema
    assert si.equals(di)
    assert sm.select("row", "col", "count").equals(dm.select("row", "col", "count"))
    for column in ("row_weight", "col_weight"):
        diff = (sm.get_column(column) - dm.get_column(column)).abs().max()
        assert diff is None or diff <= 1e-12, column
    same = {k: v for k, v in duck_stats.items() if k not in RUN_ONLY}
    assert {k: spark_stats[k] for k in same} == same  # integer counts and their ratios


def both(spark, source: Path, tmp: Path, config: CoocConfig = CoocConfig()) -> None:  # noqa: B008
    duck = build_cooc(source, tmp / "duck", config)
    got = build_cooc_spark(source, tmp / "spark", config, spark=spark)
    assert_same_matrix(tmp / "duck", tmp / "spark", duck.stats, got.stats)
    assert got.stats["engine"]["name"] == "spark"


def test_ml_small_equals_duckdb(spark, tmp_path: Path) -> None:
    ds = write_dataset(FILE_DATASETS["ml_small"].load(ML_SMALL), tmp_path / "dataset")
    both(spark, ds.interactions_path, tmp_path)
    matrix, _ = read_cooc(tmp_path / "spark")
    assert matrix.height > 10_000  # a real matrix, not two empty ones


def test_a_million_event_long_tailed_log_equals_duckdb(spark, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    n = 1_000_000
    log = pl.DataFrame(
        {
            "user_id": rng.integers(0, 20_000, n),
            "item_id": (rng.zipf(1.2, n) % 50_000).astype(np.int64),  # long-tailed popularity
            "timestamp": rng.integers(0, 86_400 * 30, n),
            "label": rng.choice([0, 1], n, p=[0.3, 0.7]),
        }
    )
    log.write_parquet(tmp_path / "log.parquet")
    both(spark, tmp_path / "log.parquet", tmp_path)


@pytest.mark.parametrize("seed", range(10))
def test_random_logs_in_every_mode_equal_duckdb(spark, tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    log = random_log(rng, n_events=int(rng.integers(20, 300)))
    config = random_config(rng)
    log.write_parquet(tmp_path / "log.parquet")
    try:
        build_cooc(tmp_path / "log.parquet", tmp_path / "probe", config)
    except DataValidationError:  # nothing left after the label filter: Spark must agree
        with pytest.raises(DataValidationError, match="no events"):
            build_cooc_spark(tmp_path / "log.parquet", tmp_path / "spark", config, spark=spark)
        return
    both(spark, tmp_path / "log.parquet", tmp_path, config)


def test_bad_input_fails_before_spark_starts(tmp_path: Path) -> None:
    # no session fixture: validation must not need one
    pl.DataFrame({"user_id": [1], "item_id": ["a"], "timestamp": [0]}).write_parquet(
        tmp_path / "bad.parquet"
    )
    with pytest.raises(DataValidationError, match="item_id"):
        build_cooc_spark(tmp_path / "bad.parquet", tmp_path / "out")
    assert not (tmp_path / "out" / "matrix.parquet").exists()


def test_the_matrix_asset_runs_on_spark_when_configured(tmp_path: Path) -> None:
    """The shipped asset with ``engine: spark`` (the asset-bound ``spark`` resource at its
    default local[2]) writes what the DuckDB engine writes, and its checks pass."""
    import dagster as dg

    from assets.cooc import build_cooc_assets
    from assets.datasets import synthetic_dataset
    from assets.io_manager import JsonHandleIOManager
    from assets.resources import StoreResource

    world = {"n_users": 200, "n_items": 300, "n_events": 12_000, "n_clusters": 6, "seed": 4}
    outputs = {}
    for engine in ("duckdb", "spark"):
        root = tmp_path / engine
        result = dg.materialize(
            [synthetic_dataset, *build_cooc_assets("synthetic")],
            resources={
                "store": StoreResource(root=str(root)),
                "io_manager": JsonHandleIOManager(root=str(root)),
            },
            run_config={
                "ops": {
                    "synthetic__dataset": {"config": world},
                    "synthetic__cooc_matrix": {"config": {"engine": engine}},
                }
            },
        )
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert len(checks) == 5 and all(c.passed for c in checks)
        outputs[engine] = Path(result.output_for_node("synthetic__cooc_matrix").path)
    duck, spark = read_cooc(outputs["duckdb"]), read_cooc(outputs["spark"])
    assert spark[1].equals(duck[1])
    assert spark[0].select("row", "col", "count").equals(duck[0].select("row", "col", "count"))
    assert (spark[0]["row_weight"] - duck[0]["row_weight"]).abs().max() <= 1e-12
