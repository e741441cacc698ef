"""The co-consumption matrix's summary numbers, from per-row neighbour counts.

One function for every engine (DuckDB in ``recflow.cooc``, Spark in
``recflow.cooc_spark``): each engine counts rows by their kept neighbours, and the
numbers shown in the asset metadata are derived here, so they agree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NEAR_SECONDS = 60
"""Consecutive pairs at most this many seconds apart count as "near" in the stats."""


def step_stats(
    *, events: int, users: int, self_steps: int, consecutive: int, tied: int, near: int
) -> dict[str, Any]:
    """The per-step numbers: events and users after filtering, consecutive pairs p→q with
    p≠q (and p = q, not counted), and the shares of those with equal timestamps or at most
    ``NEAR_SECONDS`` apart (how much the order within a user can be trusted)."""
    return {
        "events": int(events),
        "users": int(users),
        "consecutive_pairs": int(consecutive),
        "consecutive_self_pairs": int(self_steps),
        "share_equal_timestamp": tied / consecutive if consecutive else 0.0,
        f"share_within_{NEAR_SECONDS}s": near / consecutive if consecutive else 0.0,
    }


def histogram_edges(top_k: int) -> list[int]:
    """Bucket edges 1, 2, 3, 5, 10, 20, 50, 100, ... below K, then K and K + 1, so the last
    bucket counts the rows that hit the cap."""
    edges = {1, 2, 3}
    magnitude = 1
    while magnitude < top_k:
        edges.update(magnitude * f for f in (1, 2, 5))
        magnitude *= 10
    return sorted({e for e in edges if e < top_k} | {top_k, top_k + 1})


def matrix_stats(
    *,
    items: int,
    cols: int,
    distinct_pairs: int,
    pairs_total: int,
    rows_by_nnz: Mapping[int, int],
    top_k: int,
) -> dict[str, Any]:
    """Items, nnz, rows, cols, pairs before top-K, neighbours per row and their histogram.

    ``rows_by_nnz`` maps a kept row length (1..K) to how many rows have it; ``cols`` is
    the number of non-empty columns; ``distinct_pairs`` / ``pairs_total`` are the matrix's
    nnz and sum of counts before top-K.
    """
    by_nnz = sorted(rows_by_nnz.items())
    rows = sum(n for _, n in by_nnz)
    nnz = sum(k * n for k, n in by_nnz)
    edges = histogram_edges(top_k)
    counts = [0] * (len(edges) - 1)
    for k, n in by_nnz:
        for b in range(len(edges) - 1):
            if edges[b] <= k < edges[b + 1]:
                counts[b] += n
                break
    return {
        "items": int(items),
        "nnz": int(nnz),
        "rows": int(rows),
        "cols": int(cols),
        "distinct_pairs": int(distinct_pairs),
        "pairs_total": int(pairs_total),
        "mean_neighbours": nnz / rows if rows else 0.0,
        "max_neighbours": int(max((k for k, _ in by_nnz), default=0)),
        "rows_at_top_k": int(sum(n for k, n in by_nnz if k == top_k)),
        "neighbour_histogram": {"edges": edges, "counts": counts},
    }
