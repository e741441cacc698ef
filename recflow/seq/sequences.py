"""Per-user behaviour sequences from canonical interactions, their splits and token batches.

A sequence is one user's items ordered by (timestamp, item_id), stored as Parquet with
canonical item ids (columns ``user_id``, ``items``: list of Int64, ``timestamps``: list of
Int64). Networks see tokens instead: ``ItemIndex`` maps item ids to token indices, with
two reserved tokens, ``PAD = 0`` (left padding) and ``CLS = 1`` (appended at the end of a
sequence for fine-tuning, where the network reads the user representation).

Splits:
- by user (``split_by_user``): each user lands in train, valid or test (seeded), used by
  downstream tasks so that test users are never seen while fine-tuning;
- by time (``split_by_time``): leave-last-out per user; the train part ends two events
  before the end, valid predicts the second-to-last event and test the last, used to
  pretrain and validate next-item prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from recflow.data.validate import DataValidationError
from recflow.store import atomic_path

PAD = 0
CLS = 1
FIRST_ITEM_TOKEN = 2

SEQUENCE_COLUMNS = ("user_id", "items", "timestamps")


@dataclass(frozen=True)
class ItemIndex:
    """Item id ↔ token: token ``FIRST_ITEM_TOKEN + i`` is ``item_ids[i]`` (sorted ids)."""

    item_ids: np.ndarray  # (n_items,) int64, strictly increasing

    @classmethod
    def from_item_ids(cls, ids: np.ndarray | pl.Series) -> ItemIndex:
        return cls(np.unique(np.asarray(ids, dtype=np.int64)))

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_tokens(self) -> int:
        """Vocabulary size of a network: items plus PAD and CLS."""
        return self.n_items + FIRST_ITEM_TOKEN

    def encode(self, ids: np.ndarray, where: str = "items") -> np.ndarray:
        """Tokens of ``ids``; an unknown id is an error naming how many there are."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.item_ids, ids)
        pos_c = np.minimum(pos, max(self.n_items - 1, 0))
        unknown = (pos >= self.n_items) | (self.item_ids[pos_c] != ids)
        if unknown.any():
            raise DataValidationError(
                where,
                "item_id",
                f"item ids outside the item index, e.g. {ids[unknown][:3].tolist()}",
                int(unknown.sum()),
            )
        return pos + FIRST_ITEM_TOKEN

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Item ids of item tokens (PAD/CLS are an error)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if (tokens < FIRST_ITEM_TOKEN).any() or (tokens >= self.n_tokens).any():
            raise ValueError("decode: tokens outside the item range")
        return self.item_ids[tokens - FIRST_ITEM_TOKEN]

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "token": np.arange(FIRST_ITEM_TOKEN, self.n_tokens, dtype=np.int64),
                "item_id": self.item_ids,
            }
        )

    @classmethod
    def from_frame(cls, df: pl.DataFrame, where: str = "item_index") -> ItemIndex:
        expected = np.arange(FIRST_ITEM_TOKEN, FIRST_ITEM_TOKEN + df.height)
        if not np.array_equal(df.get_column("token").to_numpy(), expected):
            raise DataValidationError(where, "token", "tokens are not 2..n+1 in order", df.height)
        ids = df.get_column("item_id").to_numpy().astype(np.int64)
        if len(ids) > 1 and not (np.diff(ids) > 0).all():
            raise DataValidationError(
                where, "item_id", "item ids not strictly increasing", len(ids)
            )
        return cls(ids)


@dataclass(frozen=True)
class SequenceConfig:
    """Which events become a sequence."""

    entity: str | None = None  # keep only items of this entity type (None: all)
    min_label: float | None = None  # keep events with label ≥ this (1.0 = clicks); None: all
    min_len: int = 3  # users with fewer kept events are dropped
    max_events: int | None = None  # keep only each user's most recent events (None: all)


def build_sequences(
    interactions: pl.DataFrame | pl.LazyFrame, config: SequenceConfig
) -> pl.DataFrame:
    """One row per user: items and timestamps sorted by (timestamp, item_id).

    Returns columns ``user_id`` (Int64), ``items`` (List[Int64]), ``timestamps``
    (List[Int64]), sorted by user_id.
    """
    lf = interactions.lazy()
    if config.entity is not None:
        lf = lf.filter(pl.col("entity") == config.entity)
    if config.min_label is not None:
        lf = lf.filter(pl.col("label") >= config.min_label)
    seqs = (
        lf.sort(["user_id", "timestamp", "item_id"])
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("item_id").alias("items"), pl.col("timestamp").alias("timestamps"))
        .filter(pl.col("items").list.len() >= config.min_len)
    )
    if config.max_events is not None:
        n = config.max_events
        seqs = seqs.with_columns(pl.col("items").list.tail(n), pl.col("timestamps").list.tail(n))
    return seqs.collect()


def split_by_user(
    sequences: pl.DataFrame, valid_share: float = 0.1, test_share: float = 0.1, seed: int = 0
) -> pl.DataFrame:
    """Add a ``split`` column ("train"/"valid"/"test") assigning whole users, seeded."""
    if not 0 <= valid_share + test_share < 1:
        raise ValueError("valid_share + test_share must be in [0, 1)")
    n = sequences.height
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_valid = round(n * test_share), round(n * valid_share)
    split = np.full(n, "train", dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test : n_test + n_valid]] = "valid"
    return sequences.with_columns(pl.Series("split", split.tolist(), dtype=pl.String))


def split_by_time(sequences: pl.DataFrame) -> pl.DataFrame:
    """Leave-last-out per user: rows for "train" (all but the last two events), "valid"
    (all but the last; its target is its last event) and "test" (all events; target = last).

    Users need at least 3 events so that the train part is not empty.
    """
    short = sequences.filter(pl.col("items").list.len() < 3).height
    if short:
        raise DataValidationError(
            "sequences", "items", "split_by_time needs at least 3 events per user", short
        )
    parts = []
    for name, drop in (("train", 2), ("valid", 1), ("test", 0)):
        parts.append(
            sequences.select(
                "user_id",
                pl.col("items").list.head(pl.col("items").list.len() - drop),
                pl.col("timestamps").list.head(pl.col("timestamps").list.len() - drop),
                pl.lit(name).alias("split"),
            )
        )
    return pl.concat(parts)


def write_sequences(sequences: pl.DataFrame, path: str | Path) -> None:
    """Write a sequence table as Parquet, atomically."""
    with atomic_path(path) as tmp:
        sequences.write_parquet(tmp)


def read_sequences(path: str | Path) -> pl.DataFrame:
    """Read a sequence table, checking its columns."""
    df = pl.read_parquet(path, glob=False)
    missing = [c for c in SEQUENCE_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(path, missing[0], f"missing column(s) {missing}", df.height)
    return df


@dataclass(frozen=True)
class RaggedTokens:
    """Many token sequences of different lengths in one flat array (no Python lists)."""

    flat: np.ndarray  # (total_tokens,) int64
    offsets: np.ndarray  # (n + 1,) int64; sequence i is flat[offsets[i]:offsets[i+1]]

    @classmethod
    def from_items(
        cls, items: pl.Series, index: ItemIndex, where: str = "sequences"
    ) -> RaggedTokens:
        """Encode a List[Int64] column of item ids."""
        lengths = items.list.len().to_numpy().astype(np.int64)
        flat_ids = items.explode().drop_nulls().to_numpy()
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        return cls(index.encode(flat_ids, where), offsets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def windows(self, rows: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
        """Tokens ``[start, start + width)`` of each row, left-padded with PAD when the
        sequence ends earlier: (len(rows), width) int64."""
        rows = np.asarray(rows, dtype=np.int64)
        take = np.minimum(self.lengths[rows] - starts, width)  # (B,) tokens actually present
        end = self.offsets[rows] + starts + take  # (B,) exclusive end in flat
        col = np.arange(width)
        pos = end[:, None] - width + col[None, :]  # (B, width)
        valid = col[None, :] >= (width - take)[:, None]
        return np.where(valid, self.flat[np.clip(pos, 0, max(len(self.flat) - 1, 0))], PAD)

    def last(self, rows: np.ndarray, width: int) -> np.ndarray:
        """The last ``width`` tokens of each row, left-padded: (len(rows), width)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = np.maximum(self.lengths[rows] - width, 0)
        return self.windows(rows, starts, width)


def contexts_and_targets(
    sequences: pl.DataFrame, index: ItemIndex, where: str = "sequences"
) -> tuple[RaggedTokens, np.ndarray]:
    """Next-item examples: every sequence but its last item, and that last item's token
    (e.g. the "valid" or "test" rows of ``split_by_time``)."""
    items = sequences.select(
        pl.col("items").list.head(pl.col("items").list.len() - 1).alias("context"),
        pl.col("items").list.last().alias("target"),
    )
    contexts = RaggedTokens.from_items(items.get_column("context"), index, where)
    return contexts, index.encode(items.get_column("target").to_numpy(), where)


def with_cls(tokens: np.ndarray) -> np.ndarray:
    """Shift left by one and put CLS in the last column: (B, T) → (B, T), CLS at T-1."""
    out = np.empty_like(tokens)
    out[:, :-1] = tokens[:, 1:]
    out[:, -1] = CLS
    return out


def as_long(tokens: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
