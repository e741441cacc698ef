"""A seeded synthetic world with known structure, for testing every method against truth.

``generate(SyntheticConfig(...))`` returns canonical tables (name ``"synthetic"``) plus the
planted truth as extra tables. Everything below is a fact of the generator that tests and
later evaluations may rely on; names in double backticks are ``SyntheticConfig`` fields.

Items
    ``n_items`` items in ``n_clusters`` clusters of (almost) equal size, at least 4 per
    cluster. Two entity types: ``"product"`` (the source entity) and ``"post"`` (the target
    entity); within every cluster about ``target_item_share`` of the items are posts, and
    every (cluster, entity) group is non-empty. Item ids are a random permutation of
    1..n_items, so an id says nothing about the cluster.

    Columns: ``category`` (entity-shared, every item) = the cluster as ``"c07"`` (zero-padded
    to at least two digits); products only: ``price`` (Float64, log-normal around a
    per-cluster level) and ``brand`` (String, one of ``brands_per_cluster`` brands of the
    cluster, no click signal of its own); posts only: ``style`` (String ``"s0"``..) and
    ``length_words`` (Int64, no click signal). Entity-specific columns are null for the
    other entity. ``genres`` is the cluster's coarse genre (a generated word shared by
    ``clusters_per_genre`` consecutive clusters, c // clusters_per_genre) for about
    ``genre_share`` of the items, else null.

Item text and planted synonyms
    Titles are generated pronounceable words (e.g. ``"bakoti"``), space separated, in random
    order. Each cluster c has a synonym pair (word_a, word_b) and ``topic_words_per_cluster``
    topic words. Every item of c carries exactly one word of the pair (its *side*: sides
    alternate over a random order of the cluster, so about half each), never both, and no
    item outside c carries either. With ``split_topic_words`` (default) the topic words
    are split in two halves, one per side, so an item's own text links it to the other
    side of its cluster only through the shared genre and noise words (and, for new items,
    the cluster's fresh word): text alone cannot tell that word_a and word_b mean the same,
    while the two sides are co-consumed. Each item also has ``topic_words_per_item``
    distinct topic words of its half and ``noise_words_per_item`` distinct words from a
    pool of ``noise_words`` shared by all clusters. New items (below) also carry their
    cluster's *fresh* word, which no old item has.

Users
    ``gender`` in ("F", "M") with equal probability; ``age`` an age-group code from
    ``AGE_GROUPS`` = (18, 25, 35, 45, 56) with probabilities ``AGE_GROUP_SHARES``.
    Cluster logits: theta[u, c] = preference_sigma * N(0, 1)
    + gender_boost * [c % 2 == gender index (F=0, M=1)]
    + age_boost * [c % 5 == age-group index]. The boosted sets are in
    ``info["boosted_clusters"]``. Interest(u, c) = theta[u, c] - mean_c theta[u, c] (stored per
    user as the list ``user_truth.interest``, index = cluster); preference = softmax(theta[u]).
    So attributes shift preferences and are predictable from behaviour.
    Per-user click-model parameters: ``price_sensitivity`` ~ U(0, 2) and
    ``preferred_style`` uniform over the styles; with ``style_price_link`` p, a share p
    of users (own stream) instead prefer the style of their price-sensitivity quantile
    (s0 = least sensitive), so one taste drives both entities' specific signal.

Events (the ``interactions`` table)
    Every event is an impression: ``event = "impression"``, ``label`` = click (1.0 / 0.0),
    ``entity`` = the item's entity. User u gets ``min_events_per_user`` + a multinomial share
    (weights log-normal, sigma ``activity_sigma``) of ``n_events`` events. A user's events
    come in runs: a new run starts with probability 1 / ``mean_run_length`` at each event
    (and at the user's first). A run's cluster is drawn from the user's preference. Each
    impression shows an item of the run's cluster, except with probability
    ``explore_share`` an item of a uniformly random cluster; its entity is ``"post"`` with
    probability ``target_share`` (so source:target volume is 3:1 by default; with
    ``target_share_concentration`` kappa each user has an own share ~ Beta(kappa * m,
    kappa * (1 - m)), m = ``target_share``, drawn from a stream of its own: the volume stays
    3:1 on average while many users rarely see a post, as in logs where one entity type
    dominates; ``late_adopter_share`` of the users see no post before
    ``late_adopter_start`` of the span and posts with share target_share / (1 - start),
    capped at 0.9, after it: users new to the target entity, whose taste is known from
    the source only, as when a content feed opens inside an existing shop), and the item
    is drawn within (cluster, entity) proportionally to a log-normal popularity weight
    (sigma ``popularity_sigma``, ``item_truth.popularity``) among items already released.
    Click: P(label = 1) = sigmoid(interest_weight * interest(u, c)
    + affinity_weight * affinity + click_bias) with
    affinity = -price_sensitivity[u] * z(price) for products, z = (ln price - mean) / std over
    all products (``info["price_log_mean"]``, ``info["price_log_std"]``), and
    affinity = 1 if style == preferred_style[u] else -1 / (n_styles - 1) for posts. Interest is
    shared by both entities by default; the entity-specific signal lives in price and style.
    With ``target_interest_correlation`` rho < 1, clicks on posts use the post interest
    rho * interest(u, c) + sqrt(1 - rho^2) * own(u, c), own = preference_sigma * N(0, 1)
    centred per user, drawn from a stream of its own (``user_truth.target_interest``);
    products, exposures and runs are unchanged, so only posts' clicks differ from rho = 1.
    Clicked events keep the run structure, so consecutive clicks of a user mostly share a
    cluster (co-consumption); both synonym sides of a cluster are in its runs. Rows are
    sorted by (user_id, timestamp).

Time
    Unix seconds from ``start_timestamp`` (a UTC midnight), over ``span_days`` days: the start
    times of a user's runs are uniform over the span (so every day holds about
    1 / span_days of the events), events of a run follow with exponential gaps of mean
    ``within_run_gap_s``. Timestamps are strictly increasing per user (so (user_id,
    timestamp) is unique and order is never ambiguous); a few late runs may spill a little
    past the span. Day d is [start_timestamp + 86400 d, +86400). A share ``new_item_share``
    of the items are new: released at a uniform time in the last ``new_item_days`` days
    (``item_truth.release_timestamp``; old items: ``start_timestamp``) and never shown before
    it, for testing daily refreshes that add new items and words.

Queries
    The planted synonym queries: for each cluster, query = word_b and the relevant items are
    the cluster's items carrying word_a (all entities, new ones included). No relevant item
    contains the query word, so keyword matching cannot find them; co-consumption can. The
    cluster's word_b items are co-consumed just as much but are not in the relevant set:
    an evaluation should either leave items containing the query word out of the ranking
    or expect them to take about half of the top slots.

Extras (planted truth, written beside the canonical tables)
    ``item_truth``: item_id, cluster, entity, synonym_word, side (0 = word_a, 1 = word_b),
    popularity, is_new, release_timestamp. ``synonyms``: cluster, word_a, word_b,
    fresh_word, topic_words_a, topic_words_b (lists). ``user_truth``: user_id, top_cluster,
    interest (list over clusters), target_interest (posts' interest; = interest at rho = 1),
    price_sensitivity, preferred_style, target_share (the user's chance of a post),
    late_adopter, n_events.
    ``info``: the config and the derived parameters above.

Measured at the defaults (seed 0): click rate 0.41; consecutive clicks of a user share a
cluster 67% of the time against 32% by chance; click rate 0.18 / 0.39 / 0.65 over the
bottom / middle / top interest tercile; gender guessed from the share of clicks in its
boosted clusters 76% right (majority 50%), age group from the argmax over boosted sets 53%
(majority 35%); scoring items by consecutive co-consumption with the items that carry
word_b finds the word_a items at R-precision 0.76 when the word_b items themselves are left
out of the ranking (0.49 when they compete for the top slots), keyword match at 0.

Speed: fully vectorised numpy; benchmarks that need only interactions should call
``generate_interactions(n_events)``, which equals
``generate(benchmark_config(n_events)).interactions`` but skips the text and truth tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from recflow.data.dataset import CanonicalTables

SOURCE_ENTITY = "product"
TARGET_ENTITY = "post"
GENDERS = ("F", "M")
AGE_GROUPS = (18, 25, 35, 45, 56)
AGE_GROUP_SHARES = (0.15, 0.35, 0.25, 0.15, 0.10)
DAY_S = 86_400

_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # 70 syllables
_USER_KEY_STRIDE = np.int64(1) << 33  # separates users in the strictly-increasing pass


@dataclass(frozen=True)
class SyntheticConfig:
    """Size, seed and every knob of the synthetic world (see the module docstring)."""

    n_users: int = 2_000
    n_items: int = 2_000  # total over both entity types
    n_events: int = 200_000  # impressions (clicked or not), both entity types
    n_clusters: int = 20
    target_share: float = 0.25  # share of events on posts; products get the rest (3:1)
    target_share_concentration: float | None = None  # per-user share ~ Beta; None = same
    # late adopters: this share of users sees no post before late_adopter_start (a fraction
    # of the span), then posts with share target_share / (1 - start) (capped at 0.9)
    late_adopter_share: float = 0.0
    late_adopter_start: float = 0.7
    # share of users whose preferred style is their price-sensitivity bin (s0 = the least
    # sensitive quantile): the entity-specific signals of both entities share one taste
    style_price_link: float = 0.0
    seed: int = 0
    # items
    target_item_share: float = 0.25  # share of each cluster's items that are posts
    topic_words_per_cluster: int = 8  # cluster-specific words (half per synonym side)
    topic_words_per_item: int = 2  # distinct topic words in each title
    split_topic_words: bool = True  # word_a and word_b items use disjoint topic words
    noise_words: int = 200  # pool of words shared by all clusters
    noise_words_per_item: int = 2  # distinct noise words in each title
    clusters_per_genre: int = 4  # consecutive clusters sharing one coarse genre word
    genre_share: float = 0.5  # share of items whose genres column is set
    brands_per_cluster: int = 5  # products' brands (no click signal of their own)
    n_styles: int = 4  # posts' styles "s0".. (users prefer one)
    popularity_sigma: float = 1.0  # log-normal item weight within (cluster, entity)
    new_item_share: float = 0.05  # items released during the last new_item_days
    new_item_days: int = 5
    # users and sessions
    preference_sigma: float = 1.0  # spread of the users' random cluster logits
    gender_boost: float = 0.7  # logit added to the clusters a gender value boosts
    age_boost: float = 1.0  # logit added to the clusters an age group boosts
    activity_sigma: float = 1.0  # log-normal spread of events per user
    min_events_per_user: int = 5
    mean_run_length: float = 10.0  # impressions per run of one cluster, on average
    explore_share: float = 0.2  # impressions from a uniformly random cluster instead
    span_days: int = 30  # days the events cover
    within_run_gap_s: float = 60.0  # mean seconds between impressions of one run
    start_timestamp: int = 1_700_006_400  # 2023-11-15 00:00 UTC
    # click model: P(click) = sigmoid(a * interest + b * affinity + c)
    interest_weight: float = 1.0  # a
    affinity_weight: float = 1.0  # b
    click_bias: float = -1.5  # c
    # posts' interest = rho * interest + sqrt(1 - rho^2) * post-only interest (1 = identical)
    target_interest_correlation: float = 1.0

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"SyntheticConfig: {what}")

        need(self.n_clusters >= 1, f"n_clusters must be >= 1, got {self.n_clusters}")
        need(
            self.n_items >= 4 * self.n_clusters,
            f"n_items ({self.n_items}) must be >= 4 * n_clusters ({4 * self.n_clusters})",
        )
        need(self.n_users >= 1, f"n_users must be >= 1, got {self.n_users}")
        need(self.min_events_per_user >= 1, "min_events_per_user must be >= 1")
        need(
            self.n_events >= self.n_users * self.min_events_per_user,
            f"n_events ({self.n_events}) must be >= n_users * min_events_per_user "
            f"({self.n_users * self.min_events_per_user})",
        )
        for name in ("target_share", "target_item_share"):
            v = getattr(self, name)
            need(0.0 < v < 1.0, f"{name} must be in (0, 1), got {v}")
        for name in ("explore_share", "genre_share", "new_item_share"):
            v = getattr(self, name)
            need(0.0 <= v <= 1.0, f"{name} must be in [0, 1], got {v}")
        half = self.topic_words_per_cluster // 2 if self.split_topic_words else None
        need(
            self.topic_words_per_cluster % 2 == 0 or not self.split_topic_words,
            "topic_words_per_cluster must be even when split_topic_words",
        )
        need(
            self.topic_words_per_item <= (half or self.topic_words_per_cluster),
            "topic_words_per_item exceeds the topic words available to one side",
        )
        need(
            self.noise_words_per_item <= self.noise_words,
            "noise_words_per_item exceeds noise_words",
        )
        need(
            0.0 <= self.target_interest_correlation <= 1.0,
            f"target_interest_correlation must be in [0, 1], got {self.target_interest_correlation}",
        )
        kappa = self.target_share_concentration
        need(
            kappa is None or kappa > 0,
            f"target_share_concentration must be > 0 (or None), got {kappa}",
        )
        need(
            0.0 <= self.late_adopter_share <= 1.0,
            f"late_adopter_share must be in [0, 1], got {self.late_adopter_share}",
        )
        need(
            0.0 < self.late_adopter_start < 1.0,
            f"late_adopter_start must be in (0, 1), got {self.late_adopter_start}",
        )
        need(
            0.0 <= self.style_price_link <= 1.0,
            f"style_price_link must be in [0, 1], got {self.style_price_link}",
        )
        need(self.n_styles >= 2, "n_styles must be >= 2")
        need(self.brands_per_cluster >= 1, "brands_per_cluster must be >= 1")
        need(self.clusters_per_genre >= 1, "clusters_per_genre must be >= 1")
        need(self.mean_run_length >= 1.0, "mean_run_length must be >= 1")
        need(self.span_days >= 1, "span_days must be >= 1")
        need(0 <= self.new_item_days <= self.span_days, "new_item_days must be in [0, span_days]")
        need(self.within_run_gap_s > 0, "within_run_gap_s must be > 0")


def benchmark_config(
    n_events: int, seed: int = 0, n_users: int | None = None, n_items: int | None = None
) -> SyntheticConfig:
    """The config benchmarks use for ``n_events``: ~100 events per user, ~400 per item."""
    return SyntheticConfig(
        n_events=n_events,
        n_users=n_users if n_users is not None else max(1, n_events // 100),
        n_items=n_items if n_items is not None else max(1_000, n_events // 400),
        seed=seed,
    )


def category_name(cluster: int, n_clusters: int) -> str:
    """The ``category`` value of a cluster, e.g. ``"c07"``."""
    return f"c{cluster:0{max(2, len(str(n_clusters - 1)))}d}"


# ---------------------------------------------------------------------------------------
# stages: each draws from its own child generator, so skipping one (text) changes no other


@dataclass
class _Items:
    """Per-item arrays, indexed by item position p (positions are sorted by cluster)."""

    item_id: np.ndarray  # (I,) int64
    cluster: np.ndarray  # (I,) int64
    is_post: np.ndarray  # (I,) bool
    side: np.ndarray  # (I,) int64, 0 = word_a, 1 = word_b
    popularity: np.ndarray  # (I,) float64
    is_new: np.ndarray  # (I,) bool
    release_s: np.ndarray  # (I,) int64, seconds after start_timestamp
    price: np.ndarray  # (I,) float64, NaN for posts
    price_z: np.ndarray  # (I,) float64, 0 for posts
    brand: np.ndarray  # (I,) int64, -1 for posts
    style: np.ndarray  # (I,) int64, -1 for products
    length_words: np.ndarray  # (I,) int64, -1 for products
    price_log_mean: float
    price_log_std: float


@dataclass
class _Users:
    gender: np.ndarray  # (U,) int64 index into GENDERS
    age: np.ndarray  # (U,) int64 index into AGE_GROUPS
    interest: np.ndarray  # (U, K) float64, theta centred per user
    target_interest: np.ndarray  # (U, K) float64, the interest that drives clicks on posts
    preference: np.ndarray  # (U, K) float64, softmax(theta)
    price_sensitivity: np.ndarray  # (U,)
    preferred_style: np.ndarray  # (U,) int64
    n_events: np.ndarray  # (U,) int64
    target_share: np.ndarray  # (U,) float64, each user's probability that an event is a post
    late_adopter: np.ndarray  # (U,) bool, sees posts only after late_adopter_start


@dataclass
class _Events:
    user: np.ndarray  # (N,) int32 user position (user_id - 1)
    item: np.ndarray  # (N,) int32 item position
    time_s: np.ndarray  # (N,) int64 seconds after start_timestamp
    label: np.ndarray  # (N,) bool
    is_post: np.ndarray  # (N,) bool


def _rngs(seed: int) -> dict[str, np.random.Generator]:
    names = (
        "items",
        "users",
        "sessions",
        "exposures",
        "clicks",
        "text",
        "target_interest",
        "target_share",  # appended: spawn keys are positions, earlier streams are unchanged
        "style_link",
    )
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs, strict=True)}


def _rank_within(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rank 0..size-1 of each element within its group (groups sorted ascending)."""
    order = np.lexsort((rng.random(groups.size), groups))
    starts = np.searchsorted(groups, groups)  # first position of each element's group
    rank = np.empty(groups.size, dtype=np.int64)
    rank[order] = np.arange(groups.size) - starts[order]
    return rank


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> _Items:
    n, k = cfg.n_items, cfg.n_clusters
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    cluster = np.repeat(np.arange(k), sizes)
    rank = _rank_within(cluster, rng)
    n_post = np.clip(np.rint(sizes * cfg.target_item_share).astype(np.int64), 1, sizes - 1)
    is_post = rank < n_post[cluster]
    side = rank % 2
    # every (cluster, entity) group keeps its lowest-ranked item old, so it is never empty
    group_first = (rank == 0) | (rank == n_post[cluster])
    is_new = (rng.random(n) < cfg.new_item_share) & ~group_first
    span_s = cfg.span_days * DAY_S
    release = rng.integers(span_s - cfg.new_item_days * DAY_S, span_s, size=n, endpoint=False)
    release_s = np.where(is_new, release, 0).astype(np.int64)
    item_id = rng.permutation(n).astype(np.int64) + 1
    popularity = rng.lognormal(0.0, cfg.popularity_sigma, size=n)

    cluster_price_level = np.log(20.0) + 0.7 * rng.standard_normal(k)
    log_price = cluster_price_level[cluster] + 0.5 * rng.standard_normal(n)
    price = np.maximum(np.round(np.exp(log_price), 2), 0.01)
    ln_p = np.log(price[~is_post])
    mean, std = float(ln_p.mean()), float(ln_p.std())
    std = std if std > 0 else 1.0
    price_z = np.where(is_post, 0.0, (np.log(price) - mean) / std)  # z(price)
    brand = cluster * cfg.brands_per_cluster + rng.integers(cfg.brands_per_cluster, size=n)
    style = rng.integers(cfg.n_styles, size=n)
    length_words = np.maximum(20, np.rint(np.exp(np.log(300) + 0.6 * rng.standard_normal(n))))
    return _Items(
        item_id=item_id,
        cluster=cluster,
        is_post=is_post,
        side=side,
        popularity=popularity,
        is_new=is_new,
        release_s=release_s,
        price=np.where(is_post, np.nan, price),
        price_z=price_z,
        brand=np.where(is_post, -1, brand),
        style=np.where(is_post, style, -1),
        length_words=np.where(is_post, length_words.astype(np.int64), -1),
        price_log_mean=mean,
        price_log_std=std,
    )


def boosted_clusters(n_clusters: int) -> dict[str, dict[str, list[int]]]:
    """Which clusters each attribute value boosts: gender index g boosts c % 2 == g, age-group
    index j boosts c % 5 == j (keys are the attribute values as strings)."""
    c = np.arange(n_clusters)
    return {
        "gender": {g: c[c % 2 == i].tolist() for i, g in enumerate(GENDERS)},
        "age": {str(a): c[c % len(AGE_GROUPS) == j].tolist() for j, a in enumerate(AGE_GROUPS)},
    }


def _make_users(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    target_rng: np.random.Generator,
    share_rng: np.random.Generator,
    link_rng: np.random.Generator,
) -> _Users:
    u, k = cfg.n_users, cfg.n_clusters
    gender = rng.integers(len(GENDERS), size=u)
    age = rng.choice(len(AGE_GROUPS), size=u, p=np.asarray(AGE_GROUP_SHARES))
    c = np.arange(k)
    # theta[u, c] = sigma * z + gender_boost * [c % 2 == g_u] + age_boost * [c % 5 == a_u]
    theta = cfg.preference_sigma * rng.standard_normal((u, k))
    theta += cfg.gender_boost * (c[None, :] % len(GENDERS) == gender[:, None])
    theta += cfg.age_boost * (c[None, :] % len(AGE_GROUPS) == age[:, None])
    interest = theta - theta.mean(axis=1, keepdims=True)
    preference = np.exp(interest - interest.max(axis=1, keepdims=True))
    preference /= preference.sum(axis=1, keepdims=True)  # softmax(theta_u)
    price_sensitivity = rng.uniform(0.0, 2.0, size=u)
    preferred_style = rng.integers(cfg.n_styles, size=u)
    activity = rng.lognormal(0.0, cfg.activity_sigma, size=u)
    spare = cfg.n_events - u * cfg.min_events_per_user
    n_events = cfg.min_events_per_user + rng.multinomial(spare, activity / activity.sum())
    rho = cfg.target_interest_correlation
    if rho < 1.0:  # own draw, so rho = 1 leaves every other stream as it was
        own = cfg.preference_sigma * target_rng.standard_normal((u, k))
        own -= own.mean(axis=1, keepdims=True)
        # interest_post = rho * interest + sqrt(1 - rho^2) * post-only interest
        target_interest = rho * interest + np.sqrt(1.0 - rho * rho) * own
    else:
        target_interest = interest
    m, kappa = cfg.target_share, cfg.target_share_concentration
    if kappa is None:
        target_share = np.full(u, m)
    else:
        target_share = share_rng.beta(kappa * m, kappa * (1.0 - m), size=u)
    if cfg.style_price_link > 0:
        linked = link_rng.random(u) < cfg.style_price_link
        ranks = np.argsort(np.argsort(price_sensitivity))
        by_price = (ranks * cfg.n_styles) // u  # quantile bin: 0 = least price-sensitive
        preferred_style = np.where(linked, by_price, preferred_style)
    late_adopter = np.zeros(u, dtype=bool)
    if cfg.late_adopter_share > 0:
        late_adopter = share_rng.random(u) < cfg.late_adopter_share
    return _Users(
        gender=gender,
        age=age,
        interest=interest,
        target_interest=target_interest,
        preference=preference,
        price_sensitivity=price_sensitivity,
        preferred_style=preferred_style,
        n_events=n_events.astype(np.int64),
        target_share=target_share,
        late_adopter=late_adopter,
    )


@dataclass
class _AliasTable:
    """Walker/Vose alias tables for drawing an element of a group in O(1), one per group.

    Elements are sorted by group; group g occupies [start[g], start[g] + size[g]). Drawing
    from g: j = start[g] + floor(u), u = r * size[g]; keep j if frac(u) < prob[j], else
    take alias[j]. Each element ends up drawn with probability weight / group total.
    """

    start: np.ndarray  # (G,) int64
    size: np.ndarray  # (G,) int64
    prob: np.ndarray  # (M,) float64
    alias: np.ndarray  # (M,) int64, global element index

    @classmethod
    def build(cls, group: np.ndarray, weight: np.ndarray) -> _AliasTable:
        """``group`` (M,) sorted ascending with values 0..G-1, every group non-empty with a
        positive total ``weight``."""
        n_groups = int(group[-1]) + 1
        start = np.searchsorted(group, np.arange(n_groups))
        size = np.diff(np.append(start, group.size))
        prob = np.ones(group.size)
        alias = np.arange(group.size)
        for g in range(n_groups):
            lo, m = int(start[g]), int(size[g])
            w = weight[lo : lo + m]
            scaled = (w * (m / w.sum())).tolist()  # mean 1 within the group
            small = [i for i, p in enumerate(scaled) if p < 1.0]
            large = [i for i, p in enumerate(scaled) if p >= 1.0]
            while small and large:  # Vose: pair one short column with one tall column
                s, big = small.pop(), large[-1]
                prob[lo + s] = scaled[s]
                alias[lo + s] = lo + big
                scaled[big] += scaled[s] - 1.0
                if scaled[big] < 1.0:
                    small.append(large.pop())
        return cls(start=start, size=size, prob=prob, alias=alias)

    def draw(self, queries: np.ndarray, r: np.ndarray) -> np.ndarray:
        """One element index per query group, ``r`` (Q,) uniform in [0, 1)."""
        size = self.size[queries]
        u = r * size
        j = u.astype(np.int64)
        np.minimum(j, size - 1, out=j)
        u -= j  # the leftover fraction is the acceptance coin
        j += self.start[queries]
        return np.where(u < self.prob[j], j, self.alias[j])


def _simulate_events(
    cfg: SyntheticConfig, items: _Items, users: _Users, rngs: dict[str, np.random.Generator]
) -> _Events:
    n, k = cfg.n_events, cfg.n_clusters
    n_users = cfg.n_users

    # --- sessions: users, runs, clusters of runs, times
    rng = rngs["sessions"]
    user = np.repeat(np.arange(n_users, dtype=np.int32), users.n_events)  # (N,)
    user_first = np.concatenate(([0], np.cumsum(users.n_events)[:-1]))  # (U,)
    is_run_start = rng.random(n, dtype=np.float32) < 1.0 / cfg.mean_run_length
    is_run_start[user_first] = True
    run = np.cumsum(is_run_start, dtype=np.int32) - 1  # (N,) run index of each event
    run_first = np.flatnonzero(is_run_start)  # (R,)
    del is_run_start
    run_user = user[run_first]  # (R,)
    n_runs = run_first.size

    # run cluster ~ preference[u]: rows' cumulative sums laid end to end as u + cumsum
    cum = np.cumsum(users.preference, axis=1)
    cum[:, -1] = 1.0
    flat = (np.arange(n_users)[:, None] + cum).ravel()  # (U * K,)
    hit = np.searchsorted(flat, run_user + rng.random(n_runs), side="right")
    run_cluster = np.minimum(hit - run_user.astype(np.int64) * k, k - 1).astype(np.int32)
    del cum, flat, hit

    # run start = span * (sorted uniform): S_j / S_{n+1} with exponential spacings gives
    # the order statistics of a user's uniforms without a sort
    spacing = rng.exponential(size=n_runs)
    csum = np.cumsum(spacing)
    user_first_run = run[user_first].astype(np.int64)  # (U,)
    offset = csum[user_first_run] - spacing[user_first_run]  # (U,)
    within = csum - offset[run_user]  # (R,) S_j per user
    user_last_run = np.concatenate((user_first_run[1:], [n_runs])) - 1
    total = within[user_last_run] + rng.exponential(size=n_users)  # S_{n+1}
    run_start_s = (cfg.span_days * DAY_S) * (within / total[run_user])
    del spacing, csum, within
    gap = rng.exponential(cfg.within_run_gap_s, size=n)
    gap[run_first] = 0.0
    elapsed = np.cumsum(gap)
    del gap
    elapsed += (run_start_s - elapsed[run_first])[run]  # run start + time since it started
    time_s = np.floor(elapsed).astype(np.int64)
    del elapsed
    # strictly increasing per user: t'_i - i = running max of (t_i - i), users kept apart
    pos = np.arange(n, dtype=np.int64) - np.repeat(user_first, users.n_events)
    user_key = user.astype(np.int64) * _USER_KEY_STRIDE
    time_s -= pos
    time_s += user_key
    np.maximum.accumulate(time_s, out=time_s)
    time_s -= user_key
    time_s += pos
    del pos, user_key

    # --- exposures: cluster (run or explore), entity, item within (cluster, entity)
    rng = rngs["exposures"]
    cluster = run_cluster[run]  # (N,) int32
    del run
    explore = rng.random(n, dtype=np.float32) < cfg.explore_share
    cluster[explore] = rng.integers(k, size=int(explore.sum()))
    del explore
    post_p = users.target_share[user]
    if users.late_adopter.any():
        late = users.late_adopter[user]
        after = time_s >= cfg.late_adopter_start * cfg.span_days * DAY_S
        boosted = np.minimum(post_p / (1.0 - cfg.late_adopter_start), 0.9)
        post_p = np.where(late, np.where(after, boosted, 0.0), post_p)
        del late, after, boosted
    is_post = rng.random(n, dtype=np.float32) < post_p
    del post_p
    group = cluster * 2 + is_post  # (N,) int32, group = 2 * cluster + is_post
    item_group = items.cluster * 2 + items.is_post
    order = np.argsort(item_group, kind="stable")  # item positions sorted by group
    sorted_group = item_group[order]
    table = _AliasTable.build(sorted_group, items.popularity[order])
    item = order[table.draw(group, rng.random(n))]
    early = items.release_s[item] > time_s  # shown before release: redraw among old items
    if early.any():
        old_weight = np.where(items.is_new[order], 0.0, items.popularity[order])
        old_table = _AliasTable.build(sorted_group, old_weight)
        item[early] = order[old_table.draw(group[early], rng.random(early.sum()))]
    del group, early
    item = item.astype(np.int32)

    # --- clicks: P = sigmoid(a * interest(u, c) + b * affinity + c0)
    rng = rngs["clicks"]
    cell = user.astype(np.int64) * k + cluster
    interest = np.where(is_post, users.target_interest.ravel()[cell], users.interest.ravel()[cell])
    del cell
    del cluster
    style_match = items.style[item] == users.preferred_style[user]
    post_affinity = np.where(style_match, 1.0, -1.0 / (cfg.n_styles - 1))
    product_affinity = -users.price_sensitivity[user] * items.price_z[item]
    affinity = np.where(is_post, post_affinity, product_affinity)
    del style_match, post_affinity, product_affinity
    logit = cfg.interest_weight * interest + cfg.affinity_weight * affinity + cfg.click_bias
    del interest, affinity
    label = rng.random(n) * (1.0 + np.exp(-logit)) < 1.0  # r < sigmoid(logit)
    return _Events(user=user, item=item, time_s=time_s, label=label, is_post=is_post)


def _interactions_frame(cfg: SyntheticConfig, items: _Items, ev: _Events) -> pl.DataFrame:
    entity = pl.Series("is_post", ev.is_post)
    return pl.DataFrame(
        {
            "user_id": ev.user.astype(np.int64) + 1,
            "item_id": items.item_id[ev.item],
            "timestamp": ev.time_s + cfg.start_timestamp,
            "label": ev.label.astype(np.float64),
        }
    ).with_columns(
        pl.lit("impression", dtype=pl.String).alias("event"),
        pl.when(entity)
        .then(pl.lit(TARGET_ENTITY))
        .otherwise(pl.lit(SOURCE_ENTITY))
        .alias("entity"),
    )


# ---------------------------------------------------------------------------------------
# text


def _words(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct pronounceable words of equal syllable count, in random order."""
    n_syl = 3
    while len(_SYLLABLES) ** n_syl < 4 * n:
        n_syl += 1
    codes = rng.choice(len(_SYLLABLES) ** n_syl, size=n, replace=False)
    out = []
    for code in codes.tolist():
        parts = []
        for _ in range(n_syl):
            code, digit = divmod(code, len(_SYLLABLES))
            parts.append(_SYLLABLES[digit])
        out.append("".join(parts))
    return out


def _distinct_picks(n: int, pool: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """(n, m) indices in [0, pool), distinct within each row (rows with a repeat redrawn)."""
    if m == 0:
        return np.empty((n, 0), dtype=np.int64)
    picks = rng.integers(pool, size=(n, m))
    while m > 1:
        srt = np.sort(picks, axis=1)
        bad = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
        if bad.size == 0:
            break
        picks[bad] = rng.integers(pool, size=(bad.size, m))
    return picks


@dataclass
class _Text:
    title: pl.Series  # (I,)
    genre_of_cluster: list[str]
    genres: pl.Series  # (I,) genre name or null
    word_a: list[str]
    word_b: list[str]
    fresh: list[str]
    topic: list[list[str]]  # (K, topic_words_per_cluster)


def _make_text(cfg: SyntheticConfig, items: _Items, rng: np.random.Generator) -> _Text:
    k, n = cfg.n_clusters, cfg.n_items
    t = cfg.topic_words_per_cluster
    n_genres = -(-k // cfg.clusters_per_genre)
    vocab = _words(k * (t + 3) + cfg.noise_words + n_genres, rng)
    topic_base, syn_base = 0, k * t  # word index layout in vocab
    fresh_base, noise_base = k * (t + 2), k * (t + 3)
    genre_base = noise_base + cfg.noise_words

    cl, side = items.cluster, items.side
    cols: list[np.ndarray] = []  # each (I,) word index into vocab, -1 = no word
    # topic words: distinct picks from the item's half (or from all of the cluster's)
    pool = t // 2 if cfg.split_topic_words else t
    pool_start = topic_base + cl * t + (side * pool if cfg.split_topic_words else 0)
    picks = _distinct_picks(n, pool, cfg.topic_words_per_item, rng)
    cols += [pool_start + picks[:, j] for j in range(cfg.topic_words_per_item)]
    cols.append(syn_base + 2 * cl + side)  # exactly one word of the pair
    noise = _distinct_picks(n, cfg.noise_words, cfg.noise_words_per_item, rng)
    cols += [noise_base + noise[:, j] for j in range(cfg.noise_words_per_item)]
    cols.append(np.where(items.is_new, fresh_base + cl, -1))
    word_idx = np.stack(cols, axis=1)  # (I, W)
    shuffle = np.argsort(rng.random(word_idx.shape), axis=1)
    word_idx = np.take_along_axis(word_idx, shuffle, axis=1)

    vocab_s = pl.Series("w", vocab + [None], dtype=pl.String)  # index -1 -> the null
    parts = [
        vocab_s.gather(np.where(word_idx[:, j] < 0, len(vocab), word_idx[:, j])).alias(f"w{j}")
        for j in range(word_idx.shape[1])
    ]
    title = pl.select(pl.concat_str(parts, separator=" ", ignore_nulls=True)).to_series()

    genre_of_cluster = [vocab[genre_base + c // cfg.clusters_per_genre] for c in range(k)]
    has_genre = rng.random(n) < cfg.genre_share
    genre_idx = np.where(has_genre, genre_base + cl // cfg.clusters_per_genre, len(vocab))
    return _Text(
        title=title,
        genre_of_cluster=genre_of_cluster,
        genres=vocab_s.gather(genre_idx),
        word_a=[vocab[syn_base + 2 * c] for c in range(k)],
        word_b=[vocab[syn_base + 2 * c + 1] for c in range(k)],
        fresh=[vocab[fresh_base + c] for c in range(k)],
        topic=[vocab[topic_base + c * t : topic_base + (c + 1) * t] for c in range(k)],
    )


# ---------------------------------------------------------------------------------------
# tables


def _items_frame(cfg: SyntheticConfig, items: _Items, text: _Text) -> pl.DataFrame:
    k = cfg.n_clusters
    categories = pl.Series([category_name(c, k) for c in range(k)], dtype=pl.String)
    brand_names = pl.Series(
        [f"b{b:05d}" for b in range(k * cfg.brands_per_cluster)] + [None], dtype=pl.String
    )
    style_names = pl.Series([f"s{s}" for s in range(cfg.n_styles)] + [None], dtype=pl.String)
    post = items.is_post
    df = pl.DataFrame(
        {
            "item_id": items.item_id,
            "entity": np.where(post, TARGET_ENTITY, SOURCE_ENTITY),
            "title": text.title,
            "genres": text.genres,
            "category": categories.gather(items.cluster),
            "price": pl.Series(items.price).fill_nan(None),
            "brand": brand_names.gather(np.where(post, len(brand_names) - 1, items.brand)),
            "style": style_names.gather(np.where(post, items.style, len(style_names) - 1)),
            "length_words": pl.Series(items.length_words).set(pl.Series(~post), None),
        },
        schema_overrides={"entity": pl.String, "length_words": pl.Int64},
    )
    return df.sort("item_id")


def _users_frame(users: _Users) -> pl.DataFrame:
    n = users.gender.size
    return pl.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "gender": pl.Series(GENDERS, dtype=pl.String).gather(users.gender),
            "age": np.asarray(AGE_GROUPS, dtype=np.int64)[users.age],
        }
    )


def _truth_frames(
    cfg: SyntheticConfig, items: _Items, users: _Users, text: _Text
) -> dict[str, pl.DataFrame]:
    k = cfg.n_clusters
    t = cfg.topic_words_per_cluster
    half = t // 2 if cfg.split_topic_words else t
    syn_word = np.where(
        items.side == 0,
        np.asarray(text.word_a)[items.cluster],
        np.asarray(text.word_b)[items.cluster],
    )
    item_truth = pl.DataFrame(
        {
            "item_id": items.item_id,
            "cluster": items.cluster.astype(np.int64),
            "entity": np.where(items.is_post, TARGET_ENTITY, SOURCE_ENTITY),
            "synonym_word": syn_word,
            "side": items.side.astype(np.int64),
            "popularity": items.popularity,
            "is_new": items.is_new,
            "release_timestamp": items.release_s + cfg.start_timestamp,
        },
        schema_overrides={"entity": pl.String, "synonym_word": pl.String},
    ).sort("item_id")
    synonyms = pl.DataFrame(
        {
            "cluster": np.arange(k, dtype=np.int64),
            "word_a": text.word_a,
            "word_b": text.word_b,
            "fresh_word": text.fresh,
            "topic_words_a": [w[:half] for w in text.topic],
            "topic_words_b": [w[t - half :] for w in text.topic],
        },
        schema_overrides={
            "topic_words_a": pl.List(pl.String),
            "topic_words_b": pl.List(pl.String),
        },
    )
    n = cfg.n_users
    user_truth = pl.DataFrame(
        {
            "user_id": np.arange(1, n + 1, dtype=np.int64),
            "top_cluster": users.interest.argmax(axis=1).astype(np.int64),
            "interest": pl.Series(users.interest).cast(pl.List(pl.Float64)),
            "target_interest": pl.Series(users.target_interest).cast(pl.List(pl.Float64)),
            "price_sensitivity": users.price_sensitivity,
            "preferred_style": [f"s{s}" for s in users.preferred_style.tolist()],
            "target_share": users.target_share,
            "late_adopter": users.late_adopter,
            "n_events": users.n_events,
        },
        schema_overrides={"preferred_style": pl.String},
    )
    return {"item_truth": item_truth, "synonyms": synonyms, "user_truth": user_truth}


def _queries_frame(cfg: SyntheticConfig, items: _Items, text: _Text) -> pl.DataFrame:
    relevant = items.side == 0  # carries word_a; query is the cluster's word_b
    return pl.DataFrame(
        {
            "query": np.asarray(text.word_b)[items.cluster[relevant]],
            "item_id": items.item_id[relevant],
        },
        schema_overrides={"query": pl.String},
    ).sort("query", "item_id")


def _info(cfg: SyntheticConfig, items: _Items, text: _Text) -> dict[str, Any]:
    return {
        "config": asdict(cfg),
        "entities": {"source": SOURCE_ENTITY, "target": TARGET_ENTITY},
        "genders": list(GENDERS),
        "age_groups": list(AGE_GROUPS),
        "age_group_shares": list(AGE_GROUP_SHARES),
        "boosted_clusters": boosted_clusters(cfg.n_clusters),
        "categories": [category_name(c, cfg.n_clusters) for c in range(cfg.n_clusters)],
        "genre_of_cluster": text.genre_of_cluster,
        "styles": [f"s{s}" for s in range(cfg.n_styles)],
        "price_log_mean": items.price_log_mean,
        "price_log_std": items.price_log_std,
        "click_model": (
            "P(click) = sigmoid(interest_weight * interest(u, c) + affinity_weight * affinity"
            " + click_bias); affinity = -price_sensitivity[u] * (ln price - price_log_mean)"
            " / price_log_std for products, 1 if style == preferred_style[u] else"
            " -1 / (n_styles - 1) for posts"
        ),
        "day_seconds": DAY_S,
    }


def generate(config: SyntheticConfig) -> CanonicalTables:
    """Generate the synthetic world described in the module docstring (name ``"synthetic"``)."""
    rngs = _rngs(config.seed)
    items = _make_items(config, rngs["items"])
    users = _make_users(
        config, rngs["users"], rngs["target_interest"], rngs["target_share"], rngs["style_link"]
    )
    events = _simulate_events(config, items, users, rngs)
    interactions = _interactions_frame(config, items, events)
    del events
    text = _make_text(config, items, rngs["text"])
    return CanonicalTables(
        name="synthetic",
        interactions=interactions,
        items=_items_frame(config, items, text),
        users=_users_frame(users),
        queries=_queries_frame(config, items, text),
        extras=_truth_frames(config, items, users, text),
        info=_info(config, items, text),
    )


def generate_interactions(
    n_events: int, seed: int = 0, n_users: int | None = None, n_items: int | None = None
) -> pl.DataFrame:
    """Only the interactions of ``generate(benchmark_config(...))``: the fast path for
    benchmarks (no text, no truth tables)."""
    cfg = benchmark_config(n_events, seed=seed, n_users=n_users, n_items=n_items)
    rngs = _rngs(cfg.seed)
    items = _make_items(cfg, rngs["items"])
    users = _make_users(
        cfg, rngs["users"], rngs["target_interest"], rngs["target_share"], rngs["style_link"]
    )
    return _interactions_frame(cfg, items, _simulate_events(cfg, items, users, rngs))
