"""One Markdown report of a dataset's evaluations: headline numbers against baselines.

Plain rows in (the dicts an evaluation already writes: one per method, metric columns),
Markdown and JSON-able dicts out; no Dagster, no file I/O. Per task the report shows the
primary metric(s), each row's difference to the strongest *simple* baseline on the
task's first metric, and a one-line verdict: which row is best, and whether any trained
method beats that baseline.

A family (``FamilySpec``) says which metric columns are headline numbers (the first one
present is the primary metric), which rows are simple baselines and which extra columns
to show. Columns may come and go upstream: a missing metric is skipped, a missing value
is shown as "n/a", and any extra string column (say a ``negatives_rule``) is shown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The baselines each evaluation writes (kept here by name: this module imports no
# training code). PeterRec: ``recflow.seq.tasks`` (majority / logistic regression on the
# bag of items for attributes, popularity for cold start). ZSL: the popularity, random
# and TF-IDF scorers of ``recflow.zsl.scorers`` (also "<name>+prior" and "<name> (…)").
# MKT: the count-table references of ``recflow.mkt.experiment.REFERENCES``.
SEQ_BASELINES = frozenset({"majority", "logreg_bag_of_items", "popularity"})
ZSL_BASELINES = frozenset({"popularity", "random", "tfidf", "bm25"})
MKT_BASELINES = frozenset({"rate_target", "rate_both"})

COLD_START_METRICS = ("ndcg@5", "hr@5", "recall@20")
ATTRIBUTE_METRICS = ("accuracy", "macro_f1")
QUERY_METRICS = ("ndcg@100", "recall@10", "recall@100")
KNOWN_ITEM_METRICS = ("mrr", "hit@3")
SENSITIVITY_METRICS = ("off_popularity@10",)
PAIRED_REFERENCES = ("tfidf+prior", "popularity")
RECONSTRUCTION_METRICS = ("recall",)
MKT_METRICS = ("gauc_mean", "auc_mean")

LABELS = {
    "gauc_mean": "GAUC",
    "auc_mean": "AUC",
    "gauc_lift": "GAUC lift vs mlp_target",
    "share_of_fine_all": "share of FineAll params",
}
VS_BASELINE = "vs best baseline"
UPSTREAM_DERIVED = frozenset({"primary_metric", "vs_best_baseline"})
"""Columns an upstream table may carry that the report computes itself (not shown)."""
TIE_TOLERANCE = 1e-9


def base_name(method: str) -> str:
    """``"tfidf+prior"`` → ``"tfidf"``, ``"stl (cosine v_i·v_j)"`` → ``"stl"``."""
    return method.split(" (")[0].split("+")[0].strip()


@dataclass(frozen=True)
class FamilySpec:
    """How to read one kind of evaluation table."""

    metrics: tuple[str, ...]  # headline candidates in order; the first present is primary
    baselines: frozenset[str]  # base names of the simple baselines
    extras: tuple[str, ...] = ()  # numeric columns shown when present (strings always are)
    name_columns: tuple[str, ...] = ("method", "model")
    # a row that has this column, empty, is a baseline too (PeterRec: no trained params)
    untrained_column: str | None = None

    def is_baseline(self, row: Mapping[str, Any], name: str) -> bool:
        if base_name(name) in self.baselines:
            return True
        col = self.untrained_column
        return col is not None and col in row and row[col] is None


@dataclass
class TaskReport:
    """One task's table and verdict (``to_json`` is what ``report.json`` holds)."""

    task: str
    metrics: list[str]
    rows: list[dict[str, Any]]  # name, kind, metrics, spreads, extras, vs best baseline
    columns: list[str]  # the extra columns shown, in order
    verdict: str
    best: str | None = None
    best_baseline: str | None = None
    best_trained: str | None = None
    trained_beats_baseline: bool | None = None
    margin: float | None = None  # best trained − best baseline on the primary metric
    note: str | None = None

    @property
    def primary(self) -> str | None:
        return self.metrics[0] if self.metrics else None

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "primary_metric": self.primary,
            "metrics": self.metrics,
            "verdict": self.verdict,
            "best": self.best,
            "best_baseline": self.best_baseline,
            "best_trained": self.best_trained,
            "trained_beats_baseline": self.trained_beats_baseline,
            "margin": self.margin,
            "rows": [_json_safe(r) for r in self.rows],
        }


@dataclass
class Section:
    """One method family: a title, a line of context and its tasks."""

    title: str
    short: str  # the family's name in the at-a-glance list
    tasks: list[TaskReport] = field(default_factory=list)
    intro: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "family": self.short,
            "intro": self.intro,
            "tasks": [t.to_json() for t in self.tasks],
        }


# --------------------------------------------------------------------------- values


def _number(v: Any) -> float | None:
    """A finite float, or None (missing, NaN, text, bool)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def fmt(v: Any, digits: int = 4) -> str:
    """A cell: floats to ``digits`` decimals, missing as n/a."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def signed(v: float, digits: int = 4) -> str:
    return f"{v:+.{digits}f}"


def _spread(row: Mapping[str, Any], metric: str) -> tuple[str, Any, Any] | None:
    """("ci", lo, hi) from ``<m>_lo``/``<m>_hi``, or ("std", s, None) from the ``_std``
    twin of a ``<m>_mean`` column; None when the row has neither."""
    lo, hi = _number(row.get(f"{metric}_lo")), _number(row.get(f"{metric}_hi"))
    if lo is not None and hi is not None:
        return ("ci", lo, hi)
    if metric.endswith("_mean"):
        std = _number(row.get(metric.removesuffix("_mean") + "_std"))
        if std is not None:
            return ("std", std, None)
    return None


def metric_cell(row: Mapping[str, Any], metric: str) -> str:
    """``0.3120 [0.2900, 0.3300]`` (95% CI), ``0.6012 ± 0.0031`` (std) or ``0.3120``."""
    value = _number(row.get(metric))
    if value is None:
        return "n/a"
    spread = _spread(row, metric)
    if spread is None:
        return fmt(value)
    kind, a, b = spread
    return f"{fmt(value)} [{fmt(a)}, {fmt(b)}]" if kind == "ci" else f"{fmt(value)} ± {fmt(a)}"


# --------------------------------------------------------------------------- tables


def _name_column(rows: Sequence[Mapping[str, Any]], spec: FamilySpec) -> str | None:
    for c in spec.name_columns:
        if any(c in r for r in rows):
            return c
    return None


def present_metrics(rows: Sequence[Mapping[str, Any]], candidates: Iterable[str]) -> list[str]:
    """The candidates that at least one row has a number for, in the given order."""
    return [m for m in candidates if any(_number(r.get(m)) is not None for r in rows)]


def extra_columns(
    rows: Sequence[Mapping[str, Any]], spec: FamilySpec, skip: Iterable[str]
) -> list[str]:
    """The spec's extras that have a value, then every other column holding text."""
    skip = set(skip) | UPSTREAM_DERIVED
    out = [c for c in spec.extras if c not in skip and any(r.get(c) is not None for r in rows)]
    seen = set(out) | skip
    for r in rows:
        for c, v in r.items():
            if c not in seen and isinstance(v, str):
                out.append(c)
                seen.add(c)
    return out


def task_report(
    task: str, rows: Sequence[Mapping[str, Any]], spec: FamilySpec, note: str | None = None
) -> TaskReport:
    """The table and verdict of one task's rows (higher is better for every metric)."""
    name_col = _name_column(rows, spec)
    if name_col is None or not rows:
        return TaskReport(task, [], [], [], f"**{task}**: no rows to report.", note=note)
    metrics = present_metrics(rows, spec.metrics)
    skip = {name_col, "task", *metrics}
    skip |= {f"{m}_{s}" for m in metrics for s in ("lo", "hi")}
    skip |= {m.removesuffix("_mean") + "_std" for m in metrics if m.endswith("_mean")}
    extras = extra_columns(rows, spec, skip)

    out: list[dict[str, Any]] = []
    for r in rows:
        name = str(r.get(name_col))
        row: dict[str, Any] = {
            "name": name,
            "kind": "baseline" if spec.is_baseline(r, name) else "trained",
        }
        for m in metrics:
            row[m] = _number(r.get(m))
            spread = _spread(r, m)
            if spread is not None and spread[0] == "ci":
                row[f"{m}_lo"], row[f"{m}_hi"] = spread[1], spread[2]
            elif spread is not None:
                row[f"{m.removesuffix('_mean')}_std"] = spread[1]
        for c in extras:
            row[c] = r.get(c)
        out.append(row)

    if not metrics:
        verdict = f"**{task}**: none of the headline metrics ({', '.join(spec.metrics)}) present."
        return TaskReport(task, [], out, extras, verdict, note=note)

    primary = metrics[0]
    scored = [r for r in out if r[primary] is not None]
    # sort by the primary metric, best first; rows without it go last, in input order
    out = sorted(scored, key=lambda r: -r[primary]) + [r for r in out if r[primary] is None]
    baselines = [r for r in scored if r["kind"] == "baseline"]
    trained = [r for r in scored if r["kind"] == "trained"]
    best = out[0] if scored else None
    best_baseline = max(baselines, key=lambda r: r[primary]) if baselines else None
    best_trained = max(trained, key=lambda r: r[primary]) if trained else None

    for r in out:
        if best_baseline is None or r[primary] is None:
            r[VS_BASELINE] = None
        elif r is best_baseline:
            r[VS_BASELINE] = "best baseline"
        else:
            diff = r[primary] - best_baseline[primary]
            r[VS_BASELINE] = diff

    report = TaskReport(
        task,
        metrics,
        out,
        extras,
        verdict="",
        best=best["name"] if best else None,
        best_baseline=best_baseline["name"] if best_baseline else None,
        best_trained=best_trained["name"] if best_trained else None,
        note=note,
    )
    if best_baseline is not None and best_trained is not None:
        report.margin = best_trained[primary] - best_baseline[primary]
        report.trained_beats_baseline = report.margin > TIE_TOLERANCE
    report.verdict = _verdict(task, primary, best, best_baseline, best_trained, trained)
    return report


def _ci_note(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> str:
    """Whether two rows' 95% CIs on ``metric`` overlap ("" when either has none)."""
    keys = (f"{metric}_lo", f"{metric}_hi")
    if not all(_number(r.get(k)) is not None for r in (a, b) for k in keys):
        return ""
    overlap = a[keys[0]] <= b[keys[1]] and b[keys[0]] <= a[keys[1]]
    return " (95% CIs overlap)" if overlap else " (95% CIs do not overlap)"


def _verdict(
    task: str,
    primary: str,
    best: Mapping[str, Any] | None,
    best_baseline: Mapping[str, Any] | None,
    best_trained: Mapping[str, Any] | None,
    trained: Sequence[Mapping[str, Any]],
) -> str:
    label = LABELS.get(primary, primary)
    head = f"**{task}**: "
    if best is None:
        return head + f"no row has a {label} value."
    if best_baseline is None or best_trained is None:
        kind = "the baseline " if best["kind"] == "baseline" else ""
        missing = "baseline row" if best_baseline is None else "trained method"
        return head + (
            f"best is {kind}{best['name']} ({label} {fmt(best[primary])}); "
            f"no {missing} to compare with."
        )
    b, t = best_baseline, best_trained
    margin = t[primary] - b[primary]
    ci = _ci_note(t, b, primary)
    if margin > TIE_TOLERANCE:
        n = sum(r[primary] - b[primary] > TIE_TOLERANCE for r in trained)
        return head + (
            f"best is {t['name']} ({label} {fmt(t[primary])}), beating the best baseline "
            f"{b['name']} ({fmt(b[primary])}) by {signed(margin)}{ci}; "
            f"{n} of {len(trained)} trained methods beat it."
        )
    if margin >= -TIE_TOLERANCE:
        return head + (
            f"the best trained method {t['name']} ties the best baseline {b['name']} "
            f"({label} {fmt(b[primary])}); no trained method beats it."
        )
    return head + (
        f"best is the baseline {b['name']} ({label} {fmt(b[primary])}); no trained method "
        f"beats it, the closest, {t['name']}, is {fmt(-margin)} behind{ci}."
    )


# --------------------------------------------------------------------------- families


def group_by_task(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Rows by their ``task`` column, in first-seen order (all under "all" without one)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r.get("task", "all")), []).append(r)
    return out


def peterrec_section(rows: Sequence[Mapping[str, Any]]) -> Section:
    """The fine-tuning comparison (one row per task × method): cold start on ndcg@5,
    hr@5, recall@20; attribute tasks on accuracy, macro-F1. A ``primary_metric`` column,
    when the table has one, names the metric the verdict is on; a row without trained
    parameters is a baseline whatever its name."""
    section = Section(
        "PeterRec: sequence pretraining → fine-tuning",
        "PeterRec",
        intro=(
            "NextItNet pretrained on source sequences, fine-tuned per task; baselines: "
            f"{', '.join(sorted(SEQ_BASELINES))}."
        ),
    )
    for task, task_rows in group_by_task(rows).items():
        cold = present_metrics(task_rows, COLD_START_METRICS)
        metrics = COLD_START_METRICS if cold else ATTRIBUTE_METRICS
        if not cold and not present_metrics(task_rows, ATTRIBUTE_METRICS):
            metrics = _numeric_columns(task_rows)
        named = {r.get("primary_metric") for r in task_rows} - {None}
        if len(named) == 1 and isinstance(p := named.pop(), str):
            metrics = (p, *(m for m in metrics if m != p))
        spec = FamilySpec(
            metrics,
            SEQ_BASELINES,
            extras=("share_of_fine_all", "best_epoch"),
            untrained_column="trained_params",
        )
        section.tasks.append(task_report(task, task_rows, spec))
    return section


_SEQ_BOOKKEEPING = {
    "trained_params",
    "total_params",
    "train_s",
    "share_of_fine_all",
    "best_epoch",
    "epochs_run",
    *UPSTREAM_DERIVED,
}


def _numeric_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """A task of unknown kind: every numeric column that is not bookkeeping."""
    out: list[str] = []
    for r in rows:
        out += [
            c
            for c, v in r.items()
            if c not in _SEQ_BOOKKEEPING and c not in out and _number(v) is not None
        ]
    return tuple(out)


def paired_cells(
    rows: Sequence[Mapping[str, Any]], metric: str, references: Sequence[str] = PAIRED_REFERENCES
) -> list[dict[str, Any]]:
    """Rows with a text column per reference, ``"+0.0120 [-0.0030, +0.0270]"``, from the
    paired-difference columns an evaluation wrote (``<metric>_minus_<ref>`` and its
    ``_lo``/``_hi``, or the older ``diff_lo``/``diff_hi`` for popularity)."""
    out = []
    for r in rows:
        r = dict(r)
        for ref in references:
            col = f"{metric}_minus_{ref}"
            v = _number(r.get(col))
            lo = _number(r.get(f"{col}_lo", r.get("diff_lo") if ref == "popularity" else None))
            hi = _number(r.get(f"{col}_hi", r.get("diff_hi") if ref == "popularity" else None))
            if v is None or r.get("method") == ref:
                continue
            cell = signed(v) + (f" [{signed(lo)}, {signed(hi)}]" if lo is not None else "")
            r[f"{metric} − {ref} (paired 95% CI)"] = cell
        out.append(r)
    return out


def sensitivity_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``off_popularity@10`` = 1 − overlap with the popularity top 10 (higher = the answer
    depends more on the query), its CI flipped; the raw columns stay as extras."""
    out = []
    for r in rows:
        r = dict(r)
        v = _number(r.get("popularity_overlap@10"))
        lo, hi = (
            _number(r.get("popularity_overlap@10_lo")),
            _number(r.get("popularity_overlap@10_hi")),
        )
        if v is not None:
            r["off_popularity@10"] = 1.0 - v
            if lo is not None and hi is not None:
                r["off_popularity@10_lo"], r["off_popularity@10_hi"] = 1.0 - hi, 1.0 - lo
        out.append(r)
    return out


def zsl_section(
    queries: Sequence[Mapping[str, Any]] | None = None,
    reconstruction: Sequence[Mapping[str, Any]] | None = None,
    synonyms: Sequence[Mapping[str, Any]] | None = None,
    known_items: Sequence[Mapping[str, Any]] | None = None,
    query_sensitivity: Sequence[Mapping[str, Any]] | None = None,
) -> Section:
    """Zero-shot search: test queries and planted synonyms (ndcg@100, recall@10/100 with
    their bootstrap CIs and paired differences), known-item queries (MRR, hit@3), query
    sensitivity (1 − overlap with the popularity top 10), correlation reconstruction."""
    section = Section(
        "Zero-shot search from co-consumption (ZSL)",
        "ZSL",
        intro=(
            "STL / ZSL_ME / ZSL_TE word and item vectors (and each with the popularity "
            "prior), and the hybrid search (hybrid:<model>: BM25 + the model's vectors + "
            f"the prior, title hits first); baselines: {', '.join(sorted(ZSL_BASELINES))} "
            "(and with the prior)."
        ),
    )
    query_spec = FamilySpec(QUERY_METRICS, ZSL_BASELINES, extras=("queries", "no_known_term"))
    if queries is not None:
        rows = paired_cells(queries, "ndcg@100")
        section.tasks.append(task_report("test queries", rows, query_spec))
    if known_items is not None:
        spec = FamilySpec(KNOWN_ITEM_METRICS, ZSL_BASELINES, extras=("queries",))
        rows = paired_cells(known_items, "mrr")
        section.tasks.append(
            task_report(
                "known-item queries",
                rows,
                spec,
                note="a film's title with its year, without it, or with one word dropped; "
                "the answer is that film. Films of the test half (by item-id hash); the "
                "fusion was tuned on the other half's.",
            )
        )
    if query_sensitivity is not None:
        spec = FamilySpec(
            SENSITIVITY_METRICS,
            ZSL_BASELINES,
            extras=(
                "known_queries",
                "popularity_overlap@10",
                "prior_overlap@10",
                "pairwise_jaccard@10",
            ),
        )
        section.tasks.append(
            task_report(
                "query sensitivity",
                sensitivity_rows(query_sensitivity),
                spec,
                note="over the test tag queries a method knows a word of: off_popularity@10 "
                "= 1 − the share of its top 10 in the popularity top 10; prior_overlap@10 "
                "= the share in the search prior's top 10 (popularity mixed with text-tag "
                "counts), the list an unknown query gets; pairwise_jaccard@10 = overlap of "
                "two queries' top 10s (1.0: the query does not matter).",
            )
        )
    if synonyms is not None:
        section.tasks.append(task_report("planted synonyms", synonyms, query_spec))
    if reconstruction is not None:
        spec = FamilySpec(RECONSTRUCTION_METRICS, ZSL_BASELINES, extras=("items",))
        section.tasks.append(task_report("correlation reconstruction", reconstruction, spec))
    return section


def mkt_section(summary: Sequence[Mapping[str, Any]]) -> Section:
    """The MKT comparison's summary (one row per model, means and stds over seeds)."""
    section = Section(
        "MKT: multi-entity knowledge transfer",
        "MKT",
        intro=(
            "Means ± std over seeds on the target entity's test impressions; baselines: "
            f"{', '.join(sorted(MKT_BASELINES))} (click-rate count tables, no training)."
        ),
    )
    spec = FamilySpec(MKT_METRICS, MKT_BASELINES, extras=("seeds", "gauc_lift"))
    section.tasks.append(task_report("target-entity clicks", summary, spec))
    return section


# --------------------------------------------------------------------------- rendering


def task_markdown(t: TaskReport) -> str:
    """A task's heading, verdict and table."""
    lines = [f"### {t.task}", "", t.verdict, ""]
    if t.note:
        lines += [f"_{t.note}_", ""]
    if not t.rows:
        return "\n".join(lines)
    header = ["method", "kind", *(LABELS.get(m, m) for m in t.metrics)]
    header += [LABELS.get(c, c) for c in t.columns]
    vs = f"{VS_BASELINE} ({LABELS.get(t.primary, t.primary)})" if t.primary else VS_BASELINE
    header.append(vs)
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in t.rows:
        name = f"**{r['name']}**" if r["name"] == t.best else r["name"]
        cells = [name, r["kind"], *(metric_cell(r, m) for m in t.metrics)]
        cells += [fmt(r.get(c)) for c in t.columns]
        cells.append(_vs_cell(r.get(VS_BASELINE)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _vs_cell(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return "n/a"
    if v > TIE_TOLERANCE:
        return f"{signed(v)} (beats)"
    if v < -TIE_TOLERANCE:
        return f"{signed(v)} (below)"
    return f"{signed(0.0)} (ties)"


def report_markdown(title: str, sections: Sequence[Section], generated: str | None = None) -> str:
    """The whole document: title, every verdict at a glance, then one section per family."""
    lines = [f"# {title}", ""]
    if generated:
        lines += [f"Generated {generated}.", ""]
    lines += [
        "Per task: the headline metrics (higher is better), each row's difference to the "
        "strongest simple baseline on the first metric, and a verdict. Values in brackets "
        "are 95% bootstrap CIs over queries; ± is the std over seeds.",
        "",
    ]
    tasks = [t for s in sections for t in s.tasks]
    if not tasks:
        return "\n".join([*lines, "_No evaluations to report._", ""])
    lines += ["## At a glance", ""]
    lines += [f"- {s.short} {t.verdict}" for s in sections for t in s.tasks]
    lines.append("")
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.intro:
            lines += [s.intro, ""]
        lines += [task_markdown(t) for t in s.tasks]
    return "\n".join(lines).rstrip() + "\n"


def report_json(
    title: str, sections: Sequence[Section], generated: str | None = None
) -> dict[str, Any]:
    """The rows and verdicts behind the Markdown, JSON-safe (NaN → null)."""
    return {
        "title": title,
        "generated": generated,
        "sections": [s.to_json() for s in sections],
    }
