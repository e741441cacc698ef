"""A slow, obviously-correct co-consumption matrix: plain dicts, loops and sorting.

The oracle that tests hold ``recflow.cooc.build_cooc`` equal to. It follows the same
definition (see ``recflow.cooc``) in the most literal way, with no attention to speed:
only for logs of at most a few thousand events.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import polars as pl

from recflow.cooc import NEAR_SECONDS, CoocConfig


@dataclass(frozen=True)
class ReferenceCooc:
    """The kept matrix keyed by raw item ids, and the numbers the stats report."""

    counts: dict[tuple[int, int], int]
    """(p, q) -> count, after top-K."""
    item_ids: list[int]
    """Every item of the filtered events, sorted (its position is the dense index)."""
    item_events: dict[int, int]
    row_weight: dict[int, float]
    col_weight: dict[int, float]
    events: int
    users: int
    pairs_total: int
    distinct_pairs: int
    consecutive_pairs: int
    consecutive_equal_timestamp: int
    consecutive_within_near: int


def reference_cooc(interactions: pl.DataFrame, config: CoocConfig = CoocConfig()) -> ReferenceCooc:  # noqa: B008
    """Count pairs in ``interactions`` (user_id, item_id, timestamp, optional label)."""
    has_label = "label" in interactions.columns
    per_user: dict[int, list[tuple[int, int]]] = defaultdict(list)
    item_events: Counter[int] = Counter()
    for row in interactions.iter_rows(named=True):
        label = row["label"] if has_label else None
        if config.positive_only and label is not None and label <= 0:
            continue
        per_user[row["user_id"]].append((row["timestamp"], row["item_id"]))
        item_events[row["item_id"]] += 1

    pair_counts: Counter[tuple[int, int]] = Counter()
    consecutive = tied = near = 0
    for events in per_user.values():
        events.sort()  # by (timestamp, item_id)
        for (t1, p), (t2, q) in zip(events, events[1:], strict=False):
            if p != q:
                consecutive += 1
                tied += t2 == t1
                near += t2 - t1 <= NEAR_SECONDS
        for p, q in _pairs(events, config):
            pair_counts[(p, q)] += 1

    by_row: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for (p, q), c in pair_counts.items():
        by_row[p].append((q, c))
    kept: dict[tuple[int, int], int] = {}
    for p, neighbours in by_row.items():
        neighbours.sort(key=lambda qc: (-qc[1], qc[0]))  # count desc, then smaller id
        for q, c in neighbours[: config.top_k]:
            kept[(p, q)] = c

    row_nnz = Counter(p for p, _ in kept)
    col_nnz = Counter(q for _, q in kept)
    return ReferenceCooc(
        counts=kept,
        item_ids=sorted(item_events),
        item_events=dict(item_events),
        row_weight=_mean_one_weights(row_nnz),
        col_weight=_mean_one_weights(col_nnz),
        events=sum(item_events.values()),
        users=len(per_user),
        pairs_total=sum(pair_counts.values()),
        distinct_pairs=len(pair_counts),
        consecutive_pairs=consecutive,
        consecutive_equal_timestamp=tied,
        consecutive_within_near=near,
    )


def _pairs(events: list[tuple[int, int]], config: CoocConfig) -> list[tuple[int, int]]:
    """Every counted (p, q) of one user's sorted events, with repeats."""
    out = []
    for i, (t1, p) in enumerate(events):
        for j in range(i + 1, len(events)):
            t2, q = events[j]
            if config.mode == "consecutive":
                in_window = j == i + 1
            else:
                in_window = (
                    config.window_positions is None or j - i <= config.window_positions
                ) and (config.window_seconds is None or t2 - t1 <= config.window_seconds)
            if not in_window or p == q:
                continue
            out.append((p, q))
            if config.mode == "window" and (
                config.symmetric or (config.ties_unordered and t1 == t2)
            ):
                out.append((q, p))
    return out


def _mean_one_weights(nnz: Counter[int]) -> dict[int, float]:
    """w_x = nnz(x)^(-1/2) / mean over non-empty x of nnz^(-1/2)."""
    raw = {x: 1.0 / math.sqrt(n) for x, n in nnz.items()}
    if not raw:
        return {}
    mean = sum(raw.values()) / len(raw)
    return {x: w / mean for x, w in raw.items()}
