"""The progress callback that long loops report through (no Dagster import here).

Every solver or training loop takes ``on_progress: ProgressFn | None`` and calls it once
per step with the step number (1-based), the total and a dict of numbers such as
``{"loss": 0.31}``. The Dagster layer turns that into log lines in the run view.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressFn = Callable[[int, int, dict[str, float]], None]


class ProgressTimer:
    """Adds elapsed and estimated remaining seconds to each report."""

    def __init__(self, total: int, on_progress: ProgressFn | None) -> None:
        self.total = total
        self.on_progress = on_progress
        self.start = time.perf_counter()

    def report(self, step: int, values: dict[str, float]) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self.start
        remaining = elapsed / max(step, 1) * max(self.total - step, 0)
        self.on_progress(step, self.total, {**values, "elapsed_s": elapsed, "eta_s": remaining})
