"""The shipped jobs, run as a user runs them: ``dagster job execute`` on the shipped
Definitions with the shipped defaults (no config override), in a fresh DAGSTER_HOME and
artifact store, then the report that ``scripts/materialize.sh`` prints.

The MovieLens 100K/1M and Tenrec folders are generated in their published formats
(``tests/published_formats.py``): the real files may not be redistributed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.published_formats import write_ml1m, write_ml100k, write_tenrec

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
JOB_TIMEOUT_S = 1800


def _run_job(tmp: Path, job: str, env: dict[str, str], *args: str) -> tuple[str, Path, Path]:
    """Run ``job`` as scripts/materialize.sh does; return (report text, store, home).

    The store root is hostile on purpose: a quote, a space, non-ASCII letters, glob
    characters and an SQL payload that would write ``pwned.csv`` if any statement spliced
    the path in."""
    home = tmp / "dagster_home"
    marker = tmp / "pwned.csv"
    store = tmp / "store d'été ü 名 [1]" / f"x'; COPY (SELECT 42) TO '{marker}'; --"
    store.mkdir(parents=True)
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    full_env = {**os.environ, "DAGSTER_HOME": str(home), "RECFLOW_HOME": str(store), **env}
    cmd = [str(BIN / "dagster"), "job", "execute", "-m", "jobs.definitions", "-j", job, *args]
    run = subprocess.run(
        cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    assert not marker.exists(), "a statement built from the store path ran"
    dataset = env.get("RECFLOW_DATASETS", "ml_small")
    report = subprocess.run(
        [sys.executable, "scripts/print_report.py", dataset],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return report, store, home


def _unmaterialized(home: Path, job: str, env: dict[str, str]) -> set[str]:
    """Asset keys the job selects that have no materialization in the instance."""
    from jobs.definitions import build_definitions

    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", *env)}
    os.environ.update({"DAGSTER_HOME": str(home), **env})
    try:
        defs = build_definitions()
        graph = defs.resolve_asset_graph()
        keys = defs.resolve_job_def(job).asset_layer.executable_asset_keys
        keys = [k for k in keys if graph.get(k).is_materializable]  # not observed sources
        assert len(keys) > 5
        with dg.DagsterInstance.get() as instance:
            return {
                k.to_user_string()
                for k in keys
                if instance.get_latest_materialization_event(k) is None
            }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _row(report: str, method: str) -> bool:
    """Whether the report has a table row for ``method`` (bold when it is the best)."""
    return re.search(rf"^\| (\*\*)?{re.escape(method)}(\*\*)? \|", report, re.M) is not None


def _assert_seq_report(report: str, tasks: list[str]) -> None:
    for task in tasks:
        assert f"### {task}" in report, f"no {task} table in the report"
    methods = ["fine_all", "fine_last", "fine_cls", "peterrec_serial", "peterrec_parallel"]
    for method in [*methods, "scratch", "popularity"]:
        assert _row(report, method), f"no {method} row in the report"
    if any(t.startswith("attribute:") for t in tasks):
        assert _row(report, "majority") and _row(report, "logreg_bag_of_items")


@pytest.mark.slow
def test_materialize_default_as_shipped(tmp_path: Path) -> None:
    report, store, home = _run_job(tmp_path, "materialize_default", {})
    assert _unmaterialized(home, "materialize_default", {}) == set()
    assert report.splitlines()[2] == "# recflow report: ml_small"
    _assert_seq_report(report, ["cold_start"])
    assert "### test queries" in report and "### correlation reconstruction" in report
    for name in ("stl+prior", "zsl_me+prior", "zsl_te+prior", "tfidf+prior", "popularity"):
        assert _row(report, name), name
    assert "### known-item queries" in report and _row(report, "hybrid:stl+prior")
    assert (store / "ml_small" / "report" / "LATEST").exists()


@pytest.mark.slow
def test_materialize_synthetic_on_its_documented_small_world(tmp_path: Path) -> None:
    config = str(REPO / "configs" / "synthetic_small.yaml")
    env = {"RECFLOW_DATASETS": "synthetic"}
    report, _, home = _run_job(tmp_path, "materialize_synthetic", env, "-c", config)
    assert _unmaterialized(home, "materialize_synthetic", env) == set()
    _assert_seq_report(report, ["cold_start", "attribute:gender", "attribute:age"])
    assert "### planted synonyms" in report and "### test queries" in report
    assert "### target-entity clicks" in report and _row(report, "mkt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "writer", "size"),
    [
        ("ml100k", write_ml100k, {}),  # the published shape: 943 x 1,682 x 100,000
        # ML-1M's format at a sixth of its users (the full 1M ratings take ~10x longer)
        ("ml1m", write_ml1m, {"n_users": 800, "n_items": 2000, "n_ratings": 130_000}),
        # Tenrec's format at 500 users: the MKT comparison (3 seeds x 9 models) takes
        # ~14 min on the generator's default 200k impressions
        (
            "tenrec",
            write_tenrec,
            {
                "n_users": 500,
                "n_videos": 600,
                "n_articles": 300,
                "n_video_events": 25_000,
                "n_article_events": 8_000,
            },
        ),
    ],
)
def test_every_dataset_runs_end_to_end_on_its_defaults(
    tmp_path: Path, dataset: str, writer, size: dict
) -> None:
    folder = writer(tmp_path / "raw" / dataset, **size)
    env = {"RECFLOW_DATASETS": dataset, f"RECFLOW_{dataset.upper()}_DIR": str(folder)}
    job = f"materialize_{dataset}"
    report, _, home = _run_job(tmp_path, job, env)
    assert _unmaterialized(home, job, env) == set()
    tasks = ["cold_start", "attribute:gender", "attribute:age"]
    if dataset != "tenrec":
        tasks.append("attribute:occupation")
        assert "### correlation reconstruction" in report
    else:
        assert "### target-entity clicks" in report and _row(report, "mkt")
    _assert_seq_report(report, tasks)
