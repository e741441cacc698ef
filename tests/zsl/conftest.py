"""Shared fixtures: a small synthetic world turned into ZSL inputs.

The co-consumption matrix here is built directly (consecutive clicked events per user,
ordered by timestamp then item id; 1/√nnz weights with mean 1) so these tests do not
depend on the production matrix builder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from recflow.cooc import CoocConfig, build_cooc
from recflow.data.dataset import write_dataset
from recflow.data.registry import FILE_DATASETS
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.text import TextConfig, build_vocabulary, item_fields
from recflow.zsl.inputs import ZslInputs, build_inputs
from recflow.zsl.models import METHODS, ZslConfig, train
from recflow.zsl.pipeline import build_vocabulary_folder, load_inputs
from recflow.zsl.queries import QuerySplit


def consecutive_cooc(clicks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(matrix, item_index) in the cooc Parquet layout from (user_id, item_id, timestamp)."""
    items = np.sort(clicks.get_column("item_id").unique().to_numpy())
    index = pl.DataFrame({"index": np.arange(len(items), dtype=np.int32), "item_id": items})
    pairs = (
        clicks.sort("user_id", "timestamp", "item_id")
        .with_columns(pl.col("item_id").shift(-1).over("user_id").alias("next_id"))
        .drop_nulls("next_id")
        .filter(pl.col("item_id") != pl.col("next_id"))
        .group_by("item_id", "next_id")
        .len("count")
        .join(index.rename({"index": "row"}), on="item_id")
        .join(index.rename({"index": "col", "item_id": "next_id"}), on="next_id")
    )
    row_nnz = pairs.group_by("row").len("rn")
    col_nnz = pairs.group_by("col").len("cn")
    r_mean = float((1 / row_nnz.get_column("rn").cast(pl.Float64).sqrt()).mean())
    c_mean = float((1 / col_nnz.get_column("cn").cast(pl.Float64).sqrt()).mean())
    matrix = (
        pairs.join(row_nnz, on="row")
        .join(col_nnz, on="col")
        .select(
            "row",
            "col",
            pl.col("count").cast(pl.Int64),
            (1 / pl.col("rn").cast(pl.Float64).sqrt() / r_mean).alias("row_weight"),
            (1 / pl.col("cn").cast(pl.Float64).sqrt() / c_mean).alias("col_weight"),
        )
        .sort("row", "col")
    )
    return matrix, index


def inputs_from_tables(tables, until: int | None = None) -> ZslInputs:
    """ZSL inputs from the clicked events (before ``until``, a timestamp, when given)."""
    events = tables.interactions
    if until is not None:
        events = events.filter(pl.col("timestamp") < until)
    clicks = events.filter(pl.col("label") == 1.0)
    matrix, index = consecutive_cooc(clicks)
    items = tables.items.filter(pl.col("item_id").is_in(index.get_column("item_id").implode()))
    vocab, item_terms = build_vocabulary(
        items.get_column("item_id").to_numpy(), item_fields(items), TextConfig(min_item_count=2)
    )
    popularity = events.group_by("item_id").len("count")
    return build_inputs(matrix, index, item_terms, vocab, popularity=popularity)


def synthetic_inputs(cfg: SyntheticConfig):
    tables = generate(cfg)
    return inputs_from_tables(tables), tables


@pytest.fixture(scope="session")
def small_world():
    """~300 items in 10 clusters: big enough for the planted synonyms, seconds to train."""
    cfg = SyntheticConfig(n_users=300, n_items=300, n_events=40_000, n_clusters=10, seed=3)
    return synthetic_inputs(cfg)


ML_SMALL_DIR = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"
ML_SMALL_SPLIT = QuerySplit(text_share=0.5, validation_share=0.25, seed=0)  # the asset's


@pytest.fixture(scope="session")
def ml_small(tmp_path_factory):
    """The bundled ml-latest-small as the default job sees it: canonical tables, the
    co-consumption matrix, the vocabulary (half the tag strings as item text) and inputs."""
    root = tmp_path_factory.mktemp("ml_small")
    ds = write_dataset(FILE_DATASETS["ml_small"].load(ML_SMALL_DIR), root / "dataset")
    cooc = build_cooc(ds.interactions_path, root / "cooc", CoocConfig(), temp_dir=root)
    (root / "vocab").mkdir()
    build_vocabulary_folder(ds, root / "vocab", TextConfig(), ML_SMALL_SPLIT)
    inputs = load_inputs(
        cooc.matrix_path, cooc.item_index_path, root / "vocab", ds.interactions_path
    )
    return ds, inputs


@pytest.fixture(scope="session")
def ml_small_models(ml_small):
    """STL, ZSL_ME and ZSL_TE trained on ``ml_small`` with the shipped defaults."""
    _, inputs = ml_small
    return {m: train(inputs, ZslConfig(method=m)) for m in METHODS}
