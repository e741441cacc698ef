"""Rendering of asset metadata: tables as markdown, charts as inline PNG images."""

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> dg.MetadataValue:
    """A list of dicts (same keys) as a markdown table."""
    if not rows:
        return dg.MetadataValue.md("_(empty)_")
    cols = list(rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def png_markdown(fig: plt.Figure) -> dg.MetadataValue:
    """A matplotlib figure as an inline image in markdown metadata (then closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![chart](data:image/png;base64,{data})")


def bar_chart(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str
) -> dg.MetadataValue:
    """A bar chart, e.g. a histogram whose buckets are already counted."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(range(len(values)), values, color="#4C72B0")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return png_markdown(fig)


def line_chart(
    series: Mapping[str, Sequence[float]], title: str, xlabel: str, ylabel: str
) -> dg.MetadataValue:
    """One or more curves (e.g. a loss history) sharing an x axis of steps 1..n."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, ys in series.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return png_markdown(fig)
