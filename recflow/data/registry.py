"""The datasets recflow knows: which raw files each reads and which loader converts it.

Adding your own dataset = a loader returning ``CanonicalTables`` plus one entry here;
the Dagster layer turns every entry into an observed raw source and a canonical asset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recflow.data.dataset import CanonicalTables


@dataclass(frozen=True)
class DatasetSource:
    """A dataset read from files in one folder."""

    name: str  # asset key prefix, e.g. "ml_small"
    folder_setting: str  # field of the data-sources resource that holds the folder
    files: tuple[str, ...]  # raw files whose content versions the dataset
    description: str

    def load(self, folder: Path, **options: object) -> CanonicalTables:
        return _LOADERS[self.name](folder, **options)

    def paths(self, folder: Path) -> list[Path]:
        return [folder / f for f in self.files]


def _ml_small(folder: Path, **_: object) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_latest

    return load_movielens_latest(folder)


def _ml100k(folder: Path, **_: object) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_100k

    return load_movielens_100k(folder)


def _ml1m(folder: Path, **_: object) -> CanonicalTables:
    from recflow.data.movielens import load_movielens_1m

    return load_movielens_1m(folder)


def _tenrec(folder: Path, max_users: int | None = None, **_: object) -> CanonicalTables:
    from recflow.data.tenrec import load_tenrec

    return load_tenrec(folder, max_users=max_users or None)


_LOADERS: dict[str, Callable[..., CanonicalTables]] = {
    "ml_small": _ml_small,
    "ml100k": _ml100k,
    "ml1m": _ml1m,
    "tenrec": _tenrec,
}

FILE_DATASETS: dict[str, DatasetSource] = {
    d.name: d
    for d in (
        DatasetSource(
            "ml_small",
            "movielens_small_dir",
            ("ratings.csv", "movies.csv", "tags-dev.csv"),
            "MovieLens ml-latest-small (bundled): 100,836 ratings, 9,742 movies, 610 users, "
            "with user tags as evaluation queries.",
        ),
        DatasetSource(
            "ml100k",
            "ml100k_dir",
            ("u.data", "u.item", "u.user"),
            "MovieLens 100K from a folder you configure (not redistributable); users have "
            "gender, age and occupation.",
        ),
        DatasetSource(
            "ml1m",
            "ml1m_dir",
            ("ratings.dat", "movies.dat", "users.dat"),
            "MovieLens 1M from a folder you configure (not redistributable); users have "
            "gender, age group and occupation.",
        ),
        DatasetSource(
            "tenrec",
            "tenrec_dir",
            ("QK-video.csv", "QK-article.csv"),
            "Tenrec QK-video (source) and QK-article (target) impressions from a folder you "
            "configure (not redistributable).",
        ),
    )
}
