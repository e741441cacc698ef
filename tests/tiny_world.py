"""A tiny MovieLens-format world spread over five UTC days, for the operations tests.

Five days (2020-01-01 .. 2020-01-05) of ratings by four users on six movies, written in
ml-latest-small's file format, plus the definitions and resources that point the
Dagster graph at temporary folders. Small enough that a whole materialization takes
about a second.
"""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from assets.cooc import build_cooc_assets
from assets.daily import DailyFilesResource, build_daily_assets
from assets.datasets import build_file_dataset_asset
from assets.io_manager import JsonHandleIOManager
from assets.raw import build_raw_source
from assets.resources import DataSourcesResource, StoreResource
from recflow.data.daily import DailyFeed
from recflow.data.registry import FILE_DATASETS

DAY = 86_400
T0 = 1_577_836_800  # 2020-01-01 00:00:00 UTC
FIRST_DAY = date(2020, 1, 1)
FEED = DailyFeed("tiny_daily", "ml_small", start=date(2020, 1, 3), end=date(2020, 1, 5))

MOVIES = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation
2,Jumanji (1995),Adventure|Fantasy
3,Heat (1995),Action|Crime
4,Casino (1995),Crime|Drama
5,Sabrina (1995),Comedy|Romance
6,Balto (1995),Animation|Children
"""
TAGS = """userId,movieId,tag,timestamp
1,1,pixar,1577836900
2,3,heist,1577836900
"""
# (user, movie, rating, day index 0..4, second of the day)
RATINGS = [
    (1, 1, 4.0, 0, 100),
    (1, 2, 3.0, 0, 200),
    (2, 3, 5.0, 0, 300),
    (2, 4, 4.0, 0, 400),
    (3, 1, 2.0, 1, 100),
    (3, 2, 4.5, 1, 200),
    (4, 5, 3.0, 1, 300),
    (4, 6, 3.5, 1, 400),
    (1, 3, 4.0, 2, 100),
    (2, 1, 3.0, 2, 200),
    (3, 4, 5.0, 3, 100),
    (4, 1, 2.5, 3, 200),
    (1, 6, 4.0, 3, 300),
    (2, 5, 3.0, 4, 100),
    (3, 6, 1.5, 4, 200),
]


def ratings_csv(rows: list[tuple[int, int, float, int, int]] = RATINGS) -> str:
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u},{m},{r},{T0 + d * DAY + s}" for u, m, r, d, s in rows]
    return "\n".join(lines) + "\n"


def day_csv(day_index: int, rows: list[tuple[int, int, float, int, int]] = RATINGS) -> str:
    """The daily-feed file of one day: canonical columns, that day's ratings only."""
    lines = ["user_id,item_id,timestamp,label"]
    lines += [f"{u},{m},{T0 + d * DAY + s},{r}" for u, m, r, d, s in rows if d == day_index]
    return "\n".join(lines) + "\n"


@dataclass
class World:
    """Folders of one test: raw MovieLens files, daily files, the artifact store."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def daily(self) -> Path:
        return self.root / "daily" / FEED.name

    @property
    def store(self) -> Path:
        return self.root / "store"

    def resources(self) -> dict[str, object]:
        return {
            "store": StoreResource(root=str(self.store)),
            "io_manager": JsonHandleIOManager(root=str(self.store)),
            "data_sources": DataSourcesResource(movielens_small_dir=str(self.raw)),
            "daily_files": DailyFilesResource(root=str(self.root / "daily")),
        }

    def deliver(self, day_index: int) -> Path:
        """Drop the file of day ``day_index`` (0 = 2020-01-01) into the feed's folder."""
        self.daily.mkdir(parents=True, exist_ok=True)
        path = self.daily / f"2020-01-0{day_index + 1}.csv"
        path.write_text(day_csv(day_index))
        return path


def make_world(root: Path) -> World:
    world = World(root)
    world.raw.mkdir(parents=True)
    (world.raw / "movies.csv").write_text(MOVIES)
    (world.raw / "tags-dev.csv").write_text(TAGS)
    (world.raw / "ratings.csv").write_text(ratings_csv())
    return world


def graph() -> list[object]:
    """ml_small (read from the world's raw folder) and the tiny feed, each with its
    co-consumption matrix and checks."""
    ds = FILE_DATASETS["ml_small"]
    return [
        build_raw_source(ds),
        build_file_dataset_asset(ds),
        *build_cooc_assets("ml_small"),
        *build_daily_assets(FEED),
        *build_cooc_assets(FEED.name),
    ]
