"""Turn recflow's ``on_progress`` callbacks into live lines in the run's log."""

import time

import dagster as dg

from recflow.progress import ProgressFn


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``: short enough for a log line."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_line(
    label: str, step: int, total: int, values: dict[str, float], elapsed_s: float
) -> str:
    """``label step/total (pct%) k=v ... elapsed 12s, ETA 30s``.

    ``elapsed_s``/``eta_s`` reported by the loop win over the callback's own clock (a
    resumed loop knows its remaining work better); otherwise ETA = elapsed / step ·
    (total − step), the loop's average pace so far.
    """
    values = dict(values)
    elapsed = float(values.pop("elapsed_s", elapsed_s))
    eta = values.pop("eta_s", None)
    if eta is None:
        eta = elapsed / max(step, 1) * max(total - step, 0)
    pct = 100 * step / total if total else 100.0
    pieces = [f"{label} {step}/{total} ({pct:.0f}%)"]
    pieces += [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
    pieces.append(f"elapsed {format_seconds(elapsed)}, ETA {format_seconds(float(eta))}")
    return " ".join(pieces)


def log_progress(context: dg.AssetExecutionContext, label: str) -> ProgressFn:
    """A ProgressFn that logs one ``progress_line`` per report at info level.

    ``label`` says what the step counts (``"zsl_te iteration"``, ``"pretrain epoch"``).
    """
    started = time.perf_counter()

    def report(step: int, total: int, values: dict[str, float]) -> None:
        elapsed = time.perf_counter() - started
        context.log.info(progress_line(label, step, total, values, elapsed))

    return report
