"""MovieLens loaders: ml-latest-small, ML-100K and ML-1M into canonical tables.

Formats as published by GroupLens (https://grouplens.org/datasets/movielens/):

ml-latest-small  UTF-8 CSV with header: ``ratings.csv`` (userId,movieId,rating,timestamp),
                 ``movies.csv`` (movieId,title,genres), ``tags-dev.csv`` (userId,movieId,
                 tag,timestamp; the tag applications kept for evaluation queries)
ML-100K          Latin-1, no header: ``u.data`` (tab: user item rating timestamp),
                 ``u.item`` (pipe: id|title|release date|video release date|IMDb URL|19
                 genre flags), ``u.user`` (pipe: id|age|gender|occupation|zip code)
ML-1M            Latin-1, no header, ``::``-separated: ``ratings.dat`` (UserID::MovieID::
                 Rating::Timestamp), ``movies.dat`` (MovieID::Title::Genres),
                 ``users.dat`` (UserID::Gender::Age::Occupation::Zip-code)

Every loader gives interactions with label = rating, event = "rating", entity = "movie";
items with a cleaned ``title`` (year removed, trailing article moved to the front: "Matrix,
The (1999)" -> "The Matrix"), ``genres`` joined by "|" and an extra Int64 ``year``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from recflow.data.dataset import CanonicalTables
from recflow.data.raw import (
    CSV,
    TIMESTAMP,
    DelimitedFormat,
    check_allowed_values,
    read_table,
)
from recflow.data.validate import fail_on_rows

ENTITY = "movie"
EVENT = "rating"

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
"""The 19 genre flags of ``u.item``, in file order (from the ML-100K README)."""

ML1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
"""ML-1M ``Age`` codes: each is the lower bound of an age group (1 = "Under 18")."""

ML1M_OCCUPATIONS = (
    "other/not specified", "academic/educator", "artist", "clerical/admin",
    "college/grad student", "customer service", "doctor/health care",
    "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
    "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
"""ML-1M ``Occupation`` code i is ``ML1M_OCCUPATIONS[i]`` (from the ML-1M README)."""

ML_LATEST_RATINGS = tuple(half / 2 for half in range(1, 11))
"""ml-latest ratings: 0.5 to 5.0 stars in half stars."""

ML_CLASSIC_RATINGS = (1.0, 2.0, 3.0, 4.0, 5.0)
"""ML-100K / ML-1M ratings: whole stars 1 to 5."""

NO_GENRES = "(no genres listed)"

# Articles that MovieLens moves to the end of a title ("Misérables, Les"), in the
# languages its titles use; "L'" joins the next word without a space.
_ARTICLES = (
    *("The", "A", "An"),  # English
    *("Le", "La", "Les", "L'", "Un", "Une"),  # French
    *("El", "Los", "Las", "Lo", "Una"),  # Spanish (and Italian Lo, Una)
    *("Il", "I", "Gli"),  # Italian
    *("Der", "Die", "Das", "Ein", "Eine"),  # German
    *("De", "Het", "Den", "Det", "En", "Et"),  # Dutch, Scandinavian
    *("O", "Os", "As"),  # Portuguese
)
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<article>" + "|".join(re.escape(a) for a in _ARTICLES) + r")$"
)
_YEAR_SUFFIX = re.compile(r"\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$")
_ALTERNATE_TITLES = re.compile(r"^(?P<main>.*?)(?P<alternates>(?: \([^()]*\))*)$")


def _front_article(title: str) -> str:
    match = _TRAILING_ARTICLE.match(title)
    if match is None:
        return title
    article = match["article"]
    return f"{article}{match['rest']}" if article.endswith("'") else f"{article} {match['rest']}"


def split_title_year(raw: str) -> tuple[str, int | None]:
    """Clean a MovieLens title and take its year.

    "Matrix, The (1999)" -> ("The Matrix", 1999); alternate titles in parentheses keep
    their place and get the same article fix: "City of Lost Children, The (Cité des
    enfants perdus, La) (1995)" -> ("The City of Lost Children (La Cité des enfants
    perdus)", 1995). A series span "(2006–2007)" gives its first year; no year gives None.
    """
    title = raw.strip()
    year = None
    match = _YEAR_SUFFIX.search(title)
    if match is not None:
        year = int(match["year"])
        title = title[: match.start()].rstrip()
    parts = _ALTERNATE_TITLES.match(title)
    assert parts is not None  # the pattern matches every string
    alternates = re.findall(r" \(([^()]*)\)", parts["alternates"])
    main = _front_article(parts["main"])
    return main + "".join(f" ({_front_article(a)})" for a in alternates), year


def _clean_titles(raw_titles: pl.Series) -> pl.DataFrame:
    """Columns ``title`` (String) and ``year`` (Int64) from raw MovieLens titles."""
    pairs = [split_title_year(t) if t is not None else (None, None) for t in raw_titles]
    return pl.DataFrame(
        {"title": [p[0] for p in pairs], "year": [p[1] for p in pairs]},
        schema={"title": pl.String(), "year": pl.Int64()},
    )


def _check_known(df: pl.DataFrame, column: str, known: pl.Series, file: Path, where: str) -> None:
    """Every id in ``column`` of ``file`` appears in ``known`` (ids listed in ``where``)."""
    unknown = ~df.get_column(column).is_in(known.implode())
    if unknown.any():
        examples = df.filter(unknown).get_column(column).unique(maintain_order=True).head(3)
        fail_on_rows(
            df, unknown, file, column, f"ids not listed in {where}, e.g. {examples.to_list()}"
        )


def _interactions(ratings: pl.DataFrame) -> pl.DataFrame:
    """Canonical interactions from a frame with user_id, item_id, rating, timestamp."""
    return ratings.select(
        "user_id",
        "item_id",
        "timestamp",
        pl.col("rating").cast(pl.Float64()).alias("label"),
        pl.lit(EVENT).alias("event"),
        pl.lit(ENTITY).alias("entity"),
    )


def _items(ids: pl.Series, raw_titles: pl.Series, genres: pl.Series) -> pl.DataFrame:
    titles = _clean_titles(raw_titles)
    return pl.DataFrame(
        {
            "item_id": ids,
            "entity": pl.Series([ENTITY] * ids.len(), dtype=pl.String()),
            "title": titles.get_column("title"),
            "genres": genres.replace(NO_GENRES, None),
            "year": titles.get_column("year"),
        }
    )


def _users_without_attributes(user_ids: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"user_id": user_ids.unique().sort()}).with_columns(
        pl.lit(None, dtype=pl.String()).alias("gender"),
        pl.lit(None, dtype=pl.Int64()).alias("age"),
        pl.lit(None, dtype=pl.String()).alias("occupation"),
    )


def _files_info(source: str, directory: Path, files: Sequence[str]) -> dict[str, object]:
    return {"source": source, "directory": str(directory), "files": list(files)}


def load_movielens_latest(
    directory: str | Path, tags_file: str | None = "tags-dev.csv"
) -> CanonicalTables:
    """Load ml-latest-small (``ratings.csv``, ``movies.csv`` and, unless ``tags_file`` is
    None, tag applications as evaluation queries). Users have ids only."""
    directory = Path(directory)
    ratings_path, movies_path = directory / "ratings.csv", directory / "movies.csv"
    ratings = read_table(
        ratings_path,
        CSV,
        {
            "userId": pl.Int64(),
            "movieId": pl.Int64(),
            "rating": pl.Float64(),
            "timestamp": pl.Int64(),
        },
        not_null=["userId", "movieId", "timestamp"],
        unique=["userId", "movieId"],
        what={"timestamp": TIMESTAMP},
        ids=["userId", "movieId"],
    )
    check_allowed_values(ratings, "rating", ML_LATEST_RATINGS, ratings_path)
    movies = read_table(
        movies_path,
        CSV,
        {"movieId": pl.Int64(), "title": pl.String(), "genres": pl.String()},
        not_null=["movieId"],
        unique=["movieId"],
        ids=["movieId"],
    )
    known = movies.get_column("movieId")
    _check_known(ratings, "movieId", known, ratings_path, movies_path.name)
    ratings = ratings.rename({"userId": "user_id", "movieId": "item_id"})

    queries = None
    files = [ratings_path.name, movies_path.name]
    if tags_file is not None:
        tags_path = directory / tags_file
        tags = read_table(
            tags_path,
            CSV,
            {
                "userId": pl.Int64(),
                "movieId": pl.Int64(),
                "tag": pl.String(),
                "timestamp": pl.Int64(),
            },
            not_null=["movieId", "tag"],
            unique=(),
            what={"timestamp": TIMESTAMP},
            ids=["userId", "movieId"],
        )
        _check_known(tags, "movieId", known, tags_path, movies_path.name)
        queries = tags.select(
            pl.col("tag").alias("query"),
            pl.col("movieId").alias("item_id"),
            pl.col("userId").alias("user_id"),
            "timestamp",
        )
        files.append(tags_path.name)

    return CanonicalTables(
        name="movielens_small",
        interactions=_interactions(ratings),
        items=_items(
            movies.get_column("movieId"), movies.get_column("title"), movies.get_column("genres")
        ),
        users=_users_without_attributes(ratings.get_column("user_id")),
        queries=queries,
        info=_files_info("MovieLens ml-latest-small", directory, files),
    )


_ML100K_DATA = DelimitedFormat(
    separator="\t",
    has_header=False,
    columns=("user_id", "item_id", "rating", "timestamp"),
    encoding="latin-1",
    quoted=False,
)
_ML100K_ITEM_COLUMNS = (
    "item_id",
    "title",
    "release_date",
    "video_release_date",
    "imdb_url",
    *(f"genre_{i}" for i in range(len(ML100K_GENRES))),
)


def _pipe(columns: Sequence[str]) -> DelimitedFormat:
    return DelimitedFormat(
        "|", has_header=False, columns=tuple(columns), encoding="latin-1", quoted=False
    )


def _double_colon(columns: Sequence[str]) -> DelimitedFormat:
    return DelimitedFormat(
        "::", has_header=False, columns=tuple(columns), encoding="latin-1", quoted=False
    )


def _read_ratings(path: Path, fmt: DelimitedFormat) -> pl.DataFrame:
    """ML-100K / ML-1M ratings: ids, whole-star ratings, unix timestamps, one per pair."""
    ratings = read_table(
        path,
        fmt,
        {
            "user_id": pl.Int64(),
            "item_id": pl.Int64(),
            "rating": pl.Float64(),
            "timestamp": pl.Int64(),
        },
        not_null=["user_id", "item_id", "timestamp"],
        unique=["user_id", "item_id"],
        what={"timestamp": TIMESTAMP},
        ids=["user_id", "item_id"],
    )
    check_allowed_values(ratings, "rating", ML_CLASSIC_RATINGS, path)
    return ratings


def _genres_from_flags(items: pl.DataFrame) -> pl.Series:
    """Genre names joined by "|" from the 0/1 flags; the "unknown" flag alone gives null."""
    named = [
        pl.when(pl.col(f"genre_{i}") == 1).then(pl.lit(name))
        for i, name in enumerate(ML100K_GENRES)
        if name != "unknown"
    ]
    joined = items.select(pl.concat_str(named, separator="|", ignore_nulls=True).alias("genres"))
    return joined.get_column("genres").replace("", None)


def load_movielens_100k(directory: str | Path) -> CanonicalTables:
    """Load ML-100K (``u.data``, ``u.item``, ``u.user``); users get age, gender, occupation.

    ``year`` comes from the title, else from the release date ("01-Jan-1995").
    """
    directory = Path(directory)
    data_path, item_path, user_path = (directory / f for f in ("u.data", "u.item", "u.user"))
    ratings = _read_ratings(data_path, _ML100K_DATA)

    flag_dtypes = {f"genre_{i}": pl.Int64() for i in range(len(ML100K_GENRES))}
    items = read_table(
        item_path,
        _pipe(_ML100K_ITEM_COLUMNS),
        {"item_id": pl.Int64(), "title": pl.String(), "release_date": pl.String(), **flag_dtypes},
        not_null=["item_id"],
        unique=["item_id"],
        what={name: "genre flags 0/1" for name in flag_dtypes},
        ids=["item_id"],
    )
    for name in flag_dtypes:
        check_allowed_values(items, name, (0, 1), item_path)
    users = read_table(
        user_path,
        _pipe(("user_id", "age", "gender", "occupation", "zip_code")),
        {
            "user_id": pl.Int64(),
            "age": pl.Int64(),
            "gender": pl.String(),
            "occupation": pl.String(),
        },
        not_null=["user_id"],
        unique=["user_id"],
        what={"age": "ages in years"},
        ids=["user_id"],
    )
    _check_known(ratings, "item_id", items.get_column("item_id"), data_path, item_path.name)
    _check_known(ratings, "user_id", users.get_column("user_id"), data_path, user_path.name)

    canonical_items = _items(
        items.get_column("item_id"), items.get_column("title"), _genres_from_flags(items)
    )
    release_year = items.get_column("release_date").str.extract(r"(\d{4})\s*$").cast(pl.Int64())
    canonical_items = canonical_items.with_columns(pl.col("year").fill_null(release_year))
    return CanonicalTables(
        name="ml100k",
        interactions=_interactions(ratings),
        items=canonical_items,
        users=users.select("user_id", "gender", "age", "occupation"),
        info=_files_info("MovieLens 100K", directory, ["u.data", "u.item", "u.user"]),
    )


def load_movielens_1m(directory: str | Path) -> CanonicalTables:
    """Load ML-1M (``ratings.dat``, ``movies.dat``, ``users.dat``).

    Users get gender, ``age`` as the published group code (1, 18, 25, 35, 45, 50, 56) and
    ``occupation`` as the published name of its code (0-20, ``ML1M_OCCUPATIONS``).
    """
    directory = Path(directory)
    ratings_path, movies_path, users_path = (
        directory / f for f in ("ratings.dat", "movies.dat", "users.dat")
    )
    ratings = _read_ratings(
        ratings_path, _double_colon(("user_id", "item_id", "rating", "timestamp"))
    )
    movies = read_table(
        movies_path,
        _double_colon(("item_id", "title", "genres")),
        {"item_id": pl.Int64(), "title": pl.String(), "genres": pl.String()},
        not_null=["item_id"],
        unique=["item_id"],
        ids=["item_id"],
    )
    users = read_table(
        users_path,
        _double_colon(("user_id", "gender", "age", "occupation", "zip_code")),
        {"user_id": pl.Int64(), "gender": pl.String(), "age": pl.Int64(), "occupation": pl.Int64()},
        not_null=["user_id"],
        unique=["user_id"],
        what={"age": "age-group codes", "occupation": "occupation codes"},
        ids=["user_id"],
    )
    check_allowed_values(users, "age", ML1M_AGE_GROUPS, users_path)
    check_allowed_values(users, "occupation", range(len(ML1M_OCCUPATIONS)), users_path)
    _check_known(ratings, "item_id", movies.get_column("item_id"), ratings_path, movies_path.name)
    _check_known(ratings, "user_id", users.get_column("user_id"), ratings_path, users_path.name)

    occupation_names = pl.Series(ML1M_OCCUPATIONS, dtype=pl.String())
    users = users.with_columns(
        pl.col("occupation").replace_strict(
            list(range(len(ML1M_OCCUPATIONS))),
            occupation_names,
            default=None,
            return_dtype=pl.String(),
        )
    )
    return CanonicalTables(
        name="ml1m",
        interactions=_interactions(ratings),
        items=_items(
            movies.get_column("item_id"), movies.get_column("title"), movies.get_column("genres")
        ),
        users=users.select("user_id", "gender", "age", "occupation"),
        info=_files_info("MovieLens 1M", directory, ["ratings.dat", "movies.dat", "users.dat"]),
    )
