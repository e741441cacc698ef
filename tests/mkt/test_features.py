"""The feature-group mapping: every column in exactly one group, or a clear error."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from recflow.data.validate import DataValidationError
from recflow.mkt.features import FeatureMapping, validate_mapping
from recflow.mkt.mappings import SYNTHETIC, TENREC, mapping_for


def test_a_valid_mapping_passes(tiny_mapping, tiny_interactions, tiny_items, tiny_users) -> None:
    validate_mapping(tiny_mapping, tiny_interactions, tiny_items, tiny_users)


def test_a_column_in_no_group_is_an_error_naming_dataset_and_column(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    items = tiny_items.with_columns(pl.lit(3).alias("weight"))
    with pytest.raises(DataValidationError, match="no feature group") as e:
        validate_mapping(tiny_mapping, tiny_interactions, items, tiny_users)
    assert (e.value.file, e.value.column, e.value.rows) == ("tiny/items", "weight", 5)


def test_a_user_column_in_no_group_is_an_error(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    users = tiny_users.with_columns(pl.lit(30).alias("age"))
    with pytest.raises(DataValidationError, match="no feature group") as e:
        validate_mapping(tiny_mapping, tiny_interactions, tiny_items, users)
    assert (e.value.file, e.value.column) == ("tiny/users", "age")


def test_a_column_in_two_groups_is_an_error(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    twice = dataclasses.replace(tiny_mapping, entity_shared=("category", "price"))
    with pytest.raises(DataValidationError, match="more than one feature group") as e:
        validate_mapping(twice, tiny_interactions, tiny_items, tiny_users)
    assert (e.value.file, e.value.column) == ("tiny/items", "price")
    assert "entity_shared" in e.value.problem and "entity_specific[product]" in e.value.problem


def test_a_group_naming_a_missing_column_is_an_error(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    with pytest.raises(DataValidationError, match="does not have") as e:
        validate_mapping(tiny_mapping, tiny_interactions, tiny_items.drop("style"), tiny_users)
    assert e.value.column == "style"


def test_a_specific_column_with_values_for_the_other_entity_is_an_error(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    items = tiny_items.with_columns(pl.lit(2.0).alias("price"))  # posts get a price
    with pytest.raises(DataValidationError, match="other entity") as e:
        validate_mapping(tiny_mapping, tiny_interactions, items, tiny_users)
    assert (e.value.column, e.value.rows) == ("price", 3)


def test_a_missing_label_column_is_an_error(
    tiny_mapping, tiny_interactions, tiny_items, tiny_users
) -> None:
    liked = dataclasses.replace(tiny_mapping, label_column="like")
    with pytest.raises(DataValidationError, match="label/click column") as e:
        validate_mapping(liked, tiny_interactions, tiny_items, tiny_users)
    assert (e.value.file, e.value.column) == ("tiny/interactions", "like")


def test_declared_mappings_are_found_by_name() -> None:
    assert mapping_for("synthetic") is SYNTHETIC
    assert mapping_for("tenrec") is TENREC
    assert TENREC.label_column == "like" and TENREC.source_entity == "video"
    with pytest.raises(KeyError, match="no MKT feature mapping"):
        mapping_for("movielens")


def test_groups_lists_every_group_for_the_ui(tiny_mapping: FeatureMapping) -> None:
    g = tiny_mapping.groups()
    assert g["entity_shared"] == ["item_id", "category"]
    assert g["entity_specific[post]"] == ["style"]
    assert g["behaviour_sequences"] == ["recent clicked product ids", "recent clicked post ids"]
