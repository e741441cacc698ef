"""The ``<dataset>_report`` groups: one Markdown report per dataset of every evaluation it has.

Reads the evaluation assets' ``EvaluationArtifact`` folders (``summary.parquet``; the
PeterRec comparison's ``comparison.parquet``), hands the rows to ``recflow.report`` and
writes ``report.md`` + ``report.json`` to a new store version ``<dataset>/report``. The Markdown is also the asset's metadata.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.groups import group_name
from assets.resources import StoreResource
from recflow.artifacts import EvaluationArtifact
from recflow.report import (
    Section,
    mkt_section,
    peterrec_section,
    report_json,
    report_markdown,
    zsl_section,
)
from recflow.store import write_json

CODE_VERSION = "3"
REPORT_NAME = "report"

EVALUATIONS = (
    "zsl_queries",
    "zsl_known_items",
    "zsl_query_sensitivity",
    "zsl_reconstruction",
    "zsl_synonyms",
    "finetune_comparison",
    "mkt_comparison",
)
"""The evaluation assets a report reads (by the last part of their key), in report order."""


def report_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, REPORT_NAME])


def _evaluation_keys(dataset: str, assets: Iterable[Any]) -> dict[str, dg.AssetKey]:
    """The evaluations among ``assets`` that belong to ``dataset``, by name."""
    keys = {
        k
        for a in assets
        if isinstance(a, dg.AssetsDefinition) and not isinstance(a, dg.AssetChecksDefinition)
        for k in a.keys
    }
    return {n: dg.AssetKey([dataset, n]) for n in EVALUATIONS if dg.AssetKey([dataset, n]) in keys}


def _rows(handle: EvaluationArtifact, table: str) -> list[dict[str, Any]] | None:
    """The rows of ``<table>.parquet`` in an evaluation's folder; None when it has none."""
    return handle.table(table) if handle.has_table(table) else None


def build_sections(handles: Mapping[str, EvaluationArtifact]) -> list[Section]:
    """The report's sections from the evaluations present (by evaluation name): each
    evaluation's ``summary`` table, the PeterRec comparison's ``comparison`` table."""
    sections = []
    zsl = {
        n: handles[f"zsl_{n}"]
        for n in ("queries", "known_items", "query_sensitivity", "reconstruction", "synonyms")
        if f"zsl_{n}" in handles
    }
    if zsl:
        rows = {n: _rows(h, "summary") for n, h in zsl.items()}
        section = zsl_section(**{n: r or [] for n, r in rows.items()})
        missing = [f"zsl_{n}" for n, r in rows.items() if r is None]
        if missing:
            section.intro += f" No summary.parquet in {', '.join(missing)}."
        sections.append(section)
    if "finetune_comparison" in handles:
        rows = _rows(handles["finetune_comparison"], "comparison")
        section = peterrec_section(rows or [])
        if rows is None:
            section.intro += " No comparison.parquet in the comparison's folder."
        sections.append(section)
    if "mkt_comparison" in handles:
        rows = _rows(handles["mkt_comparison"], "summary")
        section = mkt_section(rows or [])
        if rows is None:
            section.intro += " No summary.parquet in the comparison's folder."
        sections.append(section)
    return sections


def build_report_assets(dataset: str, assets: Iterable[Any]) -> list[dg.AssetsDefinition]:
    """``<dataset>/report`` over the evaluations among ``assets``; none without any."""
    evaluations = _evaluation_keys(dataset, assets)
    if not evaluations:
        return []

    @dg.asset(
        key=report_key(dataset),
        ins={n: dg.AssetIn(key=k) for n, k in evaluations.items()},
        group_name=group_name(dataset, "report"),
        kinds={"markdown"},
        code_version=CODE_VERSION,
        description=(
            f"The headline numbers of every evaluation of {dataset} "
            f"({', '.join(evaluations)}) against their strongest simple baseline, with a "
            "one-line verdict per task: report.md (also shown here) and report.json."
        ),
    )
    def report(
        context: dg.AssetExecutionContext, store: StoreResource, **handles: EvaluationArtifact
    ) -> dg.Output[dict]:
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sections = build_sections(handles)
        title = f"recflow report: {dataset}"
        markdown = report_markdown(title, sections, generated)
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/{REPORT_NAME}") as tmp:
            (tmp / "report.md").write_text(markdown)
            write_json(report_json(title, sections, generated), tmp / "report.json")
            final = artifacts.final_path(tmp)
        tasks = [t for s in sections for t in s.tasks]
        return dg.Output(
            {"path": str(final), "markdown": str(final / "report.md")},
            metadata={
                "report": dg.MetadataValue.md(markdown),
                "path": dg.MetadataValue.path(str(final / "report.md")),
                "tasks": len(tasks),
                "tasks where a trained method beats the best baseline": sum(
                    bool(t.trained_beats_baseline) for t in tasks
                ),
            },
        )

    return [report]
