"""Feature-aligned training tables: one row per impression of the source or target entity.

Built from canonical tables and a ``FeatureMapping``. Every row carries the same columns
whatever its entity, so source and target samples can share one batch (MKT section 3.2):

    user_id, item_id, timestamp, entity, entity_index (0 source / 1 target), label,
    split ("train"/"test"), target_clicks_in_train (the user's activity, for buckets),
    user:<col>       user-profile codes
    item:item_id     the item id code (entity-shared)
    shared:<col>     entity-shared codes
    specific:<col>   entity-specific codes (MISSING for the other entity's rows)
    seq:<entity>     the user's last L clicked item codes of that entity, strictly before
                     this impression's timestamp, oldest first, left-padded with MISSING

The split is time-ordered: the first ``train_share`` of impressions (by timestamp) train,
the rest test — globally, or per user where timestamps are only positions in the user's
log (Tenrec). Encoders are fitted on the training rows only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from recflow.data.validate import DataValidationError
from recflow.mkt.encoding import MISSING, UNSEEN, ColumnEncoder
from recflow.mkt.features import FeatureMapping, validate_mapping
from recflow.store import read_json, write_json

ITEM_ID = "item:item_id"


@dataclass(frozen=True)
class TableConfig:
    """How the feature-aligned tables are built."""

    train_share: float = 0.8
    sequence_length: int = 20
    numeric_buckets: int = 10


@dataclass(frozen=True)
class FeatureSpec:
    """Everything a model needs to size its embeddings (saved beside every checkpoint)."""

    user_vocab: tuple[int, ...]
    item_vocab: int
    shared_vocab: tuple[int, ...]
    specific_vocab: tuple[int, ...]
    specific_entity: tuple[int, ...]  # 0 = source, 1 = target, per specific column
    n_sequences: int
    sequence_length: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FeatureSpec:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()})


def _time_split(ev: pl.DataFrame, share: float, per_user: bool) -> pl.Series:
    """'train' for the first ``share`` of events (ceil), 'test' for the rest."""
    if per_user:
        pos = ev.select(pl.int_range(pl.len()).over("user_id")).to_series()
        n = ev.select(pl.len().over("user_id")).to_series()
    else:
        order = np.lexsort((ev.get_column("row").to_numpy(), ev.get_column("timestamp").to_numpy()))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        pos, n = pl.Series(rank), pl.Series(np.full(len(order), len(order)))
    is_train = pos.cast(pl.Float64) < share * n.cast(pl.Float64)
    return pl.Series("split", np.where(is_train.to_numpy(), "train", "test"))


def _sequences(
    users: np.ndarray,
    timestamps: np.ndarray,
    entities: np.ndarray,
    clicks: np.ndarray,
    item_codes: np.ndarray,
    entity: str,
    length: int,
) -> np.ndarray:
    """(n, length) last clicked item codes of ``entity`` strictly before each event.

    Rows must be sorted by (user, timestamp). Events sharing a timestamp never see each
    other's clicks, so no label leaks into its own features.
    """
    n = len(users)
    is_click = (entities == entity) & (clicks > 0)
    clicked_items = item_codes[is_click]
    before = np.concatenate([[0], np.cumsum(is_click)])  # clicks in rows [0, i)
    new_group = np.r_[True, (users[1:] != users[:-1]) | (timestamps[1:] != timestamps[:-1])]
    new_user = np.r_[True, users[1:] != users[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    user_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    hi = before[group_start]  # clicks of this user strictly before this timestamp end here
    lo = before[user_start]  # ... and start here
    idx = hi[:, None] - length + np.arange(length)[None, :]  # (n, length), oldest first
    valid = idx >= lo[:, None]
    safe = np.clip(idx, 0, max(len(clicked_items) - 1, 0))
    gathered = clicked_items[safe] if len(clicked_items) else np.zeros_like(idx)
    return np.where(valid, gathered, MISSING).astype(np.int32)


def _check_binary(ev: pl.DataFrame, column: str, mapping: FeatureMapping) -> None:
    values = ev.get_column(column)
    n_null = int(values.null_count())
    if n_null:
        raise DataValidationError(
            f"{mapping.dataset}/interactions", column, "null labels in an MKT table", n_null
        )
    n_bad = int((~values.is_in([0.0, 1.0])).sum())
    if n_bad:
        raise DataValidationError(
            f"{mapping.dataset}/interactions", column, "labels must be 0 or 1", n_bad
        )


def build_feature_tables(
    interactions: pl.DataFrame | pl.LazyFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
    mapping: FeatureMapping,
    config: TableConfig = TableConfig(),
) -> FeatureTables:
    """Validate ``mapping`` and build the feature-aligned, encoded, split table."""
    validate_mapping(mapping, interactions, items, users)
    lf = interactions.lazy() if isinstance(interactions, pl.DataFrame) else interactions
    ev = (
        lf.filter(pl.col("entity").is_in(list(mapping.entities)))
        .select(
            "user_id",
            "item_id",
            "timestamp",
            "entity",
            pl.col(mapping.label_column).cast(pl.Float64).alias("label"),
            pl.col(mapping.click_column).cast(pl.Float64).alias("_click"),
        )
        .collect()
        .with_row_index("row")
    )
    if ev.height == 0:
        raise DataValidationError(
            f"{mapping.dataset}/interactions", "entity", f"no events of {mapping.entities}", 0
        )
    _check_binary(ev, "label", mapping)
    ev = ev.sort(["user_id", "timestamp", "row"])
    ev = ev.with_columns(
        _time_split(ev, config.train_share, mapping.timestamps_are_positions),
        pl.when(pl.col("entity") == mapping.source_entity)
        .then(0)
        .otherwise(1)
        .cast(pl.Int64)
        .alias("entity_index"),
    )
    user_cols = [c for c in mapping.user_profile if c != "user_id"]
    ev = ev.join(
        users.select("user_id", *user_cols).rename({c: f"_u_{c}" for c in user_cols}),
        on="user_id",
        how="left",
        maintain_order="left",
    )
    if "user_id" in mapping.user_profile:
        ev = ev.with_columns(pl.col("user_id").alias("_u_user_id"))
    item_cols = [*mapping.entity_shared, *mapping.specific_columns]
    ev = ev.join(
        items.select("item_id", *item_cols).rename({c: f"_i_{c}" for c in item_cols}),
        on="item_id",
        how="left",
        maintain_order="left",
    )
    train = ev.filter(pl.col("split") == "train")
    encoders: dict[str, ColumnEncoder] = {}

    def buckets(c: str) -> int | None:
        return config.numeric_buckets if c in mapping.bucketized else None

    encoded: dict[str, np.ndarray] = {}
    for c in mapping.user_profile:
        key = f"user:{c}"
        encoders[key] = ColumnEncoder.fit(train.get_column(f"_u_{c}"), buckets=buckets(c))
        encoded[key] = encoders[key].encode(ev.get_column(f"_u_{c}"))
    encoders[ITEM_ID] = ColumnEncoder.fit(train.get_column("item_id"))
    item_codes = encoders[ITEM_ID].encode(ev.get_column("item_id"))
    encoded[ITEM_ID] = item_codes
    for prefix, cols in (("shared", mapping.entity_shared), ("specific", mapping.specific_columns)):
        for c in cols:
            key = f"{prefix}:{c}"
            encoders[key] = ColumnEncoder.fit(train.get_column(f"_i_{c}"), buckets=buckets(c))
            encoded[key] = encoders[key].encode(ev.get_column(f"_i_{c}"))

    arrays = {k: ev.get_column(k).to_numpy() for k in ("user_id", "timestamp", "entity", "_click")}
    L = config.sequence_length
    for e in mapping.sequence_entities:
        seq = _sequences(
            arrays["user_id"],
            arrays["timestamp"],
            arrays["entity"],
            arrays["_click"],
            item_codes,
            e,
            L,
        )
        encoded[f"seq:{e}"] = seq

    activity = (
        train.filter((pl.col("entity") == mapping.target_entity) & (pl.col("_click") > 0))
        .group_by("user_id")
        .agg(pl.len().cast(pl.Int64).alias("target_clicks_in_train"))
    )
    frame = ev.select("user_id", "item_id", "timestamp", "entity", "entity_index", "label", "split")
    frame = frame.with_columns(
        [pl.Series(k, v) for k, v in encoded.items() if not k.startswith("seq:")]
        + [
            pl.Series(k, v, dtype=pl.Array(pl.Int32, L))
            for k, v in encoded.items()
            if k.startswith("seq:")
        ]
    )
    frame = frame.join(activity, on="user_id", how="left", maintain_order="left").with_columns(
        pl.col("target_clicks_in_train").fill_null(0)
    )
    return FeatureTables(
        mapping=mapping,
        config=config,
        frame=frame,
        encoders=encoders,
        item_shared=_item_shared_codes(items, mapping, encoders),
    )


def _item_shared_codes(
    items: pl.DataFrame, mapping: FeatureMapping, encoders: dict[str, ColumnEncoder]
) -> np.ndarray:
    """(item codes, shared columns): the entity-shared codes of every known item code."""
    item_enc = encoders[ITEM_ID]
    table = np.zeros((item_enc.size, len(mapping.entity_shared)), dtype=np.int64)
    codes = item_enc.encode(items.get_column("item_id"))
    known = codes > UNSEEN
    for j, c in enumerate(mapping.entity_shared):
        table[codes[known], j] = encoders[f"shared:{c}"].encode(items.get_column(c))[known]
    return table


@dataclass
class FeatureTables:
    """The encoded impressions of both entities plus the encoders that produced them."""

    mapping: FeatureMapping
    config: TableConfig
    frame: pl.DataFrame
    encoders: dict[str, ColumnEncoder]
    item_shared: np.ndarray  # (item codes, shared columns)

    def columns(self, prefix: str) -> list[str]:
        return [c for c in self.frame.columns if c.startswith(prefix + ":")]

    def spec(self) -> FeatureSpec:
        m = self.mapping
        return FeatureSpec(
            user_vocab=tuple(self.encoders[c].size for c in self.columns("user")),
            item_vocab=self.encoders[ITEM_ID].size,
            shared_vocab=tuple(self.encoders[c].size for c in self.columns("shared")),
            specific_vocab=tuple(self.encoders[c].size for c in self.columns("specific")),
            specific_entity=tuple(
                i for i, e in enumerate(m.entities) for _ in m.entity_specific.get(e, ())
            ),
            n_sequences=len(m.sequence_entities),
            sequence_length=self.config.sequence_length,
        )

    def with_validation(self, share: float) -> FeatureTables:
        """A copy whose last ``share`` of training impressions (by time, like the train/test
        split: globally, or per user where timestamps are positions) form split "valid".

        Model selection (epochs, settings) looks at "valid" and never at "test". Encoders
        stay those fitted on all training rows: they see which ids exist, never a label.
        """
        if not 0.0 < share < 1.0:
            raise ValueError(f"validation share must be in (0, 1), got {share}")
        if (self.frame.get_column("split") == "valid").any():
            raise ValueError("these tables already have a validation split")
        frame = self.frame.with_row_index("row")
        train = frame.filter(pl.col("split") == "train")
        inner = _time_split(train, 1.0 - share, self.mapping.timestamps_are_positions)
        relabel = train.select("row").with_columns(
            pl.Series("new_split", np.where(inner.to_numpy() == "train", "train", "valid"))
        )
        frame = (
            frame.join(relabel, on="row", how="left", maintain_order="left")
            .with_columns(pl.coalesce("new_split", "split").alias("split"))
            .drop("row", "new_split")
        )
        return FeatureTables(
            mapping=self.mapping,
            config=self.config,
            frame=frame,
            encoders=self.encoders,
            item_shared=self.item_shared,
        )

    def rows(self, split: str, entity: str | None = None) -> pl.DataFrame:
        """The rows of ``split`` ("train"/"valid"/"test"), optionally of one entity only."""
        df = self.frame.filter(pl.col("split") == split)
        return df if entity is None else df.filter(pl.col("entity") == entity)

    def tensors(self, split: str, entity: str | None = None) -> dict[str, torch.Tensor]:
        """The model inputs of ``split``: CPU tensors with a leading sample dimension."""
        df = self.rows(split, entity)
        n = df.height

        def stack(cols: list[str]) -> torch.Tensor:
            if not cols:
                return torch.zeros((n, 0), dtype=torch.long)
            return torch.from_numpy(df.select(cols).to_numpy().astype(np.int64, copy=True))

        seqs = [
            df.get_column(c).to_numpy().astype(np.int64).reshape(n, self.config.sequence_length)
            for c in self.columns("seq")
        ]
        return {
            "user": stack(self.columns("user")),  # (n, user features)
            "item": torch.from_numpy(df.get_column(ITEM_ID).to_numpy().astype(np.int64)),  # (n,)
            "shared": stack(self.columns("shared")),  # (n, shared features)
            "specific": stack(self.columns("specific")),  # (n, specific features)
            "seq": torch.from_numpy(np.stack(seqs, axis=1)),  # (n, entities, L)
            "entity": torch.from_numpy(df.get_column("entity_index").to_numpy().copy()),  # (n,)
            "label": torch.from_numpy(df.get_column("label").to_numpy().astype(np.float32)),
        }

    def summary(self) -> dict[str, Any]:
        """Row counts, click rates and vocabulary sizes, for metadata."""
        counts = (
            self.frame.group_by("split", "entity")
            .agg(pl.len().alias("rows"), pl.col("label").mean().alias("positive_rate"))
            .sort("split", "entity")
        )
        return {
            "rows": self.frame.height,
            "by_split_entity": counts.to_dicts(),
            "vocab_sizes": {k: e.size for k, e in self.encoders.items()},
            "groups": self.mapping.groups(),
        }

    def save(self, out_dir: str | Path) -> None:
        """Write into ``out_dir`` (a fresh folder, e.g. from ``ArtifactStore.new_version``)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.frame.write_parquet(out / "aligned.parquet")
        np.save(out / "item_shared.npy", self.item_shared)
        m = asdict(self.mapping)
        write_json(
            {
                "mapping": m,
                "config": asdict(self.config),
                "encoders": {k: e.to_json() for k, e in self.encoders.items()},
            },
            out / "encoders.json",
        )

    @classmethod
    def load(cls, root: str | Path) -> FeatureTables:
        root = Path(root)
        meta = read_json(root / "encoders.json")
        m = meta["mapping"]
        mapping = FeatureMapping(
            **{
                k: tuple(v) if isinstance(v, list) else v
                for k, v in m.items()
                if k != "entity_specific"
            },
            entity_specific={e: tuple(cols) for e, cols in m["entity_specific"].items()},
        )
        return cls(
            mapping=mapping,
            config=TableConfig(**meta["config"]),
            frame=pl.read_parquet(root / "aligned.parquet", glob=False),
            encoders={k: ColumnEncoder.from_json(v) for k, v in meta["encoders"].items()},
            item_shared=np.load(root / "item_shared.npy", allow_pickle=False),
        )


def activity_bucket(target_clicks: np.ndarray, edges: tuple[int, int] = (10, 30)) -> np.ndarray:
    """User-activity bucket labels as in the paper's table 4: '0-10', '10-30', '>30' clicks.

    [0, 10) → '0-10', [10, 30] → '10-30', above 30 → '>30'.
    """
    lo, hi = edges
    c = np.asarray(target_clicks)
    return np.where(c < lo, f"0-{lo}", np.where(c <= hi, f"{lo}-{hi}", f">{hi}"))
