"""The datasets recflow knows, one ``DatasetSpec`` each: the single place a dataset is declared.

A spec says where the data comes from (raw files in a configured folder and the loader
that converts them, the synthetic generator, or a daily feed on top of another dataset)
and what it can feed: zero-shot search needs item text (and queries to be evaluated),
PeterRec behaviour sequences and a transfer setup, MKT two entity types and a feature
mapping. The Dagster layer derives everything from these specs: the raw source, the
canonical asset, the data-sources resource's fields, the daily feed's assets and every
method sub-graph (``jobs/definitions.py``).

Adding your own dataset = a loader returning ``CanonicalTables`` plus one spec here (and,
for PeterRec or MKT, its entry in ``recflow.seq.domains.TRANSFER_SETUPS`` or
``recflow.mkt.mappings.MAPPINGS``, which a spec names rather than holds: those tables
belong to their method, import the method's code, and must stay importable without the
registry; ``tests/test_dataset_specs.py`` holds the two sides equal).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recflow.data.daily import DailyFeed
from recflow.data.dataset import CanonicalTables

if TYPE_CHECKING:
    from recflow.mkt.features import FeatureMapping
    from recflow.seq.domains import TransferSetup

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository: bundled data (``data/``) and the default store (``.recflow/``) live here."""


def default_store_root() -> str:
    """The artifact store's root: ``$RECFLOW_HOME``, else ``.recflow/`` in the repository;
    a relative ``$RECFLOW_HOME`` is taken from the repository root.

    The one default of the CLI (``--store``) and of the Dagster ``store`` resource, so
    both find the same store from any working folder."""
    path = Path(os.environ.get("RECFLOW_HOME", ".recflow")).expanduser()
    return str(path if path.is_absolute() else REPO_ROOT / path)


@dataclass(frozen=True)
class Setting:
    """A field of the data-sources resource: a dataset's folder or a loader option.

    Its default is the environment variable ``env`` if set, else ``default``."""

    field: str  # resource field name, e.g. "ml100k_dir"
    env: str  # environment variable that sets it, e.g. "RECFLOW_ML100K_DIR"
    default: str | int = ""
    option: str | None = None  # loader keyword it feeds; None = the dataset's folder

    def value(self) -> str | int:
        """The default the resource shows: the environment's value, else ``default``."""
        raw = os.environ.get(self.env)
        if raw is None:
            return self.default
        return int(raw) if isinstance(self.default, int) else raw


@dataclass(frozen=True)
class Capabilities:
    """Which method sub-graphs a dataset's tables can feed (every dataset gets the matrix)."""

    item_text: bool = False  # items carry text: zero-shot search
    queries: bool = False  # a queries table (tags, planted synonyms): search evaluations
    sequences: bool = False  # per-user behaviour sequences: PeterRec
    two_entities: bool = False  # two entity types with clicks: MKT


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its source, what it can feed, and its method setups (by name)."""

    name: str  # asset key prefix, e.g. "ml_small"
    description: str
    capabilities: Capabilities = Capabilities()
    files: tuple[str, ...] = ()  # raw files whose content versions the dataset
    folder: Setting | None = None  # where ``files`` are (None: not read from files)
    options: tuple[Setting, ...] = ()  # loader options, e.g. Tenrec's max_users
    loader: Callable[..., CanonicalTables] | None = field(default=None, repr=False)
    synthetic: bool = False  # made by ``recflow.data.synthetic.generate``
    daily: DailyFeed | None = None  # grows by one file per day on top of ``daily.base``
    transfer_setup: str | None = None  # key in recflow.seq.domains.TRANSFER_SETUPS
    mkt_mapping: str | None = None  # key in recflow.mkt.mappings.MAPPINGS
    default: bool = False  # in RECFLOW_DATASETS unless it says otherwise

    def __post_init__(self) -> None:
        sources = [self.folder is not None, self.synthetic, self.daily is not None]
        if sum(sources) != 1:
            raise ValueError(f"{self.name}: give exactly one of folder, synthetic, daily")
        if (self.folder is None) != (self.loader is None) or (self.folder and not self.files):
            raise ValueError(f"{self.name}: a folder dataset needs files and a loader")
        if self.capabilities.sequences != (self.transfer_setup is not None):
            raise ValueError(f"{self.name}: sequences need a transfer setup, and only they do")
        if self.capabilities.two_entities != (self.mkt_mapping is not None):
            raise ValueError(f"{self.name}: two entity types need an MKT mapping, and only they do")
        if self.capabilities.queries and not self.capabilities.item_text:
            raise ValueError(f"{self.name}: queries are evaluated against item text")

    @property
    def folder_setting(self) -> str:
        """The data-sources resource field that holds the folder."""
        if self.folder is None:
            raise ValueError(f"{self.name} is not read from a folder")
        return self.folder.field

    def settings(self) -> tuple[Setting, ...]:
        """Every data-sources resource field this dataset reads."""
        return ((self.folder,) if self.folder else ()) + self.options

    def load(self, folder: Path, **options: Any) -> CanonicalTables:
        """The canonical tables from the raw files in ``folder``."""
        if self.loader is None:
            raise ValueError(f"{self.name} is not read from files")
        return self.loader(folder, **options)

    def paths(self, folder: Path) -> list[Path]:
        return [folder / f for f in self.files]

    def transfer(self) -> TransferSetup:
        """The PeterRec source/target domains and attribute tasks of this dataset."""
        from recflow.seq.domains import transfer_setup

        if self.transfer_setup is None:
            raise ValueError(f"{self.name} has no behaviour sequences (no transfer setup)")
        return transfer_setup(self.transfer_setup)

    def feature_mapping(self) -> FeatureMapping:
        """The MKT feature-group mapping of this dataset."""
        from recflow.mkt.mappings import mapping_for

        if self.mkt_mapping is None:
            raise ValueError(f"{self.name} has no two entity types (no MKT mapping)")
        return mapping_for(self.mkt_mapping)


def _ml_small(folder: Path) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_latest

    return load_movielens_latest(folder)


def _ml100k(folder: Path) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_100k

    return load_movielens_100k(folder)


def _ml1m(folder: Path) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_1m

    return load_movielens_1m(folder)


def _tenrec(folder: Path, max_users: int | None = None) -> CanonicalTables:
    from recflow.data.tenrec import load_tenrec

    return load_tenrec(folder, max_users=max_users or None)


def _env_date(name: str, default: str) -> date | None:
    """A date from the environment; an empty value means none (an open-ended feed)."""
    value = os.environ.get(name, default).strip()
    return date.fromisoformat(value) if value else None


MOVIELENS = Capabilities(item_text=True, sequences=True)

ML_SMALL_DAILY = DailyFeed(
    name="ml_small_daily",
    base="ml_small",
    start=_env_date("RECFLOW_DAILY_START", "2018-09-01") or date(2018, 9, 1),
    end=_env_date("RECFLOW_DAILY_END", "2018-09-24"),
    description=(
        "The last weeks of MovieLens ml-latest-small replayed as one file per day "
        "(python scripts/make_daily_files.py writes them); RECFLOW_DAILY_START/END "
        "move the window, RECFLOW_DAILY_END='' makes the feed open-ended."
    ),
)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        "ml_small",
        "MovieLens ml-latest-small (bundled): 100,836 ratings, 9,742 movies, 610 users, "
        "with user tags as evaluation queries.",
        Capabilities(item_text=True, queries=True, sequences=True),
        files=("ratings.csv", "movies.csv", "tags-dev.csv"),
        folder=Setting(
            "movielens_small_dir",
            "RECFLOW_ML_SMALL_DIR",
            str(REPO_ROOT / "data" / "ml-latest-small"),
        ),
        loader=_ml_small,
        transfer_setup="ml_small",
        default=True,
    ),
    DatasetSpec(
        "ml100k",
        "MovieLens 100K from a folder you configure (not redistributable); users have "
        "gender, age and occupation.",
        MOVIELENS,
        files=("u.data", "u.item", "u.user"),
        folder=Setting("ml100k_dir", "RECFLOW_ML100K_DIR"),
        loader=_ml100k,
        transfer_setup="ml100k",
    ),
    DatasetSpec(
        "ml1m",
        "MovieLens 1M from a folder you configure (not redistributable); users have "
        "gender, age group and occupation.",
        MOVIELENS,
        files=("ratings.dat", "movies.dat", "users.dat"),
        folder=Setting("ml1m_dir", "RECFLOW_ML1M_DIR"),
        loader=_ml1m,
        transfer_setup="ml1m",
    ),
    DatasetSpec(
        "tenrec",
        "Tenrec QK-video (source) and QK-article (target) impressions from a folder you "
        "configure (not redistributable).",
        Capabilities(sequences=True, two_entities=True),
        files=("QK-video.csv", "QK-article.csv"),
        folder=Setting("tenrec_dir", "RECFLOW_TENREC_DIR"),
        options=(Setting("tenrec_max_users", "RECFLOW_TENREC_MAX_USERS", 0, option="max_users"),),
        loader=_tenrec,
        transfer_setup="tenrec",
        mkt_mapping="tenrec",
    ),
    DatasetSpec(
        "synthetic",
        "Seeded synthetic world with planted truth (item clusters with co-consumption, "
        "synonym words, attribute-driven users, two entity types with clicks): the data "
        "the method tests check their models against. See recflow/data/synthetic.py.",
        Capabilities(item_text=True, queries=True, sequences=True, two_entities=True),
        synthetic=True,
        transfer_setup="synthetic",
        mkt_mapping="synthetic",
        default=True,
    ),
    DatasetSpec(
        "ml_small_daily",
        ML_SMALL_DAILY.description,
        daily=ML_SMALL_DAILY,
        default=True,
    ),
)

DATASET_SPECS: dict[str, DatasetSpec] = {s.name: s for s in SPECS}
"""Every dataset by name (the asset key prefix)."""

FILE_DATASETS: dict[str, DatasetSpec] = {s.name: s for s in SPECS if s.folder is not None}
"""The datasets read from raw files: each gets an observed raw source and a canonical asset."""

DAILY_FEEDS: dict[str, DailyFeed] = {s.name: s.daily for s in SPECS if s.daily is not None}
"""The daily feeds by name: each gets its day files, its days and its dataset."""

DEFAULT_DATASETS: tuple[str, ...] = tuple(s.name for s in SPECS if s.default)
"""The datasets that get the method sub-graphs when ``RECFLOW_DATASETS`` is not set."""


def data_settings() -> dict[str, Setting]:
    """Every data-sources resource field of every dataset, by field name."""
    return {s.field: s for spec in SPECS for s in spec.settings()}
