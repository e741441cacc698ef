"""The feature-group mapping of a multi-entity dataset, declared once per dataset.

MKT (Guan et al. 2024, section 3.2) splits every sample's features into four groups:

- user profile: columns of the users table (``user_id`` itself is one, if declared);
- user behaviour sequences: per entity type, the user's most recent clicked item ids
  (built from the interactions, not a column);
- entity-shared: item columns that every entity type has (e.g. ``category``); the item id
  is always entity-shared;
- entity-specific: item columns that only one entity type has (``price`` for products,
  ``style`` for posts); null for the other entity types.

``validate_mapping`` checks a mapping against the canonical tables: every users column and
every items column (besides the structural ``item_id``/``entity``) must be in exactly one
group (``ignored`` is a group too: it says "deliberately unused"), so a new column can
never be silently dropped or used twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from recflow.data.validate import DataValidationError

ITEM_STRUCTURAL = ("item_id", "entity")


@dataclass(frozen=True)
class FeatureMapping:
    """Which canonical column feeds which MKT feature group, for one dataset."""

    dataset: str
    source_entity: str
    target_entity: str
    user_profile: tuple[str, ...]
    entity_shared: tuple[str, ...]
    entity_specific: Mapping[str, tuple[str, ...]]
    sequence_entities: tuple[str, ...]
    ignored_user_columns: tuple[str, ...] = ()
    ignored_item_columns: tuple[str, ...] = ()
    bucketized: tuple[str, ...] = ()  # numeric columns turned into quantile-bucket ids
    label_column: str = "label"  # interactions column predicted (1 = positive)
    click_column: str = "label"  # interactions column that defines a click (sequences, activity)
    timestamps_are_positions: bool = False  # True: split each user's log, not global time
    notes: str = field(default="", compare=False)

    @property
    def entities(self) -> tuple[str, str]:
        return (self.source_entity, self.target_entity)

    @property
    def specific_columns(self) -> tuple[str, ...]:
        """All entity-specific columns, source entity's first (the layout of the tensors)."""
        return tuple(c for e in self.entities for c in self.entity_specific.get(e, ()))

    def groups(self) -> dict[str, list[str]]:
        """The mapping as plain lists, for metadata and the UI."""
        return {
            "user_profile": list(self.user_profile),
            "behaviour_sequences": [f"recent clicked {e} ids" for e in self.sequence_entities],
            "entity_shared": ["item_id", *self.entity_shared],
            **{
                f"entity_specific[{e}]": list(self.entity_specific.get(e, ()))
                for e in self.entities
            },
            "ignored": [*self.ignored_user_columns, *self.ignored_item_columns],
        }


def _memberships(groups: Mapping[str, tuple[str, ...]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for group, cols in groups.items():
        for c in cols:
            out.setdefault(c, []).append(group)
    return out


def _check_table(
    mapping: FeatureMapping,
    table: str,
    df: pl.DataFrame,
    groups: Mapping[str, tuple[str, ...]],
    structural: tuple[str, ...],
) -> None:
    file = f"{mapping.dataset}/{table}"
    member = _memberships(groups)
    for col, where in member.items():
        if len(where) > 1:
            raise DataValidationError(
                file, col, f"column is in more than one feature group: {where}", df.height
            )
        if col not in df.columns and where != ["ignored"]:
            raise DataValidationError(
                file,
                col,
                f"feature group {where[0]!r} names a column the table does not have "
                f"(columns: {df.columns})",
                df.height,
            )
    for col in df.columns:
        if col not in structural and col not in member:
            raise DataValidationError(
                file,
                col,
                "column is in no feature group: add it to a group or to the ignored columns "
                f"of the {mapping.dataset!r} mapping",
                df.height,
            )


def validate_mapping(
    mapping: FeatureMapping,
    interactions: pl.DataFrame | pl.LazyFrame,
    items: pl.DataFrame,
    users: pl.DataFrame,
) -> None:
    """Raise ``DataValidationError`` (dataset/table, column, problem, rows) on a bad mapping."""
    entities = set(items.get_column("entity").unique().to_list())
    for e in mapping.entities:
        if e not in entities:
            raise DataValidationError(
                f"{mapping.dataset}/items",
                "entity",
                f"entity {e!r} of the mapping has no items (entities: {sorted(entities)})",
                0,
            )
    if mapping.source_entity == mapping.target_entity:
        raise ValueError(f"{mapping.dataset}: source and target entity must differ")
    _check_table(
        mapping,
        "users",
        users,
        {"user_profile": mapping.user_profile, "ignored": mapping.ignored_user_columns},
        ("user_id",) if "user_id" not in mapping.user_profile else (),
    )
    item_groups: dict[str, tuple[str, ...]] = {
        "entity_shared": mapping.entity_shared,
        "ignored": mapping.ignored_item_columns,
    }
    for e, cols in mapping.entity_specific.items():
        item_groups[f"entity_specific[{e}]"] = cols
    _check_table(mapping, "items", items, item_groups, ITEM_STRUCTURAL)
    # An entity-specific column must be empty for the other entity types.
    for e, cols in mapping.entity_specific.items():
        for c in cols:
            n = items.filter((pl.col("entity") != e) & pl.col(c).is_not_null()).height
            if n:
                raise DataValidationError(
                    f"{mapping.dataset}/items",
                    c,
                    f"entity-specific column of {e!r} has values for other entity types",
                    n,
                )
    for c in mapping.bucketized:
        dtype = users.schema.get(c) or items.schema.get(c)
        if dtype is None or not dtype.is_numeric():
            raise DataValidationError(
                f"{mapping.dataset}/items", c, f"bucketized column is not numeric ({dtype})", 0
            )
    names = (
        interactions.collect_schema().names()
        if isinstance(interactions, pl.LazyFrame)
        else interactions.columns
    )
    for c in {mapping.label_column, mapping.click_column}:
        if c not in names:
            raise DataValidationError(
                f"{mapping.dataset}/interactions",
                c,
                f"label/click column missing (columns: {names})",
                0,
            )
