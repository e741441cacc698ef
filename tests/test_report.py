"""The per-dataset report: hand-computed tables and verdicts (``recflow.report``), and the
``<dataset>/report`` asset materialized from small fake upstream handles."""

import json
import math
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.io_manager import JsonHandleIOManager
from assets.report import build_report_assets, build_sections, report_key
from assets.resources import StoreResource
from recflow.artifacts import EvaluationArtifact
from recflow.report import (
    MKT_BASELINES,
    VS_BASELINE,
    FamilySpec,
    base_name,
    mkt_section,
    peterrec_section,
    report_json,
    report_markdown,
    task_markdown,
    task_report,
    zsl_section,
)
from recflow.store import ArtifactStore
from scripts.print_report import main as print_report

SEQ = FamilySpec(("accuracy", "macro_f1"), frozenset({"majority", "logreg_bag_of_items"}))

# An attribute task where the majority class wins on accuracy.
GENDER = [
    {"task": "gender", "method": "fine_all", "accuracy": 0.70, "macro_f1": 0.60},
    {"task": "gender", "method": "peterrec_serial", "accuracy": 0.68, "macro_f1": 0.62},
    {"task": "gender", "method": "majority", "accuracy": 0.72, "macro_f1": 0.42},
    {"task": "gender", "method": "logreg_bag_of_items", "accuracy": 0.71, "macro_f1": 0.65},
]
# Cold start where PeterRec beats popularity; the attribute columns are null, as in the
# real comparison table (one schema for every task).
COLD = [
    {"task": "cold_start", "method": m, "ndcg@5": n, "hr@5": h, "recall@20": r, "accuracy": None}
    for m, n, h, r in [
        ("fine_all", 0.35, 0.45, 0.25),
        ("peterrec_parallel", 0.40, 0.50, 0.30),
        ("scratch", 0.20, 0.30, 0.10),
        ("popularity", 0.30, 0.40, 0.20),
    ]
]


def _by_name(report) -> dict:
    return {r["name"]: r for r in report.rows}


def test_base_names_strip_prior_and_similarity_suffixes() -> None:
    assert base_name("tfidf+prior") == "tfidf"
    assert base_name("stl (cosine v_i·v_j)") == "stl"
    assert base_name("zsl_te+prior") == "zsl_te"
    assert base_name("popularity") == "popularity"


def test_a_baseline_that_wins_is_named_in_the_verdict() -> None:
    t = task_report("gender", GENDER, SEQ)
    assert t.metrics == ["accuracy", "macro_f1"]
    assert [r["name"] for r in t.rows] == [
        "majority",
        "logreg_bag_of_items",
        "fine_all",
        "peterrec_serial",
    ]
    rows = _by_name(t)
    assert rows["majority"]["kind"] == "baseline" and rows["fine_all"]["kind"] == "trained"
    assert rows["majority"][VS_BASELINE] == "best baseline"
    assert rows["fine_all"][VS_BASELINE] == pytest.approx(-0.02)
    assert rows["peterrec_serial"][VS_BASELINE] == pytest.approx(-0.04)
    assert rows["logreg_bag_of_items"][VS_BASELINE] == pytest.approx(-0.01)
    assert (t.best, t.best_baseline, t.best_trained) == ("majority", "majority", "fine_all")
    assert t.trained_beats_baseline is False
    assert t.margin == pytest.approx(-0.02)
    assert t.verdict == (
        "**gender**: best is the baseline majority (accuracy 0.7200); no trained method "
        "beats it, the closest, fine_all, is 0.0200 behind."
    )
    md = task_markdown(t)
    assert "| method | kind | accuracy | macro_f1 | vs best baseline (accuracy) |" in md
    assert "| **majority** | baseline | 0.7200 | 0.4200 | best baseline |" in md
    assert "| fine_all | trained | 0.7000 | 0.6000 | -0.0200 (below) |" in md


def test_a_method_that_wins_is_named_in_the_verdict() -> None:
    (t,) = peterrec_section(COLD).tasks
    assert t.metrics == ["ndcg@5", "hr@5", "recall@20"]  # accuracy is all null here
    rows = _by_name(t)
    assert rows["peterrec_parallel"][VS_BASELINE] == pytest.approx(0.10)
    assert rows["scratch"][VS_BASELINE] == pytest.approx(-0.10)
    assert rows["popularity"][VS_BASELINE] == "best baseline"
    assert t.trained_beats_baseline is True and t.margin == pytest.approx(0.10)
    assert t.verdict == (
        "**cold_start**: best is peterrec_parallel (ndcg@5 0.4000), beating the best "
        "baseline popularity (0.3000) by +0.1000; 2 of 3 trained methods beat it."
    )
    assert "| **peterrec_parallel** | trained | 0.4000 | 0.5000 | 0.3000 |" in task_markdown(t)
    assert "+0.1000 (beats)" in task_markdown(t)


def test_peterrec_tasks_get_their_own_metrics() -> None:
    attr = [r | {"ndcg@5": None} for r in GENDER]
    section = peterrec_section([*COLD, *attr])
    assert [(t.task, t.metrics) for t in section.tasks] == [
        ("cold_start", ["ndcg@5", "hr@5", "recall@20"]),
        ("gender", ["accuracy", "macro_f1"]),
    ]
    assert [t.trained_beats_baseline for t in section.tasks] == [True, False]


def test_missing_columns_and_values_are_tolerated() -> None:
    # ndcg@5 gone: hr@5 becomes primary; extra columns (a string rule, best_epoch) shown;
    # a NaN and a missing value show as n/a and sort last.
    rows = [
        {"task": "cold_start", "method": "fine_all", "hr@5": 0.5, "negatives_rule": "99 sampled"},
        {"task": "cold_start", "method": "scratch", "hr@5": float("nan"), "best_epoch": 3},
        {"task": "cold_start", "method": "fine_cls"},
        {"task": "cold_start", "method": "popularity", "hr@5": 0.6, "negatives_rule": "99 sampled"},
    ]
    (t,) = peterrec_section(rows).tasks
    assert t.metrics == ["hr@5"]
    assert t.columns == ["best_epoch", "negatives_rule"]
    assert [r["name"] for r in t.rows] == ["popularity", "fine_all", "scratch", "fine_cls"]
    assert t.trained_beats_baseline is False and t.margin == pytest.approx(-0.1)
    md = task_markdown(t)
    assert "| method | kind | hr@5 | best_epoch | negatives_rule | vs best baseline (hr@5) |" in md
    assert "| scratch | trained | n/a | 3 | n/a | n/a |" in md
    json.dumps(report_json("t", [peterrec_section(rows)]), allow_nan=False)  # NaN → null

    # no metric at all, no name column, nothing but baselines, nothing at all
    none = task_report("x", [{"method": "a", "foo": 1.0}], SEQ)
    assert none.metrics == [] and "none of the headline metrics" in none.verdict
    assert "no rows" in task_report("x", [{"accuracy": 0.5}], SEQ).verdict
    only = task_report("x", [{"method": "majority", "accuracy": 0.5}], SEQ)
    assert only.trained_beats_baseline is None and "no trained method" in only.verdict
    nobase = task_report("x", [{"method": "fine_all", "accuracy": 0.5}], SEQ)
    assert nobase.trained_beats_baseline is None and "no baseline row" in nobase.verdict
    assert "no rows" in task_report("x", [], SEQ).verdict


def test_upstream_primary_metric_and_untrained_rows_are_followed() -> None:
    # the comparison table may name each task's primary metric, carry its own
    # vs_best_baseline, and mark baselines by having no trained parameters
    rows = [
        {"task": "gender", "method": "fine_all", "accuracy": 0.70, "macro_f1": 0.60,
         "trained_params": 100, "primary_metric": "macro_f1", "vs_best_baseline": -0.05,
         "epochs_run": 5},
        {"task": "gender", "method": "item_knn", "accuracy": 0.75, "macro_f1": 0.50,
         "trained_params": None, "primary_metric": "macro_f1", "vs_best_baseline": 0.0},
    ]  # fmt: skip
    (t,) = peterrec_section(rows).tasks
    assert t.metrics == ["macro_f1", "accuracy"]
    assert _by_name(t)["item_knn"]["kind"] == "baseline"
    assert t.best == "fine_all" and t.margin == pytest.approx(0.10)
    assert t.columns == []  # bookkeeping and upstream-derived columns are not repeated
    assert "vs best baseline (macro_f1)" in task_markdown(t)


def test_a_tie_is_not_a_win() -> None:
    rows = [{"method": "fine_all", "accuracy": 0.5}, {"method": "majority", "accuracy": 0.5}]
    t = task_report("x", rows, SEQ)
    assert t.trained_beats_baseline is False
    assert t.verdict == (
        "**x**: the best trained method fine_all ties the best baseline majority "
        "(accuracy 0.5000); no trained method beats it."
    )


def test_zsl_known_items_sensitivity_and_paired_cells() -> None:
    known = [
        {"method": "popularity", "queries": 9, "mrr": 0.01, "hit@3": 0.0},
        {"method": "tfidf+prior", "queries": 9, "mrr": 0.16, "mrr_lo": 0.14, "mrr_hi": 0.19,
         "hit@3": 0.18},
        {"method": "hybrid:zsl_me+prior", "queries": 9, "mrr": 0.95, "mrr_lo": 0.94,
         "mrr_hi": 0.96, "hit@3": 0.97, "mrr_minus_tfidf+prior": 0.79,
         "mrr_minus_tfidf+prior_lo": 0.76, "mrr_minus_tfidf+prior_hi": 0.81},
    ]  # fmt: skip
    sens = [
        {"method": "popularity", "known_queries": 48, "popularity_overlap@10": 1.0,
         "popularity_overlap@10_lo": 1.0, "popularity_overlap@10_hi": 1.0,
         "pairwise_jaccard@10": 1.0},
        {"method": "hybrid:zsl_me+prior", "known_queries": 21, "popularity_overlap@10": 0.25,
         "popularity_overlap@10_lo": 0.1, "popularity_overlap@10_hi": 0.4,
         "pairwise_jaccard@10": 0.05},
    ]  # fmt: skip
    k, q = zsl_section(known_items=known, query_sensitivity=sens).tasks
    assert k.task == "known-item queries" and k.best == "hybrid:zsl_me+prior"
    assert k.best_baseline == "tfidf+prior" and k.margin == pytest.approx(0.79)
    md = task_markdown(k)
    assert "+0.7900 [+0.7600, +0.8100]" in md and "mrr − tfidf+prior (paired 95% CI)" in md
    # 1 − overlap, its CI flipped: higher means the answer depends more on the query
    row = _by_name(q)["hybrid:zsl_me+prior"]
    assert row["off_popularity@10"] == pytest.approx(0.75)
    assert (row["off_popularity@10_lo"], row["off_popularity@10_hi"]) == pytest.approx((0.6, 0.9))
    assert q.best == "hybrid:zsl_me+prior" and q.trained_beats_baseline


def test_zsl_rows_with_confidence_intervals() -> None:
    queries = [
        {"method": "popularity", "queries": 40, "ndcg@100": 0.20, "ndcg@100_lo": 0.15,
         "ndcg@100_hi": 0.25, "recall@10": 0.1, "recall@100": 0.3},
        {"method": "tfidf+prior", "queries": 40, "ndcg@100": 0.30, "ndcg@100_lo": 0.25,
         "ndcg@100_hi": 0.35, "recall@10": 0.2, "recall@100": 0.4},
        {"method": "zsl_te+prior", "queries": 40, "ndcg@100": 0.50, "ndcg@100_lo": 0.45,
         "ndcg@100_hi": 0.55, "recall@10": 0.3, "recall@100": 0.6},
        {"method": "stl", "queries": 40, "ndcg@100": 0.32, "ndcg@100_lo": 0.22,
         "ndcg@100_hi": 0.42, "recall@10": 0.2, "recall@100": 0.5},
    ]  # fmt: skip
    recon = [
        {"method": "stl (cosine v_i·v_j)", "recall": 0.10, "items": 100},
        {"method": "tfidf (cosine)", "recall": 0.12, "items": 100},
        {"method": "random", "recall": 0.01, "items": 100},
    ]
    q, r = zsl_section(queries=queries, reconstruction=recon).tasks
    assert q.best_baseline == "tfidf+prior" and q.best_trained == "zsl_te+prior"
    assert q.margin == pytest.approx(0.20)
    assert "(95% CIs do not overlap)" in q.verdict
    assert "2 of 2 trained methods beat it" in q.verdict
    md = task_markdown(q)
    assert "| **zsl_te+prior** | trained | 0.5000 [0.4500, 0.5500] | 0.3000 | 0.6000 | 40 |" in md
    assert r.best == "tfidf (cosine)" and r.trained_beats_baseline is False
    assert _by_name(r)["stl (cosine v_i·v_j)"][VS_BASELINE] == pytest.approx(-0.02)


def test_mkt_summary_shows_means_with_std() -> None:
    summary = [
        {"model": "rate_target", "seeds": 1, "auc_mean": 0.80, "auc_std": None,
         "gauc_mean": 0.55, "gauc_std": None, "gauc_lift": -0.05},
        {"model": "mlp_target", "seeds": 3, "auc_mean": 0.90, "auc_std": 0.01,
         "gauc_mean": 0.60, "gauc_std": 0.002, "gauc_lift": 0.0},
        {"model": "mkt", "seeds": 3, "auc_mean": 0.91, "auc_std": 0.01,
         "gauc_mean": 0.62, "gauc_std": 0.003, "gauc_lift": 0.02},
    ]  # fmt: skip
    (t,) = mkt_section(summary).tasks
    assert t.metrics == ["gauc_mean", "auc_mean"]
    assert t.best == "mkt" and t.best_baseline == "rate_target"
    assert t.margin == pytest.approx(0.07)
    md = task_markdown(t)
    assert "| method | kind | GAUC | AUC | seeds | GAUC lift vs mlp_target |" in md
    assert "| **mkt** | trained | 0.6200 ± 0.0030 | 0.9100 ± 0.0100 | 3 | 0.0200 | +0.0700" in md
    assert "| rate_target | baseline | 0.5500 | 0.8000 | 1 | -0.0500 | best baseline |" in md


def test_mkt_baselines_are_the_experiment_references() -> None:
    from recflow.mkt.experiment import REFERENCES

    assert set(REFERENCES) == MKT_BASELINES


def test_the_document_has_a_glance_list_and_a_section_per_family() -> None:
    sections = [zsl_section(reconstruction=[]), peterrec_section([*COLD, *GENDER])]
    md = report_markdown("recflow report: toy", sections, "2025-01-01 00:00 UTC")
    assert md.startswith("# recflow report: toy\n\nGenerated 2025-01-01 00:00 UTC.")
    glance = md.split("## At a glance\n\n")[1].split("\n\n")[0].splitlines()
    assert glance[0].startswith("- ZSL **correlation reconstruction**: no rows")
    assert glance[1].startswith("- PeterRec **cold_start**: best is peterrec_parallel")
    assert glance[2].startswith("- PeterRec **gender**: best is the baseline majority")
    assert "## PeterRec: sequence pretraining → fine-tuning" in md
    assert "### gender" in md
    assert "_No evaluations to report._" in report_markdown("empty", [])


# --------------------------------------------------------------------------- the asset


def _stub(dataset: str, name: str, handle: EvaluationArtifact) -> dg.AssetsDefinition:
    @dg.asset(key=[dataset, name])
    def _asset() -> EvaluationArtifact:
        return handle

    return _asset


def _evaluation(folder: Path, **tables: list[dict]) -> EvaluationArtifact:
    """An evaluation's folder with one Parquet file per table."""
    folder.mkdir(parents=True)
    for name, rows in tables.items():
        pl.DataFrame(rows).write_parquet(folder / f"{name}.parquet")
    return EvaluationArtifact(str(folder))


def test_the_report_asset_writes_markdown_json_and_metadata(tmp_path: Path) -> None:
    up = tmp_path / "upstream"
    queries = _evaluation(up / "zsl_queries", summary=[
        {"method": "popularity", "ndcg@100": 0.1, "recall@10": 0.05, "recall@100": 0.2},
        {"method": "zsl_te", "ndcg@100": 0.3, "recall@10": 0.1, "recall@100": 0.4},
    ])  # fmt: skip
    reconstruction = _evaluation(up / "zsl_reconstruction", summary=[
        {"method": "zsl_te (cosine v_i·v_j)", "recall": 0.2, "items": 10},
        {"method": "random", "recall": 0.01, "items": 10},
    ])  # fmt: skip
    comparison = _evaluation(
        up / "finetune_comparison",
        summary=[{"task": "cold_start"}],
        comparison=[*COLD, *[r | {"ndcg@5": None} for r in GENDER]],
    )
    mkt = _evaluation(up / "mkt_comparison", summary=[
        {"model": "rate_both", "seeds": 1, "auc_mean": 0.7, "gauc_mean": 0.58, "gauc_std": None},
        {"model": "mkt", "seeds": 2, "auc_mean": 0.8, "gauc_mean": 0.57, "gauc_std": 0.01},
    ])  # fmt: skip
    stubs = [
        _stub("toy", "zsl_queries", queries),
        _stub("toy", "zsl_reconstruction", reconstruction),
        _stub("toy", "finetune_comparison", comparison),
        _stub("toy", "mkt_comparison", mkt),
        _stub("toy", "cooc_matrix", EvaluationArtifact(str(up / "unused"))),
    ]
    (report,) = build_report_assets("toy", stubs)
    assert report.key == report_key("toy")
    assert {k.path[-1] for k in report.dependency_keys} == {
        "zsl_queries",
        "zsl_reconstruction",
        "finetune_comparison",
        "mkt_comparison",
    }
    store = tmp_path / "store"
    result = dg.materialize(
        [*stubs, report],
        resources={
            "store": StoreResource(root=str(store)),
            "io_manager": JsonHandleIOManager(root=str(store)),
        },
    )
    assert result.success
    handle = result.output_for_node("toy__report")
    latest = ArtifactStore(store).latest("toy/report")
    assert Path(handle["path"]) == latest
    md = (latest / "report.md").read_text()
    (event,) = result.get_asset_materialization_events()[-1:]
    meta = event.materialization.metadata
    assert meta["report"].value == md
    assert meta["tasks"].value == 5
    assert meta["tasks where a trained method beats the best baseline"].value == 3
    for heading in ("## Zero-shot search", "## PeterRec", "## MKT", "### test queries"):
        assert heading in md
    assert "**target-entity clicks**: best is the baseline rate_both (GAUC 0.5800)" in md
    assert "| **mkt** |" not in md and "| mkt | trained | 0.5700 ± 0.0100 |" in md
    data = json.loads((latest / "report.json").read_text())
    assert [s["family"] for s in data["sections"]] == ["ZSL", "PeterRec", "MKT"]
    cold = data["sections"][1]["tasks"][0]
    assert cold["best"] == "peterrec_parallel" and cold["trained_beats_baseline"] is True
    assert math.isclose(cold["margin"], 0.10)

    # scripts/print_report.py prints the newest report
    assert print_report(["toy", "--root", str(store)]) == 0
    assert print_report(["nothing", "--root", str(store)]) == 1


def test_print_report_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ArtifactStore(tmp_path)
    with store.new_version("ml_small/report") as tmp:
        (tmp / "report.md").write_text("# hello\n")
    assert print_report(["ml_small", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.endswith("# hello\n") and "ml_small/report" in out


def test_an_evaluation_without_its_table_is_named_in_the_section(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = EvaluationArtifact(str(tmp_path / "empty"))
    zsl, peterrec = build_sections({"zsl_known_items": empty, "finetune_comparison": empty})
    assert zsl.intro.endswith(" No summary.parquet in zsl_known_items.")
    assert peterrec.intro.endswith(" No comparison.parquet in the comparison's folder.")


def test_only_datasets_with_evaluations_get_a_report() -> None:
    unused = EvaluationArtifact("unused")
    assert build_report_assets("feed", [_stub("feed", "cooc_matrix", unused)]) == []
    # another dataset's evaluation does not count
    assert build_report_assets("feed", [_stub("other", "zsl_queries", unused)]) == []


def test_the_shipped_definitions_report_every_evaluation() -> None:
    from jobs.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.materializable_asset_keys
        if k.path[-1] == "report"
    }
    assert parents["ml_small/report"] == {
        "ml_small/zsl_queries",
        "ml_small/zsl_known_items",
        "ml_small/zsl_query_sensitivity",
        "ml_small/zsl_reconstruction",
        "ml_small/finetune_comparison",
    }
    assert parents["synthetic/report"] == {
        "synthetic/zsl_queries",
        "synthetic/zsl_query_sensitivity",
        "synthetic/zsl_reconstruction",
        "synthetic/zsl_synonyms",
        "synthetic/finetune_comparison",
        "synthetic/mkt_comparison",
    }
    assert not any(k.endswith("_daily/report") for k in parents)
    job = defs.resolve_job_def("materialize_default")
    assert report_key("ml_small") in job.asset_layer.executable_asset_keys
