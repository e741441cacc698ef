"""Every loader's tables survive ``write_dataset``; a failed write leaves the store intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from recflow.data.dataset import CanonicalDataset, CanonicalTables, write_dataset
from recflow.data.movielens import load_movielens_1m, load_movielens_100k, load_movielens_latest
from recflow.data.tenrec import ITEM_ID_STRIDE, load_tenrec
from recflow.data.validate import DataValidationError
from recflow.store import ArtifactStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize(
    ("load", "folder", "rows", "item_id", "title"),
    [
        (load_movielens_latest, "ml_latest", (5, 6, 2, 2), 2571, "The Matrix"),
        (load_movielens_100k, "ml100k", (6, 4, 3, 0), 4, "The Usual Suspects"),
        (load_movielens_1m, "ml1m", (5, 4, 3, 0), 73, "Les Misérables"),
        (load_tenrec, "tenrec", (10, 5, 4, 0), ITEM_ID_STRIDE + 20, None),
    ],
)
def test_round_trip(
    load: Callable[[Path], CanonicalTables],
    folder: str,
    rows: tuple[int, int, int, int],
    item_id: int,
    title: str | None,
    tmp_path: Path,
) -> None:
    tables = load(FIXTURES / folder)
    written = write_dataset(tables, tmp_path / "out")
    ds = CanonicalDataset(tmp_path / "out")
    assert written.root == ds.root
    assert ds.name == tables.name
    manifest_rows = ds.manifest["rows"]
    assert (
        manifest_rows["interactions"],
        manifest_rows["items"],
        manifest_rows["users"],
        manifest_rows["queries"],
    ) == rows
    interactions = ds.scan_interactions().collect()
    assert interactions.height == rows[0]
    assert interactions.equals(tables.interactions)
    assert ds.items().filter(pl.col("item_id") == item_id).item(0, "title") == title
    assert ds.users().height == rows[2]
    queries = ds.queries()
    assert (0 if queries is None else queries.height) == rows[3]


def test_round_trip_keeps_extra_columns(tmp_path: Path) -> None:
    ds = write_dataset(load_tenrec(FIXTURES / "tenrec"), tmp_path / "out")
    interactions = ds.scan_interactions().collect()
    assert interactions.columns[6:] == ["follow", "like", "share", "watching_times"]
    items = ds.items()
    assert items.filter(pl.col("item_id") == ITEM_ID_STRIDE + 10).item(0, "source_item_id") == 10
    assert ds.manifest["entities"] == ["article", "video"]
    years = write_dataset(load_movielens_1m(FIXTURES / "ml1m"), tmp_path / "ml1m").items()
    assert years.filter(pl.col("item_id") == 661).item(0, "year") == 1996


def with_unknown_item(tables: CanonicalTables) -> CanonicalTables:
    extra = tables.interactions.head(1).with_columns(
        pl.lit(999_999, dtype=pl.Int64()).alias("item_id")
    )
    return CanonicalTables(
        name=tables.name,
        interactions=pl.concat([tables.interactions, extra]),
        items=tables.items,
        users=tables.users,
        queries=tables.queries,
    )


def test_unknown_item_fails_and_leaves_latest_version(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    tables = load_movielens_1m(FIXTURES / "ml1m")
    with store.new_version("canonical") as out:
        write_dataset(tables, out)
    good = store.latest("canonical")

    with pytest.raises(DataValidationError) as err, store.new_version("canonical") as out:
        write_dataset(with_unknown_item(tables), out)
    e = err.value
    assert (e.file, e.column, e.rows) == ("ml1m/interactions", "item_id", 1)
    assert "999999" in e.problem

    assert store.latest("canonical") == good
    assert CanonicalDataset(good).scan_interactions().collect().height == 5
    # no half-written version remains (dot files are the store's own locks)
    left = sorted(p.name for p in store.artifact_dir("canonical").iterdir())
    assert [n for n in left if not n.startswith(".")] == sorted(["LATEST", good.name])
