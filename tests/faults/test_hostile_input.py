"""Hostile paths reach SQL only as parameters: they are read as paths and never run as SQL.

Each payload below is first shown to be live (a naive f-string query with it writes the
marker file), then the real code runs on the same folders and must leave no marker.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from assets.cooc import build_cooc_assets
from assets.datasets import build_file_dataset_asset
from assets.io_manager import JsonHandleIOManager
from assets.raw import build_raw_source, raw_files_key
from assets.resources import DataSourcesResource, StoreResource
from recflow.cooc import build_cooc, read_cooc, resolve_interaction_files
from recflow.cooc_checks import check_cooc_matrix
from recflow.data.registry import FILE_DATASETS

REPO = Path(__file__).resolve().parents[2]
ML_SMALL = REPO / "data" / "ml-latest-small"
MESSY = "store d'été – ü 名 [1]"
"""A quote, spaces, non-ASCII letters and glob characters in one folder name."""

# Two injection shapes: one closing ``read_parquet('...')``, one closing a bare ``'...'``.
# Each starts with a decoy file name the injected statement before the COPY can read.
PAYLOADS = {
    "read_parquet('{path}')": ("x", "x'); COPY (SELECT 42) TO '{marker}'; --"),
    "'{path}'": ("x.parquet", "x.parquet'; COPY (SELECT 42) TO '{marker}'; --"),
}


def _interactions() -> pl.DataFrame:
    """User 1 watches 10, 11, 12; user 2 watches 10, 11: M[10,11] = 2, M[11,12] = 1."""
    return pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2],
            "item_id": [10, 11, 12, 10, 11],
            "timestamp": [1, 2, 3, 5, 6],
        }
    )


def _write_without_statistics(df: pl.DataFrame, path: Path) -> None:
    """Parquet without null-count statistics, so the null check scans the file in SQL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(df.to_arrow(), path, write_statistics=False)


def _items(path: Path) -> Path:
    pl.DataFrame({"item_id": [10, 11, 12]}).write_parquet(path)
    return path


def _build_and_check(root: Path) -> tuple[pl.DataFrame, list[bool]]:
    """Build the matrix with every file under ``root``; its rows and the checks' verdicts."""
    events = root / "interactions.parquet"
    _write_without_statistics(_interactions(), events)
    result = build_cooc(events, root / "matrix v1", temp_dir=root / "_duckdb tmp")
    outcomes = check_cooc_matrix(
        result.matrix_path, result.item_index_path, _items(root / "items.parquet"), top_k=250
    )
    matrix, index = read_cooc(root / "matrix v1")
    ids = index.get_column("item_id").to_list()
    pairs = matrix.select(
        pl.col("row").map_elements(ids.__getitem__, return_dtype=pl.Int64()),
        pl.col("col").map_elements(ids.__getitem__, return_dtype=pl.Int64()),
        "count",
    )
    return pairs.sort("row", "col"), [o.passed for o in outcomes]


def test_a_messy_store_root_is_read_as_a_path(tmp_path: Path, fault_table) -> None:
    pairs, passed = _build_and_check(tmp_path / MESSY)
    assert pairs.rows() == [(10, 11, 2), (11, 12, 1)]
    assert passed == [True] * 5
    # an existing folder with glob characters is taken literally, not as a pattern
    events = tmp_path / MESSY / "interactions.parquet"
    assert resolve_interaction_files(str(events)) == [events]
    assert events in resolve_interaction_files(tmp_path / MESSY)
    fault_table.record(
        "store root with ' space ü 名 [1]",
        "matrix built (hand-computed counts), all 5 checks pass",
        "nothing",
    )


@pytest.mark.parametrize("shape", sorted(PAYLOADS))
def test_an_injection_payload_in_the_store_root_does_not_run(
    tmp_path: Path, shape: str, fault_table
) -> None:
    decoy, payload = PAYLOADS[shape]
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}.csv"
    base = tmp_path / "store"
    root = base / payload.format(marker=marker)
    root.mkdir(parents=True)
    pl.DataFrame({"row": [1], "col": [2]}).write_parquet(base / decoy)
    target = root / "matrix.parquet"
    pl.DataFrame({"row": [1], "col": [2]}).write_parquet(target)

    # the payload is live: a query built with an f-string runs its COPY
    with duckdb.connect() as con:
        con.execute(f"SELECT count(*) FROM {shape.format(path=target)} WHERE row < col")
    assert marker.read_text().split() == ["42", "42"]  # header and value
    marker.unlink()

    pairs, passed = _build_and_check(root)
    assert pairs.rows() == [(10, 11, 2), (11, 12, 1)]
    assert passed == [True] * 5
    assert not marker.exists()
    fault_table.record(
        f"SQL injection in store root ({shape})",
        "matrix and checks correct, read from the literal path",
        "nothing; the payload's COPY did not run",
    )


def _resources(root: Path, raw: Path) -> dict[str, object]:
    return {
        "store": StoreResource(root=str(root)),
        "io_manager": JsonHandleIOManager(root=str(root)),
        "data_sources": DataSourcesResource(movielens_small_dir=str(raw)),
    }


@pytest.mark.slow
def test_the_ml_small_graph_runs_under_a_hostile_root(tmp_path: Path, fault_table) -> None:
    """Raw files, store and DuckDB spill folder all under a root with a quote, spaces,
    non-ASCII letters and an injection payload: the graph succeeds, every check passes,
    the payload never runs."""
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}.csv"
    root = tmp_path / MESSY / PAYLOADS["'{path}'"][1].format(marker=marker)
    raw = root / "raw ml-latest-small"
    shutil.copytree(ML_SMALL, raw)
    ds = FILE_DATASETS["ml_small"]
    result = dg.materialize(
        [build_raw_source(ds), build_file_dataset_asset(ds), *build_cooc_assets("ml_small")],
        resources=_resources(root / "store", raw),
        selection=dg.AssetSelection.key_prefixes(["ml_small"])
        - dg.AssetSelection.assets(raw_files_key("ml_small")),
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert len(checks) == 5 and all(checks.values()), checks
    handle = result.output_for_node("ml_small__cooc_matrix")
    assert Path(handle.matrix).is_relative_to(root / "store")
    matrix = pl.read_parquet(handle.matrix, glob=False)
    assert matrix.height > 1000
    assert not marker.exists()
    fault_table.record(
        "hostile root for raw files + store (ml_small graph)",
        f"dataset, matrix ({matrix.height} pairs), 5/5 checks",
        "nothing; no injected statement ran",
    )


# A value wrapped in quotes inside an f-string ('{path}': how SQL literals get built; text
# for people uses {x!r}) or handed to a shell: the shapes this suite's payloads exploit.
# bench/ joins the scan once bench_cooc's DuckDB floor takes its paths as parameters.
SPLICED_SQL = re.compile(r"""f"[^"]*'\{|f'[^']*"\{""")
SHELL = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(")


def test_no_sql_or_shell_text_is_built_from_a_value() -> None:
    offenders = []
    for folder in ("recflow", "assets", "jobs", "scripts", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if SPLICED_SQL.search(line) or SHELL.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
    # the pattern does catch the shape it is meant to
    assert SPLICED_SQL.search("con.execute(f\"SELECT count(*) FROM '{m}'\")")
    assert SPLICED_SQL.search("""files = ", ".join(f"'{p}'" for p in inputs)""")
    assert not SPLICED_SQL.search("con.execute(sql, {'m': m})")
