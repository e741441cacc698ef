"""Rendering of asset metadata: tables as markdown, charts as small inline SVG images."""

import base64
import io
import urllib.parse
from collections.abc import Mapping, Sequence
from html import escape
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


INLINE_MARKDOWN_CHARS = 1000
"""The Dagster UI (1.13) shows a markdown metadata value in place only when it is shorter
than this; a longer one (any PNG) hides behind "[Show Markdown]". Charts are therefore
drawn as small SVGs that fit, and only a chart that cannot fit falls back to a PNG."""

_W, _H = 320, 110  # chart size in px
_LEFT, _TOP, _BOTTOM, _RIGHT = 40, 6, 92, 314  # plot area
_COLOURS = ("steelblue", "darkorange", "seagreen", "crimson", "purple", "gray")


def _num(v: float) -> str:
    """A short axis label: whole thousands with separators, else 3 significant digits."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _svg_markdown(body: str) -> str | None:
    """``body`` inside an <svg> as a markdown image (data URI, the shorter of base64 and
    percent-encoding); None when it would not be shown inline."""
    svg = _el(
        "svg",
        body,
        xmlns="http://www.w3.org/2000/svg",
        width=_W,
        height=_H,
        font_family="sans-serif",
        font_size=9,
    )
    b64 = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    pct = "data:image/svg+xml," + urllib.parse.quote(svg, safe="=':/;,.-")
    md = f"![chart]({min(b64, pct, key=len)})"
    return md if len(md) < INLINE_MARKDOWN_CHARS else None


def _el(tag: str, text: str | None = None, **attrs: object) -> str:
    """An SVG element (``font_size`` → ``font-size``), every attribute value escaped and
    single-quoted (a quote costs 1 character in a data URI, a double quote 3)."""
    parts = "".join(
        " " + k.replace("_", "-") + "='" + escape(str(v)) + "'" for k, v in attrs.items()
    )
    return "<" + tag + parts + ("/>" if text is None else ">" + text + "</" + tag + ">")


def _text(x: float, y: float, label: str, anchor: str = "", colour: str = "") -> str:
    extra = ({"text_anchor": anchor} if anchor else {}) | ({"fill": colour} if colour else {})
    return _el("text", escape(label), x=round(x), y=round(y), **extra)


def _axes(y_low: float, y_high: float, x_first: str, x_last: str) -> str:
    """The axis lines and the four end labels (y range on the left, x range below)."""
    return (
        _el("path", d=f"M{_LEFT} {_TOP}V{_BOTTOM}H{_RIGHT}", fill="none", stroke="black")
        + _text(_LEFT - 3, _TOP + 7, _num(y_high), "end")
        + _text(_LEFT - 3, _BOTTOM, _num(y_low), "end")
        + _text(_LEFT, _BOTTOM + 11, x_first)
        + _text(_RIGHT, _BOTTOM + 11, x_last, "end")
    )


def svg_bar_chart(labels: Sequence[str], values: Sequence[float]) -> str | None:
    """Bars from 0 with the first and last label under them, as inline markdown (or None
    when too many bars to fit)."""
    top = max(max(values), 1e-12)
    step = (_RIGHT - _LEFT) / len(values)
    width = max(step * 0.8, 1)
    bars = "".join(
        f"M{_LEFT + i * step + 1:.0f} {_BOTTOM}V{_BOTTOM - v / top * (_BOTTOM - _TOP):.0f}"
        f"h{width:.0f}V{_BOTTOM}z"
        for i, v in enumerate(values)
    )
    body = _el("path", d=bars, fill=_COLOURS[0]) + _axes(0, top, labels[0], labels[-1])
    return _svg_markdown(body)


def svg_labelled_bars(labels: Sequence[str], values: Sequence[float]) -> str | None:
    """One horizontal bar per named category, its name beside it and the longest bar's
    value at its end, as inline markdown (or None when the names do not fit)."""
    top = max(max(values), 1e-12)
    row = min(14, (_H - 4) // len(values))
    left, right = 150, _W - 34
    names = "".join(
        _text(left - 4, 2 + i * row + row - 4, label[:28]) for i, label in enumerate(labels)
    )
    bars = "".join(
        f"M{left} {2 + i * row}h{max(v / top * (right - left), 1):.0f}v{row - 3}H{left}z"
        for i, v in enumerate(values)
    )
    body = _el("g", names + _text(_W - 2, 11, _num(top)), text_anchor="end")
    body += _el("path", d=bars, fill=_COLOURS[0])
    return _svg_markdown(body)


def _is_number(label: str) -> bool:
    try:
        float(label)
    except ValueError:
        return False
    return True


def _thinned(ys: Sequence[float], points: int) -> list[tuple[int, float]]:
    """At most ``points`` (step, value) pairs evenly spread over ``ys``, ends included."""
    n = len(ys)
    if n <= points:
        return list(enumerate(ys, start=1))
    idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)})
    return [(i + 1, ys[i]) for i in idx]


def svg_line_chart(series: Mapping[str, Sequence[float]], points: int) -> str | None:
    """Curves over steps 1..n (at most ``points`` each), a legend when there are several,
    as inline markdown (or None when they do not fit)."""
    n = max(len(ys) for ys in series.values())
    values = [v for ys in series.values() for v in ys]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    body = _axes(low, high, "1", str(n))
    for k, (name, ys) in enumerate(series.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        pts = " ".join(
            f"{_LEFT + (x - 1) / max(n - 1, 1) * (_RIGHT - _LEFT):.0f},"
            f"{_BOTTOM - (y - low) / span * (_BOTTOM - _TOP):.0f}"
            for x, y in _thinned(ys, points)
        )
        body += _el("polyline", points=pts, fill="none", stroke=colour)
        if len(series) > 1:
            body += _text(_RIGHT, _TOP + 8 + 10 * k, name, "end", colour)
    return _svg_markdown(body)


def bar_chart(
    labels: Sequence[str], values: Sequence[float], title: str, xlabel: str
) -> dg.MetadataValue:
    """A bar chart: a histogram whose buckets are already counted (numeric labels, bars
    upright) or one bar per named category (bars across, named): shown in place as a small
    SVG (the metadata label names it), else as a PNG behind "[Show Markdown]"."""
    labels = [str(x) for x in labels]
    if not values:
        inline = None
    elif all(_is_number(x) for x in labels):
        inline = svg_bar_chart(labels, values)
    else:
        inline = svg_labelled_bars(labels, values)
    if inline is not None:
        return dg.MetadataValue.md(inline)
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
    """One or more curves (e.g. a loss history) sharing an x axis of steps 1..n: shown in
    place as a small SVG (long curves evenly thinned to fit), else as a PNG behind
    "[Show Markdown]"."""
    series = {k: v for k, v in series.items() if len(v)}
    for points in (60, 40, 25, 15):
        inline = svg_line_chart(series, points) if series else None
        if inline is not None:
            return dg.MetadataValue.md(inline)
    fig, ax = plt.subplots(figsize=(6, 3))
    for name, ys in series.items():
        ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return png_markdown(fig)
