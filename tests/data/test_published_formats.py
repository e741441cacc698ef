"""The generated stand-ins for ML-100K, ML-1M and Tenrec: exact published formats (checked
at byte level), loaded by the repo's loaders, with realistic shape and a learnable signal."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.sparse import csr_matrix
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

from recflow.data import movielens
from recflow.data.dataset import CanonicalTables
from recflow.data.registry import FILE_DATASETS
from recflow.data.tenrec import ITEM_ID_STRIDE
from tests.published_formats import (
    GENRES,
    ML1M_PERIOD,
    ML100K_GENRES,
    ML100K_OCCUPATIONS,
    ML100K_PERIOD,
    TENREC_ARTICLE_HEADER,
    TENREC_VIDEO_HEADER,
    write_ml1m,
    write_ml100k,
    write_tenrec,
)

CITE = "Cité des enfants perdus, La (1995)"  # item 2 of both MovieLens stand-ins
CITE_CLEAN = "La Cité des enfants perdus"


def _load(name: str, folder: Path) -> CanonicalTables:
    return FILE_DATASETS[name].load(folder)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _bag(rows: pl.DataFrame, user_ids: np.ndarray) -> csr_matrix:
    """Users (in ``user_ids`` order) x items 0/1 matrix from rows with user_id, item_id."""
    rows = rows.filter(pl.col("user_id").is_in(user_ids.tolist()))
    u = np.searchsorted(user_ids, rows["user_id"].to_numpy())
    items, i = np.unique(rows["item_id"].to_numpy(), return_inverse=True)
    m = csr_matrix((np.ones(u.size), (u, i)), shape=(user_ids.size, items.size))
    m.data[:] = 1.0
    return m


def _cv_accuracy(x: csr_matrix, y: np.ndarray) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    model = LogisticRegression(C=0.1, max_iter=2000)
    return float(cross_val_score(model, x, y, cv=folds).mean())


def _top_share(interactions: pl.DataFrame, share: float = 0.1) -> float:
    counts = interactions.group_by("item_id").len()["len"].sort(descending=True)
    return counts.head(max(1, round(share * counts.len()))).sum() / counts.sum()


def _genre_shares(items: pl.DataFrame) -> dict[str, float]:
    exploded = items["genres"].drop_nulls().str.split("|").explode()
    return {g: c / items.height for g, c in exploded.value_counts().rows()}


# --- ML-100K at its published size ------------------------------------------------------


@pytest.fixture(scope="module")
def ml100k_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ml-100k") / "ml-100k"
    assert write_ml100k(folder) == folder
    return folder


@pytest.fixture(scope="module")
def ml100k(ml100k_dir: Path) -> CanonicalTables:
    return _load("ml100k", ml100k_dir)


def test_ml100k_files_and_bytes(ml100k_dir: Path) -> None:
    names = {p.name for p in ml100k_dir.iterdir()}
    assert {"u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info"} <= names

    data = (ml100k_dir / "u.data").read_bytes()
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 100_001
    assert all(re.fullmatch(rb"\d+\t\d+\t[1-5]\t8\d{8}", line) for line in lines[:-1])

    raw_items = (ml100k_dir / "u.item").read_bytes()
    item_lines = raw_items.rstrip(b"\n").split(b"\n")
    assert len(item_lines) == 1682
    assert all(line.count(b"|") == 23 for line in item_lines)  # 5 fields + 19 flags
    assert item_lines[0] == (
        b"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?"
        b"Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0"
    )
    cite = item_lines[1]
    assert cite.startswith(b"2|Cit\xe9 des enfants perdus, La (1995)|")  # Latin-1 "é"
    assert b"title-exact?Cit%E9%20des%20enfants%20perdus,%20La%20(1995)|" in cite
    with pytest.raises(UnicodeDecodeError):
        cite.decode("utf-8")
    assert item_lines[266] == b"267|unknown||||1" + b"|0" * 18
    dates = [line.split(b"|")[2] for line in item_lines if line != item_lines[266]]
    assert all(re.fullmatch(rb"\d\d-[A-Z][a-z]{2}-(19[3-9]\d)", d) for d in dates)

    users = (ml100k_dir / "u.user").read_text(encoding="latin-1").splitlines()
    assert len(users) == 943
    occupations = set(ML100K_OCCUPATIONS)
    for line in users:
        uid, age, gender, occupation, zip_code = line.split("|")
        assert 7 <= int(age) <= 73 and gender in ("M", "F") and occupation in occupations
        assert re.fullmatch(r"\d{5}|[A-Z]\d[A-Z]\d[A-Z]", zip_code)

    genre_text = (ml100k_dir / "u.genre").read_text(encoding="latin-1")
    assert genre_text.startswith("unknown|0\nAction|1\nAdventure|2\n")
    assert genre_text.endswith("Western|18\n\n")
    assert ML100K_GENRES == movielens.ML100K_GENRES  # the loader's flag order
    assert (ml100k_dir / "u.occupation").read_text().splitlines() == list(ML100K_OCCUPATIONS)
    assert (ml100k_dir / "u.info").read_text() == "943 users\n1682 items\n100000 ratings\n"


def test_ml100k_loads_at_published_size(ml100k: CanonicalTables) -> None:
    it = ml100k.interactions
    assert it.height == 100_000
    assert it["user_id"].n_unique() == 943 and ml100k.users.height == 943
    assert it["item_id"].n_unique() == 1682 and ml100k.items.height == 1682  # all rated
    assert it.select("user_id", "item_id").is_unique().all()
    per_user = it.group_by("user_id").len()["len"]
    assert per_user.min() >= 20 and (per_user == 20).sum() > 0
    assert per_user.max() > 5 * per_user.median()  # long-tailed activity
    assert ML100K_PERIOD[0] <= it["timestamp"].min() <= it["timestamp"].max() <= ML100K_PERIOD[1]
    # timestamps strictly increase along each user's ratings: no repeats within a user
    assert it.select("user_id", "timestamp").is_unique().all()
    shares = it["label"].value_counts(normalize=True).sort("label")
    assert shares["label"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert shares["proportion"].to_list() == pytest.approx(
        [0.061, 0.114, 0.272, 0.342, 0.212], abs=0.005
    )


def test_ml100k_items_genres_and_titles(ml100k: CanonicalTables) -> None:
    items = ml100k.items
    shares = _genre_shares(items)
    assert set(shares) == set(GENRES) and "Children's" in shares
    top_two = sorted(shares, key=shares.get, reverse=True)[:2]
    assert top_two == ["Drama", "Comedy"]
    assert 0.02 <= shares["Animation"] <= 0.07 and 0.04 <= shares["Children's"] <= 0.09
    unknown = items.filter(pl.col("item_id") == 267).row(0, named=True)
    assert (unknown["title"], unknown["genres"], unknown["year"]) == ("unknown", None, None)

    by_id = dict(zip(items["item_id"].to_list(), items["title"].to_list(), strict=True))
    assert by_id[1] == "Toy Story" and by_id[3] == "The Usual Suspects"
    assert by_id[2] == CITE_CLEAN  # Latin-1 round trip
    assert by_id[4] == "Les Misérables"
    assert items.filter(pl.col("item_id") == 1)["genres"].item() == "Animation|Children's|Comedy"
    non_ascii = items.filter(~pl.col("title").str.contains(r"^[\x00-\x7f]*$"))
    assert non_ascii.height >= 10
    assert items.filter(pl.col("title").str.starts_with("The ")).height > 0.05 * items.height
    assert items["year"].null_count() == 1 and items["year"].min() >= 1930


def test_ml100k_popularity_and_gender_shares(ml100k: CanonicalTables) -> None:
    assert _top_share(ml100k.interactions) > 0.40
    per_item = ml100k.interactions.group_by("item_id").len()["len"]
    assert (per_item == 1).sum() > 50  # a long tail of single-rating items
    assert (ml100k.users["gender"] == "F").sum() == round(0.29 * 943)


def test_ml100k_gender_is_learnable_from_rated_items(ml100k: CanonicalTables) -> None:
    users = ml100k.users.sort("user_id")
    y = (users["gender"] == "F").to_numpy()
    majority = max(y.mean(), 1 - y.mean())
    accuracy = _cv_accuracy(_bag(ml100k.interactions, users["user_id"].to_numpy()), y)
    assert majority < 0.72
    assert accuracy > majority + 0.03, (accuracy, majority)  # held-out users, 5 folds
    assert accuracy < 0.90  # moderate, like the real data, not a giveaway


def test_ml100k_animation_fans_like_childrens(ml100k: CanonicalTables) -> None:
    rated = ml100k.interactions.join(ml100k.items.select("item_id", "genres"), on="item_id")
    genres = pl.col("genres").fill_null("")
    per_user = rated.group_by("user_id").agg(
        genres.str.contains("Animation").mean().alias("animation"),
        (genres.str.contains("Children's") & ~genres.str.contains("Animation"))
        .mean()
        .alias("childrens_only"),
    )
    r = np.corrcoef(per_user["animation"], per_user["childrens_only"])[0, 1]
    assert r > 0.25


def test_ml100k_same_seed_same_bytes(ml100k_dir: Path, tmp_path: Path) -> None:
    assert _files(write_ml100k(tmp_path / "again")) == _files(ml100k_dir)
    other = _files(write_ml100k(tmp_path / "other", seed=1))
    assert other["u.data"] != _files(ml100k_dir)["u.data"]


# --- ML-1M ----------------------------------------------------------------------------


def _check_ml1m(folder: Path, n_users: int, n_items: int, n_ratings: int) -> CanonicalTables:
    """Byte-level format and loaded shape shared by the small and the full-size ML-1M."""
    ratings = (folder / "ratings.dat").read_bytes().split(b"\n")
    assert ratings[-1] == b"" and len(ratings) == n_ratings + 1
    assert re.fullmatch(rb"1::\d+::[1-5]::\d{9,10}", ratings[0])
    assert all(line.count(b"::") == 3 for line in ratings[:-1])
    user_column = [int(line.split(b"::", 1)[0]) for line in ratings[:-1]]
    assert user_column == sorted(user_column)  # grouped by user, as published

    movies = (folder / "movies.dat").read_bytes().rstrip(b"\n").split(b"\n")
    n_listed = n_items + round(n_items * 177 / 3706)
    assert len(movies) == n_listed
    assert all(line.count(b"::") == 2 for line in movies)
    assert movies[0] == b"1::Toy Story (1995)::Animation|Children's|Comedy"
    assert movies[1] == b"2::Cit\xe9 des enfants perdus, La (1995)::Adventure|Sci-Fi"
    with pytest.raises(UnicodeDecodeError):
        movies[1].decode("utf-8")
    for line in movies:
        genres = line.rsplit(b"::", 1)[1].decode().split("|")
        assert genres == sorted(genres, key=GENRES.index)

    users = (folder / "users.dat").read_text(encoding="latin-1").splitlines()
    assert len(users) == n_users
    for line in users:
        uid, gender, age, occupation, zip_code = line.split("::")
        assert gender in ("M", "F") and int(age) in movielens.ML1M_AGE_GROUPS
        assert 0 <= int(occupation) <= 20 and re.fullmatch(r"\d{5}(-\d{4})?", zip_code)

    t = _load("ml1m", folder)
    it = t.interactions
    assert it.height == n_ratings
    assert it["user_id"].n_unique() == n_users == t.users.height
    assert it["item_id"].n_unique() == n_items and t.items.height == n_listed
    assert it.group_by("user_id").len()["len"].min() >= 20
    assert ML1M_PERIOD[0] <= it["timestamp"].min() <= it["timestamp"].max() <= ML1M_PERIOD[1]
    assert it.select("user_id", "timestamp").is_unique().all()
    assert set(it["label"].unique().to_list()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert t.items.filter(pl.col("item_id") == 2)["title"].item() == CITE_CLEAN
    assert set(_genre_shares(t.items)) == set(GENRES)
    assert (t.users["gender"] == "F").sum() == round(0.283 * n_users)
    assert set(t.users["occupation"].unique().to_list()) <= set(movielens.ML1M_OCCUPATIONS)
    return t


def test_ml1m_small_format_and_load(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m", n_users=300, n_items=500, n_ratings=30_000, seed=3)
    _check_ml1m(folder, 300, 500, 30_000)
    again = write_ml1m(tmp_path / "again", n_users=300, n_items=500, n_ratings=30_000, seed=3)
    assert _files(again) == _files(folder)


@pytest.mark.slow
def test_ml1m_at_published_size(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml-1m")
    t = _check_ml1m(folder, 6040, 3706, 1_000_209)
    ids = t.items["item_id"]
    assert ids.min() == 1 and ids.max() == 3952 and ids.len() == 3883  # gaps, as published
    shares = _genre_shares(t.items)
    assert sorted(shares, key=shares.get, reverse=True)[:2] == ["Drama", "Comedy"]
    assert 0.02 <= shares["Animation"] <= 0.07
    assert _top_share(t.interactions) > 0.40
    in_2000 = (t.interactions["timestamp"] < 978_307_200).mean()  # before 1-Jan-2001
    assert in_2000 > 0.6
    users = t.users.sort("user_id")
    y = (users["gender"] == "F").to_numpy()
    accuracy = _cv_accuracy(_bag(t.interactions, users["user_id"].to_numpy()), y)
    assert accuracy > max(y.mean(), 1 - y.mean()) + 0.03
    assert _files(write_ml1m(tmp_path / "again")) == _files(folder)


# --- Tenrec ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenrec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tenrec") / "Tenrec"
    assert write_tenrec(folder) == folder
    return folder


@pytest.fixture(scope="module")
def tenrec(tenrec_dir: Path) -> CanonicalTables:
    return _load("tenrec", tenrec_dir)


def test_tenrec_files_and_bytes(tenrec_dir: Path) -> None:
    video = (tenrec_dir / "QK-video.csv").read_bytes().split(b"\n")
    assert video[0] == ",".join(TENREC_VIDEO_HEADER).encode()
    assert (
        video[0]
        == b"user_id,item_id,click,follow,like,share,video_category,watching_times,gender,age"
    )
    assert video[-1] == b"" and len(video) == 150_000 + 2
    assert all(re.fullmatch(rb"(\d+,){6}(\d+|\\N),\d+,[0-2],[0-7]", v) for v in video[1:-1])
    assert sum(v.count(b"\\N") for v in video) > 0
    user_column = [int(v.split(b",", 1)[0]) for v in video[1:-1]]
    assert user_column == sorted(user_column)  # grouped by user, ascending

    article = (tenrec_dir / "QK-article.csv").read_bytes().split(b"\n")
    assert article[0] == ",".join(TENREC_ARTICLE_HEADER).encode()
    assert article[0].startswith(b"user_id,item_id,click,gender,age,exposure_count,")
    assert article[-1] == b"" and len(article) == 50_000 + 2
    assert all(line.count(b",") == 20 for line in article[1:-1])
    assert all(line.split(b",")[2] == b"1.0" for line in article[1:-1])  # clicks as floats


def test_tenrec_loads_with_requested_shape(tenrec: CanonicalTables) -> None:
    it = tenrec.interactions
    video, article = (it.filter(pl.col("entity") == e) for e in ("video", "article"))
    assert (video.height, article.height) == (150_000, 50_000)
    assert video["user_id"].n_unique() == 2000 == tenrec.users.height
    assert article["user_id"].n_unique() == 1200
    assert video["item_id"].n_unique() == 3000 and video["item_id"].max() < ITEM_ID_STRIDE
    assert article["item_id"].n_unique() == 1500 and article["item_id"].min() > ITEM_ID_STRIDE
    assert tenrec.items.height == 4500
    assert 0.26 <= video["label"].mean() <= 0.32
    assert article["label"].unique().to_list() == [1.0]
    assert 0.01 <= video["like"].mean() <= 0.03 and video["watching_times"].null_count() == 0
    assert article["watching_times"].null_count() == 50_000
    assert video.height - video.select("user_id", "item_id").unique().height > 1000  # re-exposures
    missing = tenrec.items.filter((pl.col("entity") == "video") & pl.col("category").is_null())
    assert 0 < missing.height < 0.05 * 3000  # "\N" categories are null
    genders = tenrec.users["gender"].value_counts(normalize=True).sort("gender")
    assert genders["gender"].to_list() == ["0", "1", "2"]
    assert genders["proportion"].to_list() == pytest.approx([0.19, 0.58, 0.23], abs=0.03)
    assert _top_share(video) > 0.40


def test_tenrec_signal_gender_and_transfer(tenrec: CanonicalTables) -> None:
    it = tenrec.interactions
    clicks = it.filter((pl.col("entity") == "video") & (pl.col("label") == 1.0))
    known = tenrec.users.filter(pl.col("gender").is_in(["1", "2"])).sort("user_id")
    y = (known["gender"] == "2").to_numpy()
    accuracy = _cv_accuracy(_bag(clicks, known["user_id"].to_numpy()), y)
    assert accuracy > max(y.mean(), 1 - y.mean()) + 0.03

    # video clicks predict which of the most-read articles a reader reads
    reads = it.filter(pl.col("entity") == "article")
    readers = np.sort(reads["user_id"].unique().to_numpy())
    x = _bag(clicks, readers)
    top = reads.group_by("item_id").len().sort("len", "item_id", descending=True)["item_id"]
    aucs = []
    for article_id in top.head(5).to_list():
        read = np.isin(readers, reads.filter(pl.col("item_id") == article_id)["user_id"])
        p = cross_val_predict(
            LogisticRegression(C=0.1, max_iter=2000),
            x,
            read,
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
            method="predict_proba",
        )[:, 1]
        aucs.append(roc_auc_score(read, p))
    assert np.mean(aucs) > 0.65, aucs


def test_tenrec_same_seed_same_bytes(tenrec_dir: Path, tmp_path: Path) -> None:
    assert _files(write_tenrec(tmp_path / "again")) == _files(tenrec_dir)


def test_tenrec_sample_by_max_users(tenrec_dir: Path, tenrec: CanonicalTables) -> None:
    sample = FILE_DATASETS["tenrec"].load(tenrec_dir, max_users=100)
    assert sample.users["user_id"].to_list() == list(range(1, 101))
    full = tenrec.interactions.filter(pl.col("user_id") <= 100)
    assert sample.interactions.equals(full)
