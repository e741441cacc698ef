"""The canonical tables every dataset is converted into, defined once.

Every source (MovieLens, Tenrec, the synthetic generator, your own) is converted once
into these four Parquet tables; everything downstream reads only these.

interactions  one row per event
    user_id    Int64    not null
    item_id    Int64    not null
    timestamp  Int64    not null  unix seconds; for sources without time (Tenrec), the
                                  event's position in the user's log
    label      Float64  nullable  rating, click 0/1, ... (source-specific meaning)
    event      String   nullable  event type ("rating", "click", "impression", ...)
    entity     String   not null  entity type of the item ("movie", "video", "article", ...)
    ...        any further event columns (e.g. Tenrec's like/follow/share)

items  one row per item (item_id unique)
    item_id    Int64    not null
    entity     String   not null
    title      String   nullable  free text
    genres     String   nullable  categories joined by "|"
    ...        any further feature columns (nullable; entity-specific ones are null
               for the other entity types)

users  one row per user (user_id unique)
    user_id    Int64    not null
    gender     String   nullable
    age        Int64    nullable
    occupation String   nullable
    ...        any further attribute columns

queries  evaluation queries: one row per (query text, relevant item) application
    query      String   not null  the raw query text (e.g. a user-applied tag)
    item_id    Int64    not null
    user_id    Int64    nullable  who applied it, where known
    timestamp  Int64    nullable

Ids (every ``user_id`` and ``item_id``) are non-negative integers, 0 <= id < 2**63: every
source read today (MovieLens, Tenrec, the daily feed, the generator) numbers its users and
items with integers, and they are kept as given, so an id in a model or a report is the
id in the source file. A negative id (``-1`` is a common "unknown" code) or a value that
is no integer ("12a", "1.5") is rejected by validation, naming the file's lines, before
anything is written. A future source with string ids maps them to integers once, in its
loader (in first-seen order, the map written beside the tables), never downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: pl.DataType
    nullable: bool
    description: str
    is_id: bool = False
    """Values are ids: integers in ``ID_DOMAIN`` (checked by ``validate.check_ids``)."""


ID_DOMAIN = "ids are non-negative integers (0 <= id < 2**63)"
"""The id domain, as validation errors state it."""


@dataclass(frozen=True)
class TableSchema:
    """Columns every table of this kind has, in order, and its unique key."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    extra_columns_allowed: bool = False
    doc: str = field(default="", compare=False)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


INTERACTIONS = TableSchema(
    name="interactions",
    columns=(
        Column("user_id", pl.Int64(), False, "user id", is_id=True),
        Column("item_id", pl.Int64(), False, "item id", is_id=True),
        Column("timestamp", pl.Int64(), False, "unix seconds, or position where no time"),
        Column("label", pl.Float64(), True, "rating / click label"),
        Column("event", pl.String(), True, "event type"),
        Column("entity", pl.String(), False, "entity type of the item"),
    ),
    extra_columns_allowed=True,
)

ITEMS = TableSchema(
    name="items",
    columns=(
        Column("item_id", pl.Int64(), False, "item id", is_id=True),
        Column("entity", pl.String(), False, "entity type"),
        Column("title", pl.String(), True, "free text"),
        Column("genres", pl.String(), True, "categories joined by '|'"),
    ),
    key=("item_id",),
    extra_columns_allowed=True,
)

USERS = TableSchema(
    name="users",
    columns=(
        Column("user_id", pl.Int64(), False, "user id", is_id=True),
        Column("gender", pl.String(), True, "gender attribute"),
        Column("age", pl.Int64(), True, "age or age-group code"),
        Column("occupation", pl.String(), True, "occupation attribute"),
    ),
    key=("user_id",),
    extra_columns_allowed=True,
)

QUERIES = TableSchema(
    name="queries",
    columns=(
        Column("query", pl.String(), False, "query text"),
        Column("item_id", pl.Int64(), False, "relevant item", is_id=True),
        Column("user_id", pl.Int64(), True, "who applied it", is_id=True),
        Column("timestamp", pl.Int64(), True, "when"),
    ),
)

TABLES: dict[str, TableSchema] = {s.name: s for s in (INTERACTIONS, ITEMS, USERS, QUERIES)}
