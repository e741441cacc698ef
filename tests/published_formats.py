"""Generated stand-ins for MovieLens 100K, MovieLens 1M and Tenrec, in the published formats.

None of the three may be redistributed, so the loaders and the method graphs are tested on
folders these functions write: the same files, byte layout and encoding as the downloads,
at realistic size and shape, with a planted signal that models can learn.

``write_ml100k(folder)``  ``u.data``, ``u.item``, ``u.user``, ``u.genre``, ``u.occupation``,
                          ``u.info`` as in ``ml-100k.zip`` (README of ML-100K)
``write_ml1m(folder)``    ``ratings.dat``, ``movies.dat``, ``users.dat`` as in
                          ``ml-1m.zip`` (README of ML-1M)
``write_tenrec(folder)``  ``QK-video.csv`` and ``QK-article.csv`` as in the Tenrec release

Every function writes into ``folder`` (created if missing), returns it, and is
deterministic given ``seed``: the same arguments give byte-identical files.

Formats
-------
ML-100K (no header rows; "\\n" line ends)
    u.data        tab-separated ``user id, item id, rating, timestamp``; ids from 1, ratings
                  1..5, unix seconds between 20-Sep-1997 and 22-Apr-1998; rows in random
                  order (as published), no (user, item) pair twice.
    u.item        Latin-1, "|"-separated: ``movie id | title "Name (Year)" | release date
                  "01-Jan-1995" | video release date (always empty) | IMDb URL (title
                  percent-encoded in Latin-1) | 19 genre flags`` in the order of ``u.genre``:
                  unknown, Action, Adventure, Animation, Children's, Comedy, Crime,
                  Documentary, Drama, Fantasy, Film-Noir, Horror, Musical, Mystery, Romance,
                  Sci-Fi, Thriller, War, Western. One item (id 267 as in the real file, or
                  the last id when there are fewer) is ``267|unknown||||1|0|...|0``.
    u.user        "|"-separated ``user id | age (years, 7..73) | gender M/F | occupation |
                  zip code`` (a few Canadian-style codes such as "T8H1N", as published).
    u.genre       ``name|index`` per line, then an empty line; u.occupation one name per line;
                  u.info the three counts.
ML-1M ("::"-separated, no header, Latin-1)
    ratings.dat   ``UserID::MovieID::Rating::Timestamp``, grouped by user (ascending), each
                  user's rows in random order as published; timestamps from 25-Apr-2000,
                  most in 2000, the last in Feb-2003.
    movies.dat    ``MovieID::Title::Genres``, genres "|"-joined in alphabetical (= the
                  README's) order with the published spellings ("Children's", "Film-Noir",
                  "Sci-Fi"). Like the real file it also lists movies nobody rated and its ids
                  have gaps: ``n_items`` is the number of movies that have ratings (3,706 in
                  the real data); ``round(n_items * 177 / 3706)`` more are listed without
                  ratings (3,883 listed), ids spread over 1..~1.018 * listed (3,952).
    users.dat     ``UserID::Gender::Age::Occupation::Zip-code``: age group codes 1, 18, 25,
                  35, 45, 50, 56 and occupation codes 0..20 with the published frequencies;
                  some zips "ddddd-dddd".
Tenrec (UTF-8 CSV with a header row, rows grouped by user in ascending id order, the
rows of a user in their time order: Tenrec has no timestamps)
    QK-video.csv  ``user_id,item_id,click,follow,like,share,video_category,watching_times,
                  gender,age``, all integers; ``video_category`` 0/1 and, for about 1.5% of
                  the videos, ``\\N`` (the export's NULL, as public inspections of Tenrec's
                  QK-video sample ``ctr_data_1M.csv`` report); ``gender`` 0 (unknown) / 1 / 2,
                  ``age`` 0 (unknown) .. 7. Every row is an exposure, click 0/1 (about 29%
                  clicked, as in QK-video's 142M clicks over 493M exposures); about 1.5% of
                  the rows re-expose an item the user saw before.
    QK-article.csv the published QK-article header ``user_id,item_id,click,gender,age,
                  exposure_count,click_count,like_count,comment_count,read_percentage,
                  item_score1,item_score2,category_second,category_first,item_score3,read,
                  read_time,share,like,follow,favorite``. Only clicked articles are logged,
                  so ``click`` is always 1, written ``1.0`` (a float column) as public
                  inspections of the file show; ``read``, ``share``, ``like``, ``follow``,
                  ``favorite`` are written as 0.0/1.0 floats too (assumed alike),
                  ``read_percentage`` and ``read_time`` floats (empty where nothing was
                  read), the counts, scores and categories integers.
                  Article ids are numbered independently of video ids (they collide, as in
                  the real files).

Planted truth (what downstream models can find)
-----------------------------------------------
MovieLens (both)
    Items: genre flags drawn per genre with realistic frequencies (Drama ~43% and Comedy
    ~30% the most common; Action, Thriller, Romance ~12-15%; Animation ~3% and Children's
    ~7%); 75% of Animation movies are also Children's, 50% Comedy, 30% Musical. Every item
    has at least one genre (except the "unknown" one of ML-100K). Popularity is Zipf-like,
    ``log pop = -1.6 * log(rank + 0.05 * n_items)`` over a random permutation of the items,
    and 12% of the items are obscure (``log pop - 4``): as in the real data about half of
    the ratings go to the top 10% of the items, and a single rating is all that ~8% (ML-100K)
    or ~3.5% (ML-1M) of the items get.
    Users: women are ``round(0.29 * n_users)`` of ML-100K users (real: 273/943) and
    ``round(0.283 * n_users)`` of ML-1M (real: 1,709/6,040), at random positions. Five
    latent tastes over genres, ``TASTES``: family (Animation, Children's, Musical, Fantasy),
    action (Action, Adventure, Sci-Fi, War, Western), romance (Romance, Drama, Musical),
    dark (Horror, Thriller, Crime, Mystery, Film-Noir) and classic (Film-Noir,
    Documentary, War, Western, Drama). A user's mixture ``theta ~ Dirichlet(0.6 * base *
    gender_mult * age_mult)``: women have x2.2 romance, x1.4 family, x0.45 action; the
    young (ML-100K age < 25, ML-1M groups 1 and 18) x1.5 dark, x1.3 action, x0.5 classic;
    the old (>= 45) x2.5 classic, x0.6 family. Genre affinity ``a_u = theta_u @ TASTES``;
    item affinity ``aff(u, i) = a_u . genres_i / sqrt(#genres_i)``. Family is the only taste
    loading on both Animation and Children's, so users who pick Animation also pick
    Children's (the cold-start target is predictable from the rest).
    Choice: user u rates ``n_u`` distinct items (>= 20, about 3% of the users exactly 20;
    log-normal activity sigma 0.95, at most 45% of the items, summing to exactly
    ``n_ratings``), drawn without replacement (Gumbel top-k) with weight
    ``pop_i * exp(1.6 * aff(u, i) + 0.2 * s_u * appeal_i)``, ``s_u`` = +1 for women, -1 for
    men, ``appeal_i`` = mean of ``GENDER_APPEAL`` over the item's genres + N(0, 0.3)
    (Romance, Musical, Children's, Drama chosen more by women; Action, Sci-Fi, War,
    Western, Horror more by men). Every item (every rated one, in ML-1M) has a rating.
    Strength: a logistic regression on the bag of rated items predicts gender at ~0.78
    (5-fold, ML-100K; majority 0.71) and ~0.80 (ML-1M; majority 0.72), as on the real data.
    Rating: ``0.8 * quality_i + bias_u + 0.6 * aff(u, i) + N(0, 1)``, quality correlated
    with popularity, cut at the quantiles that give the published rating shares (100K:
    6/11/27/34/21 %; 1M: 6/11/26/35/23 %).
    Time: each user starts at a random point of the collection period and rates in
    sessions (seconds to minutes apart within one, hours to weeks between); a user's
    timestamps strictly increase in the order the items were drawn.
Tenrec
    Six latent topics; a user's mixture ``theta ~ Dirichlet`` shifted by gender code (1:
    topics 0, 1; 2: topics 3, 4) and age (young: topic 2; old: topic 5). Every video and
    article has one topic; ``video_category`` is 0 for 80% of topic 0-2 videos and 1 for
    80% of topic 3-5 videos. Exposures: Gumbel top-k with weight
    ``pop ** 1.0 * exp(1.5 * z_u(topic))`` (``z_u`` the user's centred log-taste);
    click probability ``sigmoid(c + 1.4 * z_u(topic) + user bias + 0.3 * z(log pop))``
    with ``c`` set for a 29% click rate; like/share/follow only on clicks (7%, 0.8%, 0.6%
    of clicks); ``watching_times`` Geometric(0.8) (>= 1) on clicks, else 1 (45%) or 0.
    Articles: 60% of the users read articles, chosen with weight
    ``pop * exp(2.0 * z_u(topic))`` from the same taste, so video clicks predict article
    reads (the transfer signal). Strength: a logistic regression on the bag of clicked
    videos predicts gender code 1 vs 2 at ~0.78 (majority 0.70), and whether a reader read
    one of the most-read articles at AUC ~0.77.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote

import numpy as np
import polars as pl

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
"""The 18 MovieLens genres, in the published (alphabetical) order."""

ML100K_GENRES = ("unknown", *GENRES)
"""The 19 genre flags of ``u.item``, in file order."""

ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)  # fmt: skip
"""``u.occupation`` of ML-100K, in file order."""

# users per occupation in the real ML-100K (same order)
_ML100K_OCCUPATION_COUNTS = (
    79,
    28,
    7,
    95,
    67,
    18,
    32,
    16,
    7,
    12,
    51,
    26,
    9,
    105,
    66,
    14,
    12,
    31,
    196,
    27,
    45,
)
# users per occupation code 0..20 in the real ML-1M
_ML1M_OCCUPATION_COUNTS = (
    711, 528, 267, 173, 759, 112, 236, 679, 17, 92, 195, 129, 388, 142, 302, 144, 241,
    502, 70, 72, 281,
)  # fmt: skip
ML1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
_ML1M_AGE_COUNTS = (222, 1103, 2096, 1193, 550, 496, 380)

# share of movies with each genre (ML-100K: of 1,682; ML-1M: of 3,883), Animation and
# Children's rounded up a little
_GENRE_SHARE_100K = (
    0.149, 0.080, 0.030, 0.072, 0.300, 0.065, 0.030, 0.431, 0.015, 0.014, 0.055, 0.033,
    0.036, 0.147, 0.060, 0.149, 0.042, 0.016,
)  # fmt: skip
_GENRE_SHARE_1M = (
    0.130, 0.073, 0.030, 0.065, 0.309, 0.054, 0.033, 0.413, 0.018, 0.011, 0.088, 0.029,
    0.027, 0.121, 0.071, 0.127, 0.037, 0.018,
)  # fmt: skip
_RATING_SHARE_100K = (0.0611, 0.1137, 0.2715, 0.3417, 0.2120)
_RATING_SHARE_1M = (0.0562, 0.1075, 0.2612, 0.3489, 0.2262)

_G = {g: j for j, g in enumerate(GENRES)}


def _loadings(spec: dict[str, float]) -> list[float]:
    row = [0.0] * len(GENRES)
    for genre, value in spec.items():
        row[_G[genre]] = value
    return row


TASTE_NAMES = ("family", "action", "romance", "dark", "classic")
TASTES = np.array(
    [
        _loadings(
            {"Animation": 1.6, "Children's": 1.6, "Musical": 0.9, "Fantasy": 0.8,
             "Comedy": 0.4, "Adventure": 0.4, "Horror": -0.8, "Crime": -0.4,
             "Film-Noir": -0.5}
        ),
        _loadings(
            {"Action": 1.2, "Adventure": 0.9, "Sci-Fi": 1.0, "Thriller": 0.6, "War": 0.6,
             "Western": 0.5, "Romance": -0.4, "Musical": -0.5, "Documentary": -0.3}
        ),
        _loadings(
            {"Romance": 1.2, "Drama": 0.9, "Musical": 0.4, "Comedy": 0.3, "Action": -0.5,
             "Horror": -0.6, "Sci-Fi": -0.5, "War": -0.2}
        ),
        _loadings(
            {"Horror": 1.4, "Thriller": 0.8, "Crime": 0.8, "Mystery": 0.8, "Film-Noir": 0.6,
             "Sci-Fi": 0.3, "Children's": -0.7, "Musical": -0.5, "Romance": -0.3}
        ),
        _loadings(
            {"Film-Noir": 1.2, "Documentary": 1.2, "War": 0.7, "Western": 0.7, "Drama": 0.6,
             "Mystery": 0.4, "Animation": -0.3, "Horror": -0.4, "Action": -0.3}
        ),
    ]
)  # fmt: skip
"""Taste x genre loadings (rows in ``TASTE_NAMES`` order, columns in ``GENRES`` order)."""

GENDER_APPEAL = np.array(
    _loadings(
        {"Romance": 0.5, "Musical": 0.45, "Children's": 0.3, "Drama": 0.25, "Comedy": 0.1,
         "Fantasy": 0.1, "Animation": 0.1, "Mystery": 0.05, "Action": -0.35,
         "Sci-Fi": -0.35, "War": -0.35, "Western": -0.3, "Horror": -0.2, "Crime": -0.15,
         "Thriller": -0.1, "Film-Noir": -0.1, "Adventure": -0.1}
    )
)  # fmt: skip
"""How much more each genre is chosen by women (+) than by men (-)."""

_TASTE_BASE = np.array([0.8, 1.0, 1.0, 0.8, 0.6])
_TASTE_FEMALE = np.array([1.4, 0.45, 2.2, 0.8, 1.0])
_TASTE_YOUNG = np.array([1.2, 1.3, 0.9, 1.5, 0.5])
_TASTE_OLD = np.array([0.6, 0.9, 1.2, 0.6, 2.5])

# the MovieLens choice model (module docstring, "Planted truth"); tuned to the real shape
POP_EXPONENT = 1.6
POP_OFFSET = 0.05
TASTE_WEIGHT = 1.6
GENDER_WEIGHT = 0.2
APPEAL_NOISE = 0.3
GENRE_SCALE = 0.88  # the empty-genre fallback adds back what this takes
OBSCURE_SHARE = 0.12
OBSCURE_DROP = 4.0

ML100K_PERIOD = (874_724_710, 893_286_638)  # 20-Sep-1997 .. 22-Apr-1998
ML1M_PERIOD = (956_703_932, 1_046_454_590)  # 25-Apr-2000 .. 28-Feb-2003

ANCHOR_TITLES = (
    ("Toy Story (1995)", ("Animation", "Children's", "Comedy")),
    ("Cité des enfants perdus, La (1995)", ("Adventure", "Sci-Fi")),
    ("Usual Suspects, The (1995)", ("Crime", "Thriller")),
    ("Misérables, Les (1995)", ("Drama", "Musical")),
)
"""The first items of both MovieLens files (ids 1.. in ML-100K, the smallest ids in
ML-1M): fixed titles and genres tests can look up."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- shared pieces ---------------------------------------------------------------------


def _allocate(
    rng: np.random.Generator, n: int, total: int, minimum: int, cap: int, sigma: float
) -> np.ndarray:
    """``n`` integer counts in [minimum, cap] summing to ``total``, log-normal shares."""
    if not minimum * n <= total <= cap * n:
        raise ValueError(
            f"cannot give {n} rows between {minimum} and {cap} events each ({total} in all)"
        )
    weights = rng.lognormal(0.0, sigma, n)
    # about 3% of the rows get exactly the minimum (as MovieLens' 20-ratings cut leaves)
    weights = np.maximum(weights - np.quantile(weights, 0.03), 0.0) + 1e-12
    capped = np.zeros(n, dtype=bool)
    x = np.full(n, float(minimum))
    for _ in range(n + 1):
        free = ~capped
        rest = total - minimum * int(free.sum()) - cap * int(capped.sum())
        share = np.where(free, weights, 0.0)
        x = np.where(capped, float(cap), minimum + rest * share / share.sum())
        over = x > cap
        if not over.any():
            break
        capped |= over
    counts = np.minimum(np.floor(x + 1e-9).astype(np.int64), cap)
    short = total - int(counts.sum())
    frac = np.where(counts < cap, x - counts, -1.0)
    counts[np.argsort(-frac, kind="stable")[:short]] += 1
    assert counts.sum() == total and counts.min() >= minimum and counts.max() <= cap
    return counts


def _gumbel(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    u = rng.random(shape, dtype=np.float32)
    np.clip(u, np.float32(1e-12), np.float32(1.0 - 1e-7), out=u)
    return -np.log(-np.log(u))


def _choose(
    rng: np.random.Generator, log_weight: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row r picks ``counts[r]`` distinct columns with probability ~ exp(log_weight)
    (successive sampling, Gumbel top-k); every column is picked by at least one row.

    Returns (rows, columns) in row order, each row's columns in the order drawn.
    """
    n_rows, n_cols = log_weight.shape
    if n_cols > counts.sum():
        raise ValueError(f"{counts.sum()} events cannot cover {n_cols} items")
    keys = log_weight.astype(np.float32) + _gumbel(rng, (n_rows, n_cols))
    # one "seed" row per column, so every column is picked: the row that wants it most,
    # heavy rows favoured; a row never gets more seeds than its count
    seed_key = keys + np.log(counts).astype(np.float32)[:, None]
    seed = np.argmax(seed_key, axis=0)
    for _ in range(n_rows):
        load = np.bincount(seed, minlength=n_rows)
        over = np.flatnonzero(load > counts)
        if over.size == 0:
            break
        full = load >= counts
        for r in over:
            mine = np.flatnonzero(seed == r)
            release = mine[np.argsort(-seed_key[r, mine], kind="stable")[counts[r] :]]
            masked = np.where(full[:, None], -np.inf, seed_key[:, release])
            seed[release] = np.argmax(masked, axis=0)
    keys[seed, np.arange(n_cols)] = np.inf
    rows, cols = [], []
    for start in range(0, n_rows, 512):
        block = keys[start : start + 512]
        k = counts[start : start + 512]
        order = np.argsort(-block, axis=1, kind="stable")
        take = np.arange(n_cols)[None, :] < k[:, None]
        cols.append(order[take])
        rows.append(np.repeat(np.arange(start, start + block.shape[0]), k))
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    # seeds sort first in their row; put every row's picks in a random order ("time")
    perm = np.lexsort((rng.random(rows_a.size), rows_a))
    return rows_a[perm], cols_a[perm]


def _session_times(
    rng: np.random.Generator, rows: np.ndarray, n_rows: int, start: np.ndarray, end: int
) -> np.ndarray:
    """Strictly increasing integer times per row (``rows`` sorted), starting at
    ``start[row]``, in sessions; compressed to end by ``end``."""
    n = rows.size
    in_session = rng.random(n) < 0.9
    session_gap = np.exp(rng.normal(np.log(86_400.0), 1.6, n_rows))  # per row
    gaps = np.where(
        in_session,
        5.0 + rng.exponential(45.0, n),
        rng.exponential(1.0, n) * session_gap[rows],
    )
    first = np.r_[True, rows[1:] != rows[:-1]]
    gaps[first] = 0.0
    cum = np.cumsum(gaps)
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    offset = cum - cum[group_start]
    counts = np.bincount(rows, minlength=n_rows)
    span = np.zeros(n_rows)
    np.maximum.at(span, rows, offset)
    room = np.maximum(end - start - counts - 1, 0).astype(float)
    scale = np.where(span > room, room / np.maximum(span, 1.0), 1.0)
    t = start[rows] + np.floor(offset * scale[rows]).astype(np.int64)
    # strictly increasing within a row: s_k = k + cummax(t_j - j), reset per row
    idx = np.arange(n, dtype=np.int64)
    big = np.int64(4_000_000_000)
    shifted = t - idx + rows.astype(np.int64) * big
    t = np.maximum.accumulate(shifted) - rows.astype(np.int64) * big + idx
    return t


def _quantile_levels(rng: np.random.Generator, score: np.ndarray, shares) -> np.ndarray:
    """Levels 1..len(shares) with the given shares, by the quantiles of ``score``."""
    score = score + rng.normal(0.0, 1e-9, score.size)  # break exact ties
    cuts = np.quantile(score, np.cumsum(shares)[:-1])
    return 1 + np.searchsorted(cuts, score)


# --- titles ---------------------------------------------------------------------------

_ADJ = (
    "Last", "Dark", "Silent", "Wild", "Lost", "Broken", "Golden", "Hidden", "Secret",
    "Crimson", "Lonely", "Endless", "Frozen", "Burning", "Quiet", "Savage", "Sweet",
    "Bitter", "Little", "Big", "Perfect", "Dangerous", "Final", "Midnight", "American",
    "Strange", "Eternal", "Naked", "Blue", "Red", "White", "Black", "Green", "Happy",
    "Deadly", "Brave", "Restless", "Sudden", "Fatal", "Blind", "Long", "Empty", "Distant",
)  # fmt: skip
_NOUN = (
    "Road", "River", "City", "Night", "Heart", "Dream", "Game", "Storm", "Kiss", "Shadow",
    "Journey", "Empire", "Island", "Summer", "Winter", "Star", "Man", "Woman", "Girl",
    "Boy", "House", "Train", "Bridge", "Truth", "Promise", "Affair", "Friend", "Stranger",
    "Hunter", "Kingdom", "Sky", "Fire", "Ocean", "Garden", "Mirror", "Voice", "Angel",
    "Ghost", "Machine", "Dance", "Song", "Letter", "Witness", "Country", "Castle",
    "Mountain", "Valley", "Moon", "Sun", "Harvest", "Border", "Circus", "Detective",
)  # fmt: skip
_NAME = (
    "Johnny", "Mary", "Billy", "Annie", "Jack", "Lucy", "Harry", "Grace", "Sam", "Rosie",
    "Max", "Eddie", "Molly", "Frank", "Emma", "Charlie", "Nell", "Oscar",
)  # fmt: skip
# (phrase, trailing article) in Latin-1 languages; every phrase has a non-ASCII letter
_FOREIGN = (
    ("Château de verre", "Le"), ("Rêve d'été", "Le"), ("Fenêtre sur la cour", "La"),
    ("Mémoire des anges", "La"), ("Côte sauvage", "La"), ("Frères de la nuit", "Les"),
    ("Forêt des songes", "La"), ("Fantôme de l'opéra", "Le"), ("Vérité cachée", "La"),
    ("Rivière perdue", "La"), ("Niño del río", "El"), ("Corazón de la mañana", "El"),
    ("Jardín sin nombre", "El"), ("Canción de otoño", "La"), ("Mädchen aus Köln", "Das"),
    ("Brücke am Fluß", "Die"), ("Schöne Grüße", "Die"), ("Søster mine", "Den"),
    ("Sånger från hösten", "De"), ("Bête humaine", "La"), ("Fête des pères", "La"),
    ("Cinéma du dimanche", "Le"), ("Mystère de la chambre jaune", "Le"),
)  # fmt: skip


def _english_title(rng: np.random.Generator) -> str:
    pattern = rng.random()
    adj, noun, noun2 = rng.choice(_ADJ), rng.choice(_NOUN), rng.choice(_NOUN)
    if pattern < 0.40:
        title = f"{adj} {noun}"
    elif pattern < 0.60:
        title = f"{noun} of the {noun2}"
    elif pattern < 0.72:
        title = f"{rng.choice(_NAME)}'s {noun}"
    elif pattern < 0.80:
        title = f"{adj} {noun} {rng.choice(['2', 'II', 'III'])}"
    elif pattern < 0.90:
        title = f"{noun}"
    else:
        title = f"{adj} {noun}: {rng.choice(_NAME)} and the {noun2}"
    article = rng.random()
    if article < 0.10:
        title = f"{title}, The"
    elif article < 0.13:
        title = f"{title}, An" if title[0] in "AEIOU" else f"{title}, A"
    return title


def _titles(rng: np.random.Generator, years: np.ndarray) -> list[str]:
    out = []
    for year in years:
        kind = rng.random()
        if kind < 0.025:  # foreign title only: "Château de verre, Le (1994)"
            phrase, article = _FOREIGN[rng.integers(len(_FOREIGN))]
            title = f"{phrase}, {article}"
        elif kind < 0.04:  # English title with the original: "X, The (Château..., Le)"
            phrase, article = _FOREIGN[rng.integers(len(_FOREIGN))]
            title = f"{_english_title(rng)} ({phrase}, {article})"
        else:
            title = _english_title(rng)
        out.append(f"{title} ({year})")
    return out


def _years(rng: np.random.Generator, n: int, recent: tuple[int, int], old_share: float):
    lo, hi = recent
    recent_years = lo + np.floor(rng.beta(2.5, 1.4, n) * (hi - lo + 1)).astype(int)
    old_years = 1930 + np.floor(rng.beta(2.0, 1.3, n) * (lo - 1930)).astype(int)
    return np.where(rng.random(n) < old_share, old_years, recent_years)


# --- the MovieLens world ----------------------------------------------------------------


def _genre_matrix(rng: np.random.Generator, n_items: int, shares) -> np.ndarray:
    """Items x 18 genre flags with roughly the given per-genre shares."""
    p = np.asarray(shares) * GENRE_SCALE
    anim, child, comedy, musical = _G["Animation"], _G["Children's"], _G["Comedy"], _G["Musical"]
    flags = rng.random((n_items, len(GENRES))) < p[None, :]
    is_anim = flags[:, anim]
    # Animation pulls in Children's (75%), Comedy (50%), Musical (30%); Children's of
    # other movies at the rate that keeps its overall share
    p_child_rest = max(p[child] - 0.75 * p[anim], 0.0) / (1.0 - p[anim])
    flags[:, child] = np.where(
        is_anim, rng.random(n_items) < 0.75, rng.random(n_items) < p_child_rest
    )
    flags[:, comedy] |= is_anim & (rng.random(n_items) < 0.5)
    flags[:, musical] |= is_anim & (rng.random(n_items) < 0.3)
    # a Children's movie is rarely Horror, Film-Noir or Crime
    kid = flags[:, child]
    for g in ("Horror", "Film-Noir", "Crime"):
        flags[:, _G[g]] &= ~kid | (rng.random(n_items) < 0.1)
    empty = ~flags.any(axis=1)
    fallback = rng.choice(len(GENRES), size=n_items, p=p / p.sum())
    flags[np.flatnonzero(empty), fallback[empty]] = True
    return flags


def _movielens_world(
    rng: np.random.Generator,
    *,
    n_users: int,
    n_items: int,
    n_ratings: int,
    female_share: float,
    young: np.ndarray,
    old: np.ndarray,
    genres: np.ndarray,
    rating_shares,
    period: tuple[int, int],
    start_beta: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Ratings (user, item 0-based, rating, timestamp) sorted by user then time."""
    female = np.zeros(n_users, dtype=bool)
    female[rng.permutation(n_users)[: round(female_share * n_users)]] = True
    alpha = 0.6 * _TASTE_BASE[None, :] * np.where(female[:, None], _TASTE_FEMALE, 1.0)
    alpha = alpha * np.where(young[:, None], _TASTE_YOUNG, 1.0)
    alpha = alpha * np.where(old[:, None], _TASTE_OLD, 1.0)
    theta = rng.gamma(alpha)
    theta /= np.maximum(theta.sum(axis=1, keepdims=True), 1e-12)
    affinity_u = theta @ TASTES  # users x genres
    n_genres = genres.sum(axis=1)
    g_norm = genres / np.sqrt(np.maximum(n_genres, 1))[:, None]
    aff = (affinity_u @ g_norm.T).astype(np.float32)  # users x items
    appeal = (genres @ GENDER_APPEAL) / np.maximum(n_genres, 1) + rng.normal(
        0, APPEAL_NOISE, n_items
    )
    sign = np.where(female, 1.0, -1.0)
    rank = rng.permutation(n_items) + 1
    log_pop = -POP_EXPONENT * np.log(rank + POP_OFFSET * n_items)
    log_pop -= OBSCURE_DROP * (rng.random(n_items) < OBSCURE_SHARE)
    log_w = (
        log_pop[None, :] + TASTE_WEIGHT * aff + (GENDER_WEIGHT * sign[:, None] * appeal[None, :])
    )

    # at most 45% of the items (ML-100K's heaviest user rated 44%), more for tiny catalogues
    cap = min(n_items, max(20, int(0.45 * n_items), -(-2 * n_ratings // n_users)))
    counts = _allocate(rng, n_users, n_ratings, min(20, n_items), cap, 0.95)
    users, items = _choose(rng, log_w, counts)

    quality = 0.4 * (log_pop - log_pop.mean()) / log_pop.std() + rng.normal(0, 0.7, n_items)
    bias = rng.normal(0.0, 0.5, n_users)
    score = (
        0.8 * quality[items]
        + bias[users]
        + 0.6 * aff[users, items]
        + rng.normal(0.0, 1.0, users.size)
    )
    ratings = _quantile_levels(rng, score, rating_shares)

    t0, t1 = period
    start = t0 + np.floor(rng.beta(*start_beta, n_users) * (t1 - t0) * 0.97).astype(np.int64)
    times = _session_times(rng, users, n_users, start, t1)
    return {
        "user": users,
        "item": items,
        "rating": ratings,
        "timestamp": times,
        "female": female,
    }


def _imdb_url(title: str) -> str:
    return "http://us.imdb.com/M/title-exact?" + quote(title, safe="(),'!:&", encoding="latin-1")


def _release_date(rng: np.random.Generator, year: int) -> str:
    if year < 1990 or rng.random() < 0.35:
        return f"01-Jan-{year}"
    day = dt.date(year, 1, 1) + dt.timedelta(days=int(rng.integers(365)))
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def _movie_catalogue(
    rng: np.random.Generator, n_items: int, shares, recent: tuple[int, int], old_share: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Titles, years and genre flags; the first items are ``ANCHOR_TITLES``."""
    genres = _genre_matrix(rng, n_items, shares)
    years = _years(rng, n_items, recent, old_share)
    titles = _titles(rng, years)
    for i, (title, anchor_genres) in enumerate(ANCHOR_TITLES[:n_items]):
        titles[i] = title
        years[i] = 1995
        genres[i] = False
        genres[i, [_G[g] for g in anchor_genres]] = True
    return titles, years, genres


def _write_lines(path: Path, lines: list[str] | pl.Series, encoding: str = "latin-1") -> None:
    text = "\n".join(lines) + "\n"
    path.write_bytes(text.encode(encoding))


def _digits(rng: np.random.Generator, n: int, width: int) -> list[str]:
    return [f"{v:0{width}d}" for v in rng.integers(0, 10**width, n)]


def write_ml100k(
    folder: Path,
    *,
    n_users: int = 943,
    n_items: int = 1682,
    n_ratings: int = 100_000,
    seed: int = 0,
) -> Path:
    """Write an ML-100K folder (see the module docstring) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 100])

    ages = np.clip(np.round(8 + rng.gamma(4.0, 6.5, n_users)), 7, 73).astype(int)
    titles, years, genres = _movie_catalogue(rng, n_items, _GENRE_SHARE_100K, (1990, 1998), 0.35)
    unknown = min(267, n_items) - 1 if n_items > len(ANCHOR_TITLES) else None
    if unknown is not None:
        genres[unknown] = False
    world = _movielens_world(
        rng,
        n_users=n_users,
        n_items=n_items,
        n_ratings=n_ratings,
        female_share=0.29,
        young=ages < 25,
        old=ages >= 45,
        genres=genres,
        rating_shares=_RATING_SHARE_100K,
        period=ML100K_PERIOD,
        start_beta=(1.0, 1.0),
    )

    order = rng.permutation(world["user"].size)  # u.data is in no particular order
    data = pl.DataFrame(
        {
            "u": world["user"][order] + 1,
            "i": world["item"][order] + 1,
            "r": world["rating"][order],
            "t": world["timestamp"][order],
        }
    ).select(pl.concat_str(pl.all().cast(pl.String), separator="\t"))
    _write_lines(folder / "u.data", data.to_series())

    item_lines = []
    for i in range(n_items):
        if i == unknown:
            flags = "|".join(["1"] + ["0"] * len(GENRES))
            item_lines.append(f"{i + 1}|unknown||||{flags}")
            continue
        flags = "|".join(["0", *("1" if f else "0" for f in genres[i])])
        title = titles[i]
        date = "01-Jan-1995" if i < len(ANCHOR_TITLES) else _release_date(rng, int(years[i]))
        item_lines.append(f"{i + 1}|{title}|{date}||{_imdb_url(title)}|{flags}")
    _write_lines(folder / "u.item", item_lines)

    weights = np.asarray(_ML100K_OCCUPATION_COUNTS, dtype=float)
    student = ML100K_OCCUPATIONS.index("student")
    not_student = weights.copy()
    not_student[student] *= 0.25
    occupation = np.where(
        (ages < 23) & (rng.random(n_users) < 0.7),
        student,
        rng.choice(len(weights), n_users, p=not_student / not_student.sum()),
    )
    zips = _digits(rng, n_users, 5)
    letters = "ABCEGHJKLMNPRSTVXY"
    for u in np.flatnonzero(rng.random(n_users) < 0.03):
        a, b, c = (letters[k] for k in rng.integers(len(letters), size=3))
        zips[u] = f"{a}{rng.integers(10)}{b}{rng.integers(10)}{c}"
    genders = np.where(world["female"], "F", "M")
    _write_lines(
        folder / "u.user",
        [
            f"{u + 1}|{ages[u]}|{genders[u]}|{ML100K_OCCUPATIONS[occupation[u]]}|{zips[u]}"
            for u in range(n_users)
        ],
    )
    (folder / "u.genre").write_bytes(
        ("".join(f"{g}|{j}\n" for j, g in enumerate(ML100K_GENRES)) + "\n").encode("latin-1")
    )
    _write_lines(folder / "u.occupation", list(ML100K_OCCUPATIONS))
    _write_lines(
        folder / "u.info", [f"{n_users} users", f"{n_items} items", f"{n_ratings} ratings"]
    )
    return folder


def write_ml1m(
    folder: Path,
    *,
    n_users: int = 6040,
    n_items: int = 3706,
    n_ratings: int = 1_000_209,
    seed: int = 0,
) -> Path:
    """Write an ML-1M folder (see the module docstring) and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1000])

    age_p = np.asarray(_ML1M_AGE_COUNTS, dtype=float)
    age_code = rng.choice(len(ML1M_AGE_GROUPS), n_users, p=age_p / age_p.sum())
    age = np.asarray(ML1M_AGE_GROUPS)[age_code]

    n_unrated = round(n_items * 177 / 3706)
    n_listed = n_items + n_unrated
    titles, years, genres = _movie_catalogue(rng, n_listed, _GENRE_SHARE_1M, (1990, 2000), 0.45)
    id_space = max(n_listed, round(n_listed * 3952 / 3883))  # ids 1..3952 in the real file
    ids = rng.choice(np.arange(2, id_space + 1), n_listed - 1, replace=False)
    movie_ids = np.r_[1, np.sort(ids)]
    # the anchors (listed first) are rated; the other rated movies are a random subset
    n_anchor = min(len(ANCHOR_TITLES), n_items)
    rest = rng.permutation(np.arange(n_anchor, n_listed))
    rated = np.sort(np.r_[np.arange(n_anchor), rest[: n_items - n_anchor]])

    world = _movielens_world(
        rng,
        n_users=n_users,
        n_items=n_items,
        n_ratings=n_ratings,
        female_share=0.283,
        young=age <= 18,
        old=age >= 45,
        genres=genres[rated],
        rating_shares=_RATING_SHARE_1M,
        period=ML1M_PERIOD,
        start_beta=(0.7, 6.0),
    )

    # grouped by user; each user's rows in random order (as in the published file)
    users = world["user"]
    order = np.lexsort((rng.random(users.size), users))
    ratings = pl.DataFrame(
        {
            "u": users[order] + 1,
            "i": movie_ids[rated][world["item"][order]],
            "r": world["rating"][order],
            "t": world["timestamp"][order],
        }
    ).select(pl.concat_str(pl.all().cast(pl.String), separator="::"))
    _write_lines(folder / "ratings.dat", ratings.to_series())

    _write_lines(
        folder / "movies.dat",
        [
            f"{movie_ids[i]}::{titles[i]}::"
            + "|".join(g for g, f in zip(GENRES, genres[i], strict=True) if f)
            for i in range(n_listed)
        ],
    )

    occ_p = np.asarray(_ML1M_OCCUPATION_COUNTS, dtype=float)
    occupation = rng.choice(len(occ_p), n_users, p=occ_p / occ_p.sum())
    occupation = np.where((age == 1) & (rng.random(n_users) < 0.8), 10, occupation)
    occupation = np.where((age == 18) & (rng.random(n_users) < 0.45), 4, occupation)
    occupation = np.where((age == 56) & (rng.random(n_users) < 0.3), 13, occupation)
    zips = _digits(rng, n_users, 5)
    for u in np.flatnonzero(rng.random(n_users) < 0.04):
        zips[u] = f"{zips[u]}-{rng.integers(10_000):04d}"
    genders = np.where(world["female"], "F", "M")
    _write_lines(
        folder / "users.dat",
        [f"{u + 1}::{genders[u]}::{age[u]}::{occupation[u]}::{zips[u]}" for u in range(n_users)],
    )
    return folder


# --- Tenrec ---------------------------------------------------------------------------

TENREC_VIDEO_HEADER = (
    "user_id", "item_id", "click", "follow", "like", "share", "video_category",
    "watching_times", "gender", "age",
)  # fmt: skip
TENREC_ARTICLE_HEADER = (
    "user_id", "item_id", "click", "gender", "age", "exposure_count", "click_count",
    "like_count", "comment_count", "read_percentage", "item_score1", "item_score2",
    "category_second", "category_first", "item_score3", "read", "read_time", "share",
    "like", "follow", "favorite",
)  # fmt: skip
TENREC_NULL = "\\N"
_N_TOPICS = 6
_TENREC_GENDER_P = (0.19, 0.58, 0.23)  # codes 0 (unknown), 1, 2
_TENREC_AGE_P = (0.19, 0.02, 0.49, 0.21, 0.066, 0.018, 0.0055, 0.0008)  # codes 0..7


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept_for_rate(logit: np.ndarray, rate: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _flag(x: np.ndarray) -> np.ndarray:
    return np.where(x, "1.0", "0.0")


def write_tenrec(
    folder: Path,
    *,
    n_users: int = 2000,
    n_videos: int = 3000,
    n_articles: int = 1500,
    n_video_events: int = 150_000,
    n_article_events: int = 50_000,
    seed: int = 0,
) -> Path:
    """Write ``QK-video.csv`` and ``QK-article.csv`` (see the module docstring); return the
    folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 7])

    # users: codes 0 = unknown for gender and age together (as in the real logs)
    gender_p = np.asarray(_TENREC_GENDER_P)
    gender = rng.choice(3, n_users, p=gender_p)
    age_p = np.asarray(_TENREC_AGE_P[1:]) / sum(_TENREC_AGE_P[1:])
    age = np.where(gender == 0, 0, 1 + rng.choice(7, n_users, p=age_p))
    alpha = np.full((n_users, _N_TOPICS), 0.5)
    alpha[gender == 1, 0:2] *= 2.5
    alpha[gender == 2, 3:5] *= 2.5
    alpha[(age >= 1) & (age <= 2), 2] *= 2.5
    alpha[age >= 5, 5] *= 3.0
    theta = rng.gamma(alpha)
    theta /= np.maximum(theta.sum(axis=1, keepdims=True), 1e-12)
    log_taste = np.log(theta + 0.02)
    z = log_taste - log_taste.mean(axis=1, keepdims=True)
    z /= z.std()

    # videos
    v_topic = rng.integers(_N_TOPICS, size=n_videos)
    v_cat = np.where(v_topic < 3, rng.random(n_videos) < 0.2, rng.random(n_videos) < 0.8)
    v_cat_text = np.where(v_cat, "1", "0").astype(object)
    v_cat_text[rng.random(n_videos) < 0.015] = TENREC_NULL
    v_log_pop = -1.0 * np.log(rng.permutation(n_videos) + 1)
    n_repeat = round(0.015 * n_video_events)
    n_exposures = n_video_events - n_repeat
    cap = min(n_videos, max(5, n_videos // 2, -(-2 * n_exposures // n_users)))
    counts = _allocate(rng, n_users, n_exposures, min(5, n_videos), cap, 1.1)
    log_w = v_log_pop[None, :] + 1.5 * z[:, v_topic]
    users, items = _choose(rng, log_w, counts)
    # re-exposures: copies of earlier rows, at random later places of the user's log
    again = rng.choice(users.size, n_repeat, replace=False)
    users = np.r_[users, users[again]]
    items = np.r_[items, items[again]]
    order = np.lexsort((rng.random(users.size), users))
    users, items = users[order], items[order]

    pop_z = (v_log_pop - v_log_pop.mean()) / v_log_pop.std()
    bias = rng.normal(0.0, 0.6, n_users)
    logit = 1.4 * z[users, v_topic[items]] + bias[users] + 0.3 * pop_z[items]
    logit += _intercept_for_rate(logit, 0.29)
    click = rng.random(users.size) < _sigmoid(logit)
    like = click & (rng.random(users.size) < 0.07)
    share = click & (rng.random(users.size) < 0.008)
    follow = click & (rng.random(users.size) < 0.006)
    watching = np.where(
        click, rng.geometric(0.8, users.size), (rng.random(users.size) < 0.45).astype(int)
    )
    video = pl.DataFrame(
        {
            "user_id": users + 1,
            "item_id": items + 1,
            "click": click.astype(np.int64),
            "follow": follow.astype(np.int64),
            "like": like.astype(np.int64),
            "share": share.astype(np.int64),
            "video_category": pl.Series(v_cat_text[items].tolist(), dtype=pl.String),
            "watching_times": watching.astype(np.int64),
            "gender": gender[users],
            "age": age[users],
        }
    )
    video.write_csv(folder / "QK-video.csv", quote_style="never", line_terminator="\n")

    # articles: read by 60% of the users, chosen by the same taste
    n_readers = max(1, round(0.6 * n_users))
    readers = np.sort(rng.choice(n_users, n_readers, replace=False))
    a_topic = rng.integers(_N_TOPICS, size=n_articles)
    a_log_pop = -1.0 * np.log(rng.permutation(n_articles) + 1)
    cap = min(n_articles, max(3, n_articles // 2, -(-2 * n_article_events // n_readers)))
    a_counts = _allocate(rng, n_readers, n_article_events, min(3, n_articles), cap, 1.0)
    a_log_w = a_log_pop[None, :] + 2.0 * z[readers][:, a_topic]
    rows, a_items = _choose(rng, a_log_w, a_counts)
    a_users = readers[rows]
    n = a_users.size

    # item-level statistics, as the published file repeats them on every row
    exposure_count = np.round(np.exp(a_log_pop + 10.0 + rng.normal(0, 0.5, n_articles)))
    exposure_count = exposure_count.astype(np.int64) + 1
    click_count = np.maximum(1, np.round(exposure_count * rng.beta(2, 18, n_articles)))
    click_count = click_count.astype(np.int64)
    like_count = rng.binomial(click_count, 0.02)
    comment_count = rng.binomial(click_count, 0.005)
    score1 = rng.integers(0, 5, n_articles)
    score2 = rng.integers(0, 5, n_articles)
    score3 = rng.integers(0, 5, n_articles)
    cat_first = 100 + a_topic * 3 + rng.integers(0, 3, n_articles)
    cat_second = cat_first * 100 + rng.integers(1, 10, n_articles)

    read = rng.random(n) < 0.96
    read_pct = np.round(np.clip(rng.beta(2.0, 1.5, n) * 100, 1, 100), 1)
    read_time = np.round(np.exp(rng.normal(np.log(60.0), 1.0, n)), 1)
    article = pl.DataFrame(
        {
            "user_id": a_users + 1,
            "item_id": a_items + 1,
            "click": ["1.0"] * n,
            "gender": gender[a_users],
            "age": age[a_users],
            "exposure_count": exposure_count[a_items],
            "click_count": click_count[a_items],
            "like_count": like_count[a_items],
            "comment_count": comment_count[a_items],
            "read_percentage": pl.Series(np.where(read, read_pct, np.nan)).fill_nan(None),
            "item_score1": score1[a_items],
            "item_score2": score2[a_items],
            "category_second": cat_second[a_items],
            "category_first": cat_first[a_items],
            "item_score3": score3[a_items],
            "read": _flag(read),
            "read_time": pl.Series(np.where(read, read_time, np.nan)).fill_nan(None),
            "share": _flag(rng.random(n) < 0.013),
            "like": _flag(rng.random(n) < 0.018),
            "follow": _flag(rng.random(n) < 0.0013),
            "favorite": _flag(rng.random(n) < 0.007),
        }
    )
    assert tuple(article.columns) == TENREC_ARTICLE_HEADER
    assert tuple(video.columns) == TENREC_VIDEO_HEADER
    article.write_csv(
        folder / "QK-article.csv", quote_style="never", line_terminator="\n", float_precision=1
    )
    return folder
