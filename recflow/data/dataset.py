"""One dataset abstraction: the four canonical tables, in memory or on disk.

``CanonicalTables`` is what a loader or the generator returns; ``write_dataset`` checks
it against the schema and writes it as Parquet; ``CanonicalDataset`` is the on-disk handle
that every downstream step reads lazily (polars ``scan_parquet`` or DuckDB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from recflow.artifacts import Artifact
from recflow.data.schema import INTERACTIONS, ITEMS, QUERIES, USERS
from recflow.data.validate import conform, fail_on_rows
from recflow.store import read_json, write_json

MANIFEST = "manifest.json"


@dataclass
class CanonicalTables:
    """A dataset in canonical form, in memory.

    ``extras`` holds further named tables (e.g. the synthetic generator's planted truth)
    written beside the canonical ones as ``<name>.parquet``; ``info`` is free JSON metadata.
    """

    name: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    queries: pl.DataFrame | None = None
    extras: dict[str, pl.DataFrame] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CanonicalDataset:
    """A dataset written by ``write_dataset``: a folder of Parquet files and a manifest."""

    root: Path

    @property
    def interactions_path(self) -> Path:
        return self.root / "interactions.parquet"

    @property
    def items_path(self) -> Path:
        return self.root / "items.parquet"

    @property
    def users_path(self) -> Path:
        return self.root / "users.parquet"

    @property
    def queries_path(self) -> Path:
        return self.root / "queries.parquet"

    @property
    def manifest(self) -> dict[str, Any]:
        return read_json(self.root / MANIFEST)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    def scan_interactions(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.interactions_path, glob=False)

    def items(self) -> pl.DataFrame:
        return pl.read_parquet(self.items_path, glob=False)

    def users(self) -> pl.DataFrame:
        return pl.read_parquet(self.users_path, glob=False)

    def queries(self) -> pl.DataFrame | None:
        return (
            pl.read_parquet(self.queries_path, glob=False) if self.queries_path.exists() else None
        )

    def extra(self, name: str) -> pl.DataFrame:
        path = self.root / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{self.root}: dataset has no extra table {name!r}")
        return pl.read_parquet(path, glob=False)


def check_references(tables: CanonicalTables) -> None:
    """Every interaction and query points at a known item and (interactions) user; an error
    names the first offending row numbers of the table."""
    known_items = tables.items.get_column("item_id")
    for table_name, df in (("interactions", tables.interactions), ("queries", tables.queries)):
        if df is None:
            continue
        unknown = ~df.get_column("item_id").is_in(known_items.implode())
        if unknown.any():
            ex = df.filter(unknown).get_column("item_id").head(3).to_list()
            where = f"{tables.name}/{table_name}"
            fail_on_rows(df, unknown, where, "item_id", f"item ids not in items, e.g. {ex}")
    known_users = tables.users.get_column("user_id")
    df = tables.interactions
    unknown = ~df.get_column("user_id").is_in(known_users.implode())
    if unknown.any():
        ex = df.filter(unknown).get_column("user_id").head(3).to_list()
        where = f"{tables.name}/interactions"
        fail_on_rows(df, unknown, where, "user_id", f"user ids not in users, e.g. {ex}")


def conform_tables(tables: CanonicalTables) -> CanonicalTables:
    """Check and cast every table against the schema and the cross-table references."""
    out = CanonicalTables(
        name=tables.name,
        interactions=conform(tables.interactions, INTERACTIONS, f"{tables.name}/interactions"),
        items=conform(tables.items, ITEMS, f"{tables.name}/items"),
        users=conform(tables.users, USERS, f"{tables.name}/users"),
        queries=None
        if tables.queries is None
        else conform(tables.queries, QUERIES, f"{tables.name}/queries"),
        extras=tables.extras,
        info=tables.info,
    )
    check_references(out)
    return out


def write_dataset(tables: CanonicalTables, out_dir: str | Path) -> CanonicalDataset:
    """Validate ``tables`` and write them into ``out_dir`` (which should be a fresh folder,
    e.g. from ``ArtifactStore.new_version``). Returns the on-disk handle."""
    tables = conform_tables(tables)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables.interactions.write_parquet(out / "interactions.parquet")
    tables.items.write_parquet(out / "items.parquet")
    tables.users.write_parquet(out / "users.parquet")
    if tables.queries is not None:
        tables.queries.write_parquet(out / "queries.parquet")
    for name, df in tables.extras.items():
        df.write_parquet(out / f"{name}.parquet")
    manifest = {
        "name": tables.name,
        "rows": {
            "interactions": tables.interactions.height,
            "items": tables.items.height,
            "users": tables.users.height,
            "queries": 0 if tables.queries is None else tables.queries.height,
        },
        "entities": sorted(tables.items.get_column("entity").unique().to_list()),
        "extras": sorted(tables.extras),
        "info": tables.info,
    }
    write_json(manifest, out / MANIFEST)
    return CanonicalDataset(out)


@dataclass(frozen=True)
class DatasetArtifact(Artifact):
    """The canonical dataset a ``<dataset>/dataset`` asset wrote (``path`` = its folder)."""

    def load(self) -> CanonicalDataset:
        return CanonicalDataset(self.folder)
