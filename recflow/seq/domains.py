"""Source and target domains for transfer: which events pretrain, which the task predicts.

- ``split_by_entity``: e.g. synthetic products → posts, Tenrec QK-video → QK-article.
- ``split_by_genre``: MovieLens has one entity, so movies are split by genre: an item is
  in the target domain when any of its genres is a target genre, else in the source
  domain. The default targets, ``MOVIELENS_TARGET_GENRES`` = Animation and children's
  films, hold 972 of the 9,742 movies of ml-latest-small and 10,857 of its 100,836
  ratings (567 of 610 users, median 7 target movies per user): few target items per
  user, as the cold-start setting wants.

Genre names are always taken from the data's own genre vocabulary (``resolve_genres``):
a configured name matches a data genre when both agree ignoring case, punctuation and a
plural/possessive "s", so "Children" finds ml-latest-small's "Children" and ML-100K/1M's
"Children's"; a name that matches nothing is an error listing the genres the data has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from recflow.data.validate import DataValidationError

MOVIELENS_TARGET_GENRES = ("Animation", "Children")
"""Names as configured; each dataset's own spelling is found by ``resolve_genres``."""


def split_by_entity(
    interactions: pl.DataFrame, source_entity: str, target_entity: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(source events, target events) by the interactions' ``entity`` column."""
    source = interactions.filter(pl.col("entity") == source_entity)
    target = interactions.filter(pl.col("entity") == target_entity)
    for name, df in ((source_entity, source), (target_entity, target)):
        if df.height == 0:
            found = sorted(interactions.get_column("entity").unique().to_list())
            raise DataValidationError(
                "interactions",
                "entity",
                f"no event of entity {name!r}; found {found}",
                interactions.height,
            )
    return source, target


def genre_vocabulary(items: pl.DataFrame) -> list[str]:
    """Every genre spelled in the items table's "|"-joined ``genres`` column, sorted."""
    if "genres" not in items.columns:
        return []
    return sorted(
        items.get_column("genres").drop_nulls().str.split("|").explode().unique().to_list()
    )


def _genre_key(name: str) -> str:
    key = re.sub(r"[^0-9a-z]", "", name.casefold())
    return key[:-1] if len(key) > 3 and key.endswith("s") else key


def resolve_genres(wanted: Sequence[str], vocabulary: Sequence[str]) -> tuple[str, ...]:
    """The data's spellings of the ``wanted`` genres (see the module docstring).

    Raises ``ValueError`` naming the genres that match nothing and the data's genre
    vocabulary, so a config typo fails before anything trains.
    """
    by_key: dict[str, list[str]] = {}
    for g in vocabulary:
        by_key.setdefault(_genre_key(g), []).append(g)
    resolved: list[str] = []
    missing = []
    for w in wanted:
        hits = by_key.get(_genre_key(w))
        if hits is None:
            missing.append(w)
        else:
            resolved += [h for h in hits if h not in resolved]
    if missing or not resolved:
        raise ValueError(
            f"target_genres {list(missing or wanted)} match no genre in the items' genres "
            f"column; the data's genres are {list(vocabulary)}. Set target_genres in the "
            "seq_sequences config to some of these."
        )
    return tuple(resolved)


def split_by_genre(
    interactions: pl.DataFrame,
    items: pl.DataFrame,
    target_genres: Sequence[str] = MOVIELENS_TARGET_GENRES,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(source events, target events): target = items with any genre in ``target_genres``
    (as spelled in the data: see ``resolve_genres``)."""
    genres = items.select(
        "item_id",
        pl.col("genres")
        .fill_null("")
        .str.split("|")
        .list.eval(pl.element().is_in(list(target_genres)))
        .list.any()
        .alias("is_target"),
    )
    if not genres.get_column("is_target").any():
        raise DataValidationError(
            "items", "genres", f"no item has any of the genres {list(target_genres)}", items.height
        )
    tagged = interactions.join(genres, on="item_id", how="left").with_columns(
        pl.col("is_target").fill_null(False)
    )
    source = tagged.filter(~pl.col("is_target")).drop("is_target")
    target = tagged.filter(pl.col("is_target")).drop("is_target")
    return source, target


@dataclass(frozen=True)
class TransferSetup:
    """How one dataset is turned into a source domain, a target domain and attribute tasks."""

    split: Literal["entity", "genre"]
    source_entity: str | None = None  # for split="entity"
    target_entity: str | None = None
    target_genres: tuple[str, ...] = MOVIELENS_TARGET_GENRES  # for split="genre"
    min_label: float | None = None  # behaviour = events with label ≥ this (clicks: 1.0)
    attributes: dict[str, list[float] | None] = field(default_factory=dict)  # name → age bins
    n_negatives: int = 99  # sampled negatives per held-out cold-start pair

    def resolved_target_genres(self, items: pl.DataFrame) -> tuple[str, ...]:
        """``target_genres`` as the items table spells them (``resolve_genres``)."""
        return resolve_genres(self.target_genres, genre_vocabulary(items))

    def split_events(
        self, interactions: pl.DataFrame, items: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(source behaviour, target behaviour), both filtered by ``min_label``."""
        if self.min_label is not None:
            interactions = interactions.filter(pl.col("label") >= self.min_label)
        if self.split == "entity":
            if self.source_entity is None or self.target_entity is None:
                raise ValueError("an entity split needs source_entity and target_entity")
            return split_by_entity(interactions, self.source_entity, self.target_entity)
        return split_by_genre(interactions, items, self.resolved_target_genres(items))


ML_AGE_BINS = [18.0, 25.0, 35.0, 45.0, 56.0]
"""Age groups of ML-1M's codes (1, 18, 25, 35, 45, 50, 56 merged into 6 ranges)."""

TRANSFER_SETUPS: dict[str, TransferSetup] = {
    "synthetic": TransferSetup(
        "entity", "product", "post", min_label=1.0, attributes={"gender": None, "age": None}
    ),
    "ml_small": TransferSetup("genre"),
    "ml100k": TransferSetup(
        "genre", attributes={"gender": None, "age": ML_AGE_BINS, "occupation": None}
    ),
    "ml1m": TransferSetup(
        "genre", attributes={"gender": None, "age": ML_AGE_BINS, "occupation": None}
    ),
    "tenrec": TransferSetup(
        "entity", "video", "article", min_label=1.0, attributes={"gender": None, "age": None}
    ),
}
"""Per-dataset defaults: synthetic products → posts; MovieLens split by genre; Tenrec
QK-video → QK-article (clicks)."""


def transfer_setup(dataset: str) -> TransferSetup:
    if dataset not in TRANSFER_SETUPS:
        raise KeyError(
            f"no transfer setup for dataset {dataset!r}; known: {sorted(TRANSFER_SETUPS)}"
        )
    return TRANSFER_SETUPS[dataset]
