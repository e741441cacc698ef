"""Evaluation queries from the queries table, and the optional tag-text source.

Each distinct query string (lower-cased, trimmed) is assigned to one of three parts by a
stable hash of the string: ``text`` (its applications become item text), ``validation``
(tunes the popularity prior) or ``test`` (reported). A string is in exactly one part, so
a tag used as a query is never item text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

PARTS = ("text", "validation", "test")


@dataclass(frozen=True)
class QuerySplit:
    """Shares of distinct query strings per part (they must sum to 1)."""

    text_share: float = 0.0
    validation_share: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            self.text_share < 0
            or self.validation_share < 0
            or self.text_share + self.validation_share > 1
        ):
            raise ValueError(
                f"bad shares: text {self.text_share}, validation {self.validation_share}"
            )


@dataclass(frozen=True)
class TagSplitConfig:
    """The vocabulary stage's query split, as the Launchpad names it.

    ``tag_text_share``: share of query (tag) strings used as item text (0 = title and
    genres only); ``validation_share``: share that tunes the popularity prior and the
    fusion weights; the rest are test queries. ``split_seed`` salts the hash.
    """

    tag_text_share: float = 0.5
    validation_share: float = 0.25
    split_seed: int = 0

    def query_split(self) -> QuerySplit:
        return QuerySplit(self.tag_text_share, self.validation_share, self.split_seed)


def normalize_query(q: str) -> str:
    return " ".join(q.lower().split())


def part_of(query: str, split: QuerySplit) -> str:
    """The part a query string belongs to (stable across runs and machines)."""
    digest = hashlib.blake2b(f"{split.seed}:{normalize_query(query)}".encode(), digest_size=8)
    u = int.from_bytes(digest.digest(), "little") / 2**64  # uniform in [0, 1)
    if u < split.text_share:
        return "text"
    if u < split.text_share + split.validation_share:
        return "validation"
    return "test"


def assign_parts(queries: pl.DataFrame, split: QuerySplit) -> pl.DataFrame:
    """The queries table with ``query_norm`` and ``part`` columns added."""
    norm = [normalize_query(q) for q in queries.get_column("query").to_list()]
    parts = [part_of(q, split) for q in norm]
    return queries.with_columns(
        pl.Series("query_norm", norm, dtype=pl.String), pl.Series("part", parts, dtype=pl.String)
    )


def tag_text(queries: pl.DataFrame, split: QuerySplit) -> pl.DataFrame:
    """(item_id, tags): the ``text`` part's distinct tag strings per item, "|"-joined."""
    parted = assign_parts(queries, split).filter(pl.col("part") == "text")
    return (
        parted.select("item_id", "query_norm")
        .unique()
        .sort("item_id", "query_norm")
        .group_by("item_id", maintain_order=True)
        .agg(pl.col("query_norm").str.join("|").alias("tags"))
    )


def eval_queries(
    queries: pl.DataFrame,
    item_ids: np.ndarray,
    split: QuerySplit,
    part: str,
    min_relevant: int = 3,
) -> list[tuple[str, np.ndarray]]:
    """(query, relevant item indices) of one part, for queries with ≥ ``min_relevant`` items
    in the model's index (``item_ids``: index → item id), sorted by query string."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    pos = pl.DataFrame({"item_id": item_ids.astype(np.int64), "_i": np.arange(len(item_ids))})
    grouped = (
        assign_parts(queries, split)
        .filter(pl.col("part") == part)
        .join(pos, on="item_id", how="inner")
        .group_by("query_norm")
        .agg(pl.col("_i").unique().sort())
        .filter(pl.col("_i").list.len() >= min_relevant)
        .sort("query_norm")
    )
    return [
        (q, np.asarray(rel, dtype=np.int64))
        for q, rel in zip(
            grouped.get_column("query_norm").to_list(),
            grouped.get_column("_i").to_list(),
            strict=True,
        )
    ]


def check_query_split(
    queries: pl.DataFrame,
    item_ids: np.ndarray,
    split: QuerySplit,
    min_relevant: int = 3,
    min_queries: int = 5,
) -> dict[str, int]:
    """Evaluation queries per part; raise before any training when the validation or the
    test part has fewer than ``min_queries`` queries with ``min_relevant`` relevant items.

    The message names the vocabulary config fields that move strings between parts.
    """
    counts = {
        part: len(eval_queries(queries, item_ids, split, part, min_relevant))
        for part in ("validation", "test")
    }
    short = [p for p, n in counts.items() if n < min_queries]
    if short:
        test_share = 1.0 - split.text_share - split.validation_share
        raise ValueError(
            f"query split leaves {counts['validation']} validation and {counts['test']} test "
            f"queries with >= {min_relevant} relevant items (need >= {min_queries} each): "
            f"tag_text_share={split.text_share:g}, validation_share={split.validation_share:g} "
            f"leave test share {test_share:g}. Lower tag_text_share or validation_share in the "
            "zsl_vocabulary config so that every part keeps queries."
        )
    return counts
