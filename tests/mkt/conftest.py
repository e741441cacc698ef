"""Shared fixtures of the MKT tests: one torch thread (fast on small busy machines), and a
tiny hand-made two-entity dataset whose every feature-aligned row can be checked by hand."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
import torch

from recflow.mkt.features import FeatureMapping


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_mapping() -> FeatureMapping:
    return FeatureMapping(
        dataset="tiny",
        source_entity="product",
        target_entity="post",
        user_profile=("user_id", "gender"),
        entity_shared=("category",),
        entity_specific={"product": ("price",), "post": ("style",)},
        sequence_entities=("product", "post"),
        bucketized=("price",),
    )


@pytest.fixture
def tiny_items() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5],
            "entity": ["product", "product", "post", "post", "post"],
            "category": ["a", "b", "a", "b", "c"],
            "price": [1.0, 5.0, None, None, None],
            "style": [None, None, "x", "y", "z"],
        }
    )


@pytest.fixture
def tiny_users() -> pl.DataFrame:
    return pl.DataFrame({"user_id": [10, 11], "gender": ["f", "m"]})


@pytest.fixture
def tiny_interactions() -> pl.DataFrame:
    # user 10: t1 product 1 click, t2 post 3 click, t3 product 2 no, t3 post 4 click,
    #          t6 product 1 click, t8 post 3 click (test), t10 post 5 no (test)
    # user 11: t4 product 1 click, t5 product 2 no, t7 post 3 no, t9 post 4 click (test)
    return pl.DataFrame(
        {
            "user_id": [10, 10, 10, 10, 11, 11, 10, 11, 10, 11, 10],
            "item_id": [1, 3, 2, 4, 1, 2, 1, 3, 3, 4, 5],
            "timestamp": [1, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10],
            "entity": [
                "product",
                "post",
                "product",
                "post",
                "product",
                "product",
                "product",
                "post",
                "post",
                "post",
                "post",
            ],
            "label": [1.0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0],
        }
    )
