"""MovieLens loaders against hand-written fixtures and the bundled ml-latest-small."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from recflow.data.movielens import (
    load_movielens_1m,
    load_movielens_100k,
    load_movielens_latest,
    split_title_year,
)
from recflow.data.validate import DataValidationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REAL_ML_LATEST = Path(__file__).resolve().parents[2] / "data" / "ml-latest-small"


def item(tables, item_id: int) -> dict:
    return tables.items.filter(pl.col("item_id") == item_id).row(0, named=True)


def user(tables, user_id: int) -> dict:
    return tables.users.filter(pl.col("user_id") == user_id).row(0, named=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", 1995)),
        ("Matrix, The (1999)", ("The Matrix", 1999)),
        ("Misérables, Les (1995)", ("Les Misérables", 1995)),
        ("Awfully Big Adventure, An (1995)", ("An Awfully Big Adventure", 1995)),
        ("Homme qui aimait les femmes, L' (1977)", ("L'Homme qui aimait les femmes", 1977)),
        ("Hate (Haine, La) (1995)", ("Hate (La Haine)", 1995)),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ("The City of Lost Children (La Cité des enfants perdus)", 1995),
        ),
        (
            "Vitelloni, I (a.k.a. The Young and the Passionate) (1953)",
            ("I Vitelloni (a.k.a. The Young and the Passionate)", 1953),
        ),
        ("Cry, the Beloved Country (1995)", ("Cry, the Beloved Country", 1995)),
        ("(500) Days of Summer (2009)", ("(500) Days of Summer", 2009)),
        ("Death Note: Desu nôto (2006–2007)", ("Death Note: Desu nôto", 2006)),
        ("Babylon 5", ("Babylon 5", None)),
        ("Justice League: Doom (2012) ", ("Justice League: Doom", 2012)),
    ],
)
def test_split_title_year(raw: str, expected: tuple[str, int | None]) -> None:
    assert split_title_year(raw) == expected


def test_latest_fixture() -> None:
    t = load_movielens_latest(FIXTURES / "ml_latest")
    assert t.name == "movielens_small"
    assert t.interactions.columns == ["user_id", "item_id", "timestamp", "label", "event", "entity"]
    assert t.interactions.height == 5
    assert t.interactions.row(2) == (2, 73, 1445714994, 3.5, "rating", "movie")
    assert item(t, 73) == {
        "item_id": 73,
        "entity": "movie",
        "title": "Les Misérables",
        "genres": "Drama|War",
        "year": 1995,
    }
    assert item(t, 2571)["title"] == "The Matrix"
    assert (item(t, 171749)["genres"], item(t, 171749)["year"]) == (None, 2006)
    assert (item(t, 8)["title"], item(t, 8)["year"]) == ('"Great Performances" Cats', 1998)
    assert (item(t, 7)["title"], item(t, 7)["year"]) == ("Babylon 5", None)
    assert t.users.get_column("user_id").to_list() == [1, 2]
    assert t.users.null_count().row(0) == (0, 2, 2, 2)
    assert t.queries is not None
    assert t.queries.rows() == [
        ("musical, classic", 73, 2, 1445714996),
        ("cyberpunk", 2571, 1, 964982800),
    ]


def test_latest_without_tags() -> None:
    assert load_movielens_latest(FIXTURES / "ml_latest", tags_file=None).queries is None


def test_latest_real_data() -> None:
    t = load_movielens_latest(REAL_ML_LATEST)
    # counts from the data set's README and `wc -l` (minus the header row)
    assert t.interactions.height == 100_836
    assert t.items.height == 9_742
    assert t.users.height == 610
    assert t.queries is not None and t.queries.height == 1_923
    assert t.interactions.row(0) == (1, 1, 964982703, 4.0, "rating", "movie")
    assert item(t, 2571)["title"] == "The Matrix"
    assert item(t, 11)["title"] == "The American President"
    assert item(t, 1)["genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert t.queries.row(0) == ("Highly quotable", 60756, 2, 1445714996)


def test_100k_fixture() -> None:
    t = load_movielens_100k(FIXTURES / "ml100k")
    assert t.name == "ml100k"
    assert t.interactions.height == 6
    assert t.interactions.row(1) == (1, 2, 876893171, 3.0, "rating", "movie")
    assert item(t, 1)["genres"] == "Animation|Children's|Comedy"
    assert (item(t, 1)["title"], item(t, 1)["year"]) == ("Toy Story", 1995)
    assert item(t, 2)["title"] == "Les Misérables"  # decoded from Latin-1
    assert item(t, 2)["genres"] == "Drama|War"
    # only the "unknown" flag: no genres; no year in title or date
    assert (item(t, 3)["title"], item(t, 3)["genres"], item(t, 3)["year"]) == (
        "unknown",
        None,
        None,
    )
    # no year in the title: taken from the release date
    assert (item(t, 4)["title"], item(t, 4)["year"]) == ("The Usual Suspects", 1995)
    assert item(t, 4)["genres"] == "Crime|Thriller"
    assert user(t, 2) == {"user_id": 2, "gender": "F", "age": 53, "occupation": "other"}
    assert t.users.height == 3


def test_1m_fixture() -> None:
    t = load_movielens_1m(FIXTURES / "ml1m")
    assert t.name == "ml1m"
    assert t.interactions.height == 5
    assert t.interactions.row(3) == (2, 3408, 978299000, 5.0, "rating", "movie")
    assert item(t, 661) == {
        "item_id": 661,
        "entity": "movie",
        "title": "James and the Giant Peach",
        "genres": "Animation|Children's|Musical",
        "year": 1996,
    }
    assert item(t, 73)["title"] == "Les Misérables"
    assert user(t, 1) == {"user_id": 1, "gender": "F", "age": 1, "occupation": "K-12 student"}
    assert user(t, 2)["occupation"] == "self-employed"
    assert user(t, 3)["occupation"] == "scientist"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    shutil.copytree(FIXTURES / name, out)
    return out


def test_1m_unknown_occupation_code(tmp_path: Path) -> None:
    d = copy_fixture("ml1m", tmp_path)
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::21::70072\n3::M::25::15::55117\n")
    with pytest.raises(DataValidationError, match="allowed set") as err:
        load_movielens_1m(d)
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == (
        "users.dat",
        "occupation",
        1,
    )


def test_1m_unknown_age_group(tmp_path: Path) -> None:
    d = copy_fixture("ml1m", tmp_path)
    (d / "users.dat").write_text("1::F::17::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n")
    with pytest.raises(DataValidationError, match="allowed set") as err:
        load_movielens_1m(d)
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == ("users.dat", "age", 1)


def test_1m_rating_of_unknown_movie(tmp_path: Path) -> None:
    d = copy_fixture("ml1m", tmp_path)
    with (d / "ratings.dat").open("a") as f:
        f.write("3::999::4::978297040\n3::998::4::978297041\n")
    with pytest.raises(DataValidationError, match="not listed in movies.dat") as err:
        load_movielens_1m(d)
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == (
        "ratings.dat",
        "item_id",
        2,
    )


def test_1m_wrong_field_count(tmp_path: Path) -> None:
    d = copy_fixture("ml1m", tmp_path)
    (d / "movies.dat").write_text("661::James::and::Drama\n1193::Cuckoo (1975)::Drama\n")
    with pytest.raises(DataValidationError, match="wrong number of fields") as err:
        load_movielens_1m(d)
    assert (Path(err.value.file).name, err.value.rows) == ("movies.dat", 1)


def test_100k_genre_flag_not_binary(tmp_path: Path) -> None:
    d = copy_fixture("ml100k", tmp_path)
    text = (d / "u.item").read_text(encoding="latin-1").replace("|1|1|1|0|", "|1|2|1|0|", 1)
    (d / "u.item").write_text(text, encoding="latin-1")
    with pytest.raises(DataValidationError, match="allowed set") as err:
        load_movielens_100k(d)
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == ("u.item", "genre_4", 1)


def test_latest_missing_file(tmp_path: Path) -> None:
    d = copy_fixture("ml_latest", tmp_path)
    (d / "movies.csv").unlink()
    with pytest.raises(DataValidationError, match="file not found") as err:
        load_movielens_latest(d)
    assert Path(err.value.file).name == "movies.csv"


def test_latest_tag_of_unknown_movie(tmp_path: Path) -> None:
    d = copy_fixture("ml_latest", tmp_path)
    with (d / "tags-dev.csv").open("a") as f:
        f.write("1,424242,nope,964982900\n")
    with pytest.raises(DataValidationError, match="not listed in movies.csv") as err:
        load_movielens_latest(d)
    assert (Path(err.value.file).name, err.value.column, err.value.rows) == (
        "tags-dev.csv",
        "movieId",
        1,
    )
