"""The ZSL steps as functions of files, for the asset layer (and scripts) to call.

item text → vocabulary folder; cooc folder + vocabulary folder + interactions → inputs;
inputs → trained model folder. Every function reads and writes plain files, so each step
can run on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recflow.artifacts import Artifact
from recflow.data.dataset import CanonicalDataset
from recflow.store import read_json, write_json
from recflow.text import TextConfig, Vocabulary, build_vocabulary, genre_fields
from recflow.zsl.inputs import ZslInputs, build_inputs
from recflow.zsl.lexical import LexicalIndex, title_field
from recflow.zsl.queries import QuerySplit, tag_text


def item_text_fields(
    items: pl.DataFrame, tags: pl.DataFrame | None = None
) -> tuple[np.ndarray, list[list[str]]]:
    """(item ids, fields per item): title, then each text-part tag, then each genre."""
    if tags is not None:
        items = items.join(tags, on="item_id", how="left")
    titles = items.get_column("title").to_list() if "title" in items.columns else None
    genres = items.get_column("genres").to_list() if "genres" in items.columns else None
    tag_lists = items.get_column("tags").to_list() if tags is not None else None
    fields: list[list[str]] = []
    for r in range(items.height):
        f = [titles[r]] if titles and titles[r] else []
        if tag_lists and tag_lists[r]:
            f.extend(tag_lists[r].split("|"))
        if genres is not None:
            f.extend(genre_fields(genres[r]))
        fields.append(f)
    return items.get_column("item_id").to_numpy(), fields


def build_vocabulary_folder(
    dataset: CanonicalDataset,
    out_dir: Path,
    config: TextConfig,
    tag_split: QuerySplit | None = None,
) -> dict[str, int | float]:
    """Write vocab.parquet, item_terms.parquet and text.json (config, split) into out_dir.

    ``tag_split``: when given (and the dataset has queries), the ``text`` part of the query
    strings becomes item text; the other parts never do.
    """
    items = dataset.items()
    tags = None
    queries = dataset.queries()
    if tag_split is not None and queries is not None:
        tags = tag_text(queries, tag_split)
    ids, fields = item_text_fields(items, tags)
    vocab, item_terms = build_vocabulary(ids, fields, config)
    vocab.to_frame().write_parquet(out_dir / "vocab.parquet")
    item_terms.write_parquet(out_dir / "item_terms.parquet")
    meta = {
        "text_config": {
            "min_item_count": config.min_item_count,
            "min_terms_per_item": config.min_terms_per_item,
            "bigrams": config.bigrams,
        },
        "tag_split": None
        if tag_split is None
        else {
            "text_share": tag_split.text_share,
            "validation_share": tag_split.validation_share,
            "seed": tag_split.seed,
        },
    }
    write_json(meta, out_dir / "text.json")
    with_text = item_terms.get_column("item_id").n_unique()
    return {
        "terms": len(vocab),
        "bigram_terms": sum(" " in t for t in vocab.terms),
        "items": items.height,
        "items_with_text": with_text,
        "items_from_tags": 0 if tags is None else tags.height,
        "mean_terms_per_item": item_terms.height / max(with_text, 1),
    }


def read_text_settings(folder: Path) -> tuple[TextConfig, QuerySplit | None]:
    """The text config and query split a vocabulary folder was built with (text.json)."""
    meta = read_json(folder / "text.json")
    split = meta.get("tag_split")
    return TextConfig(**meta["text_config"]), None if split is None else QuerySplit(**split)


def read_vocabulary_folder(
    folder: Path,
) -> tuple[Vocabulary, pl.DataFrame, TextConfig, QuerySplit | None]:
    text_config, split = read_text_settings(folder)
    return (
        Vocabulary.from_frame(pl.read_parquet(folder / "vocab.parquet", glob=False)),
        pl.read_parquet(folder / "item_terms.parquet", glob=False),
        text_config,
        split,
    )


@dataclass(frozen=True)
class VocabularyArtifact(Artifact):
    """A folder written by ``build_vocabulary_folder`` (``<dataset>/zsl_vocabulary``)."""

    def load(self) -> tuple[Vocabulary, pl.DataFrame, TextConfig, QuerySplit | None]:
        """(vocabulary, item–term table, text config, query split)."""
        return read_vocabulary_folder(self.folder)

    def text_config(self) -> TextConfig:
        return read_text_settings(self.folder)[0]

    def query_split(self) -> QuerySplit | None:
        """The split the vocabulary was built with (None: no queries table was split)."""
        return read_text_settings(self.folder)[1]


def item_popularity(interactions: Path | pl.LazyFrame) -> pl.DataFrame:
    """(item_id, count): events per item (all events, clicked or not)."""
    lf = (
        pl.scan_parquet(interactions, glob=False)
        if isinstance(interactions, Path)
        else interactions
    )
    return lf.group_by("item_id").len("count").collect()


def load_inputs(
    matrix_path: Path,
    item_index_path: Path,
    vocabulary_folder: Path,
    interactions_path: Path,
    target: str = "binary",
) -> ZslInputs:
    """ZslInputs from the cooc Parquet files, a vocabulary folder and the interactions."""
    vocab, item_terms, _, _ = read_vocabulary_folder(vocabulary_folder)
    return build_inputs(
        pl.read_parquet(matrix_path, glob=False),
        pl.read_parquet(item_index_path, glob=False),
        item_terms,
        vocab,
        target=target,
        popularity=item_popularity(interactions_path),
    )


def item_titles(dataset: CanonicalDataset, item_ids: np.ndarray) -> list[str | None]:
    """Titles in the order of ``item_ids`` (None where an item has none)."""
    pos = pl.DataFrame({"item_id": item_ids.astype(np.int64), "_i": np.arange(len(item_ids))})
    joined = pos.join(dataset.items().select("item_id", "title"), on="item_id", how="left")
    return joined.sort("_i").get_column("title").to_list()


def text_tag_counts(
    dataset: CanonicalDataset, item_ids: np.ndarray, tag_split: QuerySplit | None
) -> np.ndarray | None:
    """(n_items,) distinct tag strings of the split's ``text`` part per item of
    ``item_ids`` (in that order): the tags the item text carries, never a validation or
    test string. None without a queries table, a split, or any text-part tag."""
    queries = dataset.queries()
    if tag_split is None or queries is None:
        return None
    tags = tag_text(queries, tag_split)
    if tags.height == 0:
        return None
    counts = tags.select("item_id", pl.col("tags").str.split("|").list.len().alias("n"))
    pos = pl.DataFrame({"item_id": item_ids.astype(np.int64), "_i": np.arange(len(item_ids))})
    joined = pos.join(counts, on="item_id", how="left").sort("_i")
    return joined.get_column("n").fill_null(0).to_numpy().astype(np.int64)


def build_lexical_index(
    dataset: CanonicalDataset, item_ids: np.ndarray, tag_split: QuerySplit | None = None
) -> LexicalIndex:
    """BM25 index over the items of ``item_ids`` (in that order): title with its year,
    the ``text`` part of the query strings, genres — the item text the models saw, with
    no word dropped for rarity."""
    items = dataset.items()
    tags = None
    queries = dataset.queries()
    if tag_split is not None and queries is not None:
        tags = tag_text(queries, tag_split)
    years = items.get_column("year") if "year" in items.columns else None
    titles = items.get_column("title") if "title" in items.columns else None
    with_year = [
        title_field(t, y)
        for t, y in zip(
            titles.to_list() if titles is not None else [None] * items.height,
            years.to_list() if years is not None else [None] * items.height,
            strict=True,
        )
    ]
    items = items.with_columns(pl.Series("title", with_year, dtype=pl.String))
    ids, fields = item_text_fields(items, tags)
    pos = {int(i): r for r, i in enumerate(ids)}
    missing = [int(i) for i in item_ids if int(i) not in pos]
    if missing:
        raise ValueError(f"{len(missing)} indexed items are not in the items table: {missing[:5]}")
    order = [pos[int(i)] for i in item_ids]
    return LexicalIndex.build([fields[r] for r in order], [with_year[r] for r in order])
