"""The synthetic generator: determinism, schema, and every planted property, read back
from the generated data (never from the generator's internals)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recflow.data.dataset import CanonicalTables, conform_tables
from recflow.data.synthetic import (
    AGE_GROUPS,
    DAY_S,
    GENDERS,
    SOURCE_ENTITY,
    TARGET_ENTITY,
    SyntheticConfig,
    _AliasTable,
    benchmark_config,
    boosted_clusters,
    category_name,
    generate,
    generate_interactions,
)

SMALL = SyntheticConfig(n_users=400, n_items=600, n_events=40_000, n_clusters=20, seed=3)


@pytest.fixture(scope="module")
def world() -> CanonicalTables:
    return generate(SMALL)


@pytest.fixture(scope="module")
def events(world: CanonicalTables) -> pl.DataFrame:
    """Interactions joined with each item's planted cluster and side, in user/time order."""
    truth = world.extras["item_truth"].select("item_id", "cluster", "side", "release_timestamp")
    return world.interactions.join(truth, on="item_id").sort("user_id", "timestamp")


def _frames(t: CanonicalTables) -> dict[str, pl.DataFrame]:
    return {
        "interactions": t.interactions,
        "items": t.items,
        "users": t.users,
        "queries": t.queries,
        **t.extras,
    }


def _title_words(world: CanonicalTables) -> dict[int, set[str]]:
    items = world.items
    return {
        i: set(title.split())
        for i, title in zip(items["item_id"].to_list(), items["title"].to_list(), strict=True)
    }


# --- determinism and schema -------------------------------------------------------------


def test_same_seed_same_world_and_other_seed_differs(world: CanonicalTables) -> None:
    again = generate(SMALL)
    for name, df in _frames(world).items():
        assert df.equals(_frames(again)[name]), name
    assert world.info == again.info
    other = generate(SyntheticConfig(**{**SMALL.__dict__, "seed": 4}))
    assert not world.interactions.equals(other.interactions)
    assert not world.items["title"].equals(other.items["title"])


def test_conforms_to_canonical_schema(world: CanonicalTables) -> None:
    out = conform_tables(world)
    assert out.name == "synthetic"
    assert out.interactions.height == SMALL.n_events
    assert out.items.height == SMALL.n_items
    assert out.users.height == SMALL.n_users
    inter = world.interactions
    assert set(inter["event"].unique()) == {"impression"}
    assert set(inter["label"].unique()) == {0.0, 1.0}
    assert set(inter["entity"].unique()) == {SOURCE_ENTITY, TARGET_ENTITY}
    assert set(world.users["gender"].unique()) == set(GENDERS)
    assert set(world.users["age"].unique()) <= set(AGE_GROUPS)


def test_entity_specific_features_are_null_for_the_other_entity(world: CanonicalTables) -> None:
    items = world.items
    post = items["entity"] == TARGET_ENTITY
    for col in ("price", "brand"):
        assert (items[col].is_null() == post).all(), col
    for col in ("style", "length_words"):
        assert (items[col].is_null() == ~post).all(), col
    assert items["category"].null_count() == 0
    assert items.schema["price"] == pl.Float64
    assert items.schema["length_words"] == pl.Int64
    # category is the planted cluster; interactions carry the item's entity
    truth = items.join(world.extras["item_truth"], on="item_id")
    expected = [category_name(c, SMALL.n_clusters) for c in truth["cluster"].to_list()]
    assert truth["category"].to_list() == expected
    assert (truth["entity"] == truth["entity_right"]).all()
    joined = world.interactions.join(items.select("item_id", "entity"), on="item_id")
    assert (joined["entity"] == joined["entity_right"]).all()
    # every cluster has both entities
    per_cluster = truth.group_by("cluster").agg(pl.col("entity").n_unique())
    assert per_cluster.height == SMALL.n_clusters
    assert (per_cluster["entity"] == 2).all()


def test_timestamps_strictly_increase_per_user_within_the_span(events: pl.DataFrame) -> None:
    ts = events["timestamp"].to_numpy()
    same_user = np.diff(events["user_id"].to_numpy()) == 0
    assert (np.diff(ts)[same_user] > 0).all()
    day = (ts - SMALL.start_timestamp) // DAY_S
    assert day.min() == 0
    assert day.max() <= SMALL.span_days  # a late run may spill into the next day
    per_day = np.bincount(day)[: SMALL.span_days]
    assert per_day.min() > 0.5 * SMALL.n_events / SMALL.span_days  # every day has events
    assert events.group_by("user_id").len()["len"].min() >= SMALL.min_events_per_user


def test_new_items_never_shown_before_release_and_carry_a_fresh_word(
    world: CanonicalTables, events: pl.DataFrame
) -> None:
    assert (events["timestamp"] >= events["release_timestamp"]).all()
    truth = world.extras["item_truth"]
    new_ids = set(truth.filter("is_new")["item_id"].to_list())
    assert new_ids  # some new items exist at this size
    shown = set(events["item_id"].to_list())
    assert new_ids & shown  # and some of them are shown after release
    words = _title_words(world)
    fresh = dict(
        zip(
            *world.extras["synonyms"].select("cluster", "fresh_word").to_dict().values(),
            strict=True,
        )
    )
    for item_id, cluster, is_new in truth.select("item_id", "cluster", "is_new").iter_rows():
        assert (fresh[cluster] in words[item_id]) == is_new


# --- planted synonyms ---------------------------------------------------------------------


def test_synonym_pairs_never_share_an_item(world: CanonicalTables) -> None:
    words = _title_words(world)
    truth = world.extras["item_truth"]
    syn = world.extras["synonyms"]
    for cluster, word_a, word_b in syn.select("cluster", "word_a", "word_b").iter_rows():
        members = truth.filter(pl.col("cluster") == cluster)
        has_a = [word_a in words[i] for i in members["item_id"].to_list()]
        has_b = [word_b in words[i] for i in members["item_id"].to_list()]
        assert all(a != b for a, b in zip(has_a, has_b, strict=True))  # exactly one of the pair
        assert 0.3 < np.mean(has_a) < 0.7  # about half each
        assert has_a == (members["synonym_word"] == word_a).to_list()
        outsiders = truth.filter(pl.col("cluster") != cluster)["item_id"].to_list()
        assert not any({word_a, word_b} & words[i] for i in outsiders)


def test_text_links_the_two_sides_only_through_shared_words(world: CanonicalTables) -> None:
    """With split topic words, an item's cluster-specific words are its side's topic words
    and its synonym word only; what the two sides share is genre, noise and fresh words."""
    words = _title_words(world)
    syn = world.extras["synonyms"]
    specific: dict[int, tuple[set[str], set[str]]] = {}
    for row in syn.iter_rows(named=True):
        specific[row["cluster"]] = (
            set(row["topic_words_a"]) | {row["word_a"]},
            set(row["topic_words_b"]) | {row["word_b"]},
        )
        assert not specific[row["cluster"]][0] & specific[row["cluster"]][1]
    all_specific = set().union(*(a | b for a, b in specific.values()))
    truth = world.extras["item_truth"]
    for item_id, cluster, side in truth.select("item_id", "cluster", "side").iter_rows():
        own = specific[cluster][side]
        assert words[item_id] & all_specific <= own
        assert len(words[item_id] & own) == 1 + SMALL.topic_words_per_item
    # everything else comes from the shared pools: genres, fresh words, noise words
    genres = set(world.info["genre_of_cluster"])
    fresh = set(syn["fresh_word"].to_list())
    noise = set().union(*words.values()) - all_specific - genres - fresh
    assert 0.5 * SMALL.noise_words < len(noise) <= SMALL.noise_words


def test_queries_are_synonyms_whose_relevant_items_lack_the_query_word(
    world: CanonicalTables,
) -> None:
    words = _title_words(world)
    truth = world.extras["item_truth"]
    syn = world.extras["synonyms"]
    queries = world.queries
    assert set(queries["query"].unique()) == set(syn["word_b"].to_list())
    for cluster, word_a, word_b in syn.select("cluster", "word_a", "word_b").iter_rows():
        relevant = set(queries.filter(pl.col("query") == word_b)["item_id"].to_list())
        expected = {
            i for i in truth.filter(pl.col("cluster") == cluster)["item_id"] if word_a in words[i]
        }
        assert relevant == expected and relevant
        assert not any(word_b in words[i] for i in relevant)


def test_both_synonym_sides_are_co_consumed(events: pl.DataFrame) -> None:
    clicks = events.filter(pl.col("label") == 1.0)
    user, cluster, side = (clicks[c].to_numpy() for c in ("user_id", "cluster", "side"))
    same = (user[1:] == user[:-1]) & (cluster[1:] == cluster[:-1])
    cross = (side[1:] != side[:-1])[same].mean()
    assert 0.35 < cross < 0.65  # consecutive same-cluster clicks cross sides about half the time


# --- behaviour ----------------------------------------------------------------------------


def test_consecutive_clicks_share_a_cluster_far_above_chance(events: pl.DataFrame) -> None:
    clicks = events.filter(pl.col("label") == 1.0)
    user, cluster = clicks["user_id"].to_numpy(), clicks["cluster"].to_numpy()
    pair = user[1:] == user[:-1]
    observed = (cluster[1:] == cluster[:-1])[pair].mean()
    # chance: two distinct clicks of the same user, drawn at random from all of that user's
    # clicks, share a cluster with probability sum_c n_c (n_c - 1) / (n (n - 1))
    counts = clicks.group_by("user_id", "cluster").len()
    per_user = counts.group_by("user_id").agg(
        same=(pl.col("len") * (pl.col("len") - 1)).sum(), n=pl.col("len").sum()
    )
    per_user = per_user.filter(pl.col("n") > 1)
    # weight each user by its n - 1 consecutive pairs, as in `observed`
    chance = (per_user["same"] / per_user["n"]).sum() / (per_user["n"] - 1).sum()
    assert observed > 1.8 * chance
    assert observed > chance + 0.25


def test_attributes_shift_preferences_and_are_predictable(
    world: CanonicalTables, events: pl.DataFrame
) -> None:
    boosted = boosted_clusters(SMALL.n_clusters)
    clicks = events.filter(pl.col("label") == 1.0).join(world.users, on="user_id")
    # gender: share of clicks in the clusters F boosts, per user
    f_clusters = boosted["gender"]["F"]
    share = clicks.group_by("user_id", "gender").agg(
        f_share=pl.col("cluster").is_in(f_clusters).mean()
    )
    by_gender = dict(share.group_by("gender").agg(pl.col("f_share").mean()).iter_rows())
    assert by_gender["F"] > by_gender["M"] + 0.15
    predicted = np.where(share["f_share"].to_numpy() > 0.5, "F", "M")
    accuracy = (predicted == share["gender"].to_numpy()).mean()
    majority = share["gender"].value_counts()["count"].max() / share.height
    assert accuracy > majority + 0.15
    # age: the group whose boosted clusters hold most of the user's clicks
    ages = [str(a) for a in AGE_GROUPS]
    per_group = clicks.group_by("user_id", "age").agg(
        *(pl.col("cluster").is_in(boosted["age"][a]).sum().alias(a) for a in ages)
    )
    guess = np.asarray(AGE_GROUPS)[per_group.select(ages).to_numpy().argmax(axis=1)]
    accuracy = (guess == per_group["age"].to_numpy()).mean()
    majority = per_group["age"].value_counts()["count"].max() / per_group.height
    assert accuracy > majority + 0.1


def test_click_rate_rises_with_interest(world: CanonicalTables, events: pl.DataFrame) -> None:
    interest = np.stack(world.extras["user_truth"].sort("user_id")["interest"].to_numpy())
    u = events["user_id"].to_numpy() - 1
    level = interest[u, events["cluster"].to_numpy()]
    label = events["label"].to_numpy()
    low, high = np.quantile(level, [1 / 3, 2 / 3])
    assert label[level >= high].mean() > label[level < low].mean() + 0.2
    assert 0.2 < label.mean() < 0.5


def test_price_lowers_clicks_for_price_sensitive_users(
    world: CanonicalTables, events: pl.DataFrame
) -> None:
    products = events.join(world.items.select("item_id", "price"), on="item_id").join(
        world.extras["user_truth"].select("user_id", "price_sensitivity"), on="user_id"
    )
    products = products.filter(pl.col("price").is_not_null())
    price, label = products["price"].to_numpy(), products["label"].to_numpy()
    sens = products["price_sensitivity"].to_numpy()
    cheap, dear = np.quantile(price, [1 / 3, 2 / 3])

    def drop(users: np.ndarray) -> float:
        return label[users & (price < cheap)].mean() - label[users & (price >= dear)].mean()

    sensitive, indifferent = drop(sens > 1.5), drop(sens < 0.5)
    assert sensitive > 0.3
    assert sensitive > indifferent + 0.2


def test_preferred_style_raises_clicks_on_posts(
    world: CanonicalTables, events: pl.DataFrame
) -> None:
    posts = events.join(world.items.select("item_id", "style"), on="item_id").join(
        world.extras["user_truth"].select("user_id", "preferred_style"), on="user_id"
    )
    posts = posts.filter(pl.col("style").is_not_null())
    match = (posts["style"] == posts["preferred_style"]).to_numpy()
    label = posts["label"].to_numpy()
    assert label[match].mean() > label[~match].mean() + 0.1


def test_source_to_target_volume_is_three_to_one(world: CanonicalTables) -> None:
    share = (world.interactions["entity"] == TARGET_ENTITY).mean()
    assert abs(share - SMALL.target_share) < 0.01  # binomial sd here is ~0.002


# --- fast path, sampler, config -----------------------------------------------------------


def test_generate_interactions_equals_generate() -> None:
    fast = generate_interactions(30_000, seed=5)
    full = generate(benchmark_config(30_000, seed=5)).interactions
    assert fast.equals(full)


def test_alias_table_draws_in_proportion_to_weight() -> None:
    group = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    weight = np.array([1.0, 2.0, 3.0, 0.0, 5.0, 1.0, 1.0, 0.0, 2.0])
    table = _AliasTable.build(group, weight)
    rng = np.random.default_rng(0)
    n = 60_000
    queries = np.repeat(np.arange(3), n)
    drawn = table.draw(queries, rng.random(queries.size))
    assert (group[drawn] == queries).all()
    freq = np.bincount(drawn, minlength=group.size) / n
    expected = np.array([1 / 6, 2 / 6, 3 / 6, 0, 1, 1 / 4, 1 / 4, 0, 2 / 4])
    np.testing.assert_allclose(freq, expected, atol=0.01)
    assert freq[3] == 0 and freq[7] == 0  # zero weight is never drawn


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_items": 30}, "n_items"),
        ({"n_events": 100}, "n_events"),
        ({"target_share": 1.0}, "target_share"),
        ({"topic_words_per_item": 5}, "topic_words_per_item"),
    ],
)
def test_bad_config_is_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**{**SMALL.__dict__, **changes})


def _post_click_fit(world: CanonicalTables, column: str) -> float:
    """Click rate on posts in the top minus the bottom tercile of the user_truth ``column``."""
    interest = np.stack(world.extras["user_truth"].sort("user_id")[column].to_numpy())
    truth = world.extras["item_truth"].select("item_id", "cluster")
    posts = world.interactions.filter(pl.col("entity") == TARGET_ENTITY).join(truth, on="item_id")
    level = interest[posts["user_id"].to_numpy() - 1, posts["cluster"].to_numpy()]
    label = posts["label"].to_numpy()
    low, high = np.quantile(level, [1 / 3, 2 / 3])
    return float(label[level >= high].mean() - label[level < low].mean())


def test_target_interest_correlation_decouples_post_interest() -> None:
    cfg = SyntheticConfig(n_users=300, n_items=400, n_events=30_000, n_clusters=10, seed=4)
    same = generate(cfg)
    truth = same.extras["user_truth"]
    # default rho = 1: posts follow the very same interest as products
    np.testing.assert_array_equal(
        np.stack(truth["interest"].to_numpy()), np.stack(truth["target_interest"].to_numpy())
    )
    for rho in (0.0, 0.5):
        world = generate(SyntheticConfig(**{**cfg.__dict__, "target_interest_correlation": rho}))
        t = world.extras["user_truth"]
        shared = np.stack(t["interest"].to_numpy())
        post = np.stack(t["target_interest"].to_numpy())
        # the shared interest and the behaviour on products are those of rho = 1
        np.testing.assert_array_equal(shared, np.stack(truth["interest"].to_numpy()))
        corr = np.corrcoef(shared.ravel(), post.ravel())[0, 1]
        assert abs(corr - rho) < 0.1  # 3,000 cells: the sampling sd is ~0.02
        # clicks on posts follow the post interest, not the products' one, when rho = 0
        if rho == 0.0:
            assert _post_click_fit(world, "target_interest") > 0.2
            assert abs(_post_click_fit(world, "interest")) < 0.05
    with pytest.raises(ValueError, match="target_interest_correlation"):
        SyntheticConfig(target_interest_correlation=1.5)


def test_target_share_concentration_gives_users_their_own_post_share() -> None:
    cfg = SyntheticConfig(n_users=400, n_items=400, n_events=60_000, n_clusters=10, seed=5)
    even = generate(cfg)
    np.testing.assert_array_equal(even.extras["user_truth"]["target_share"].to_numpy(), 0.25)
    skewed = generate(SyntheticConfig(**{**cfg.__dict__, "target_share_concentration": 2.0}))
    truth = skewed.extras["user_truth"]
    share = truth["target_share"].to_numpy()
    assert abs(share.mean() - 0.25) < 0.03  # Beta(0.5, 1.5): mean 0.25, sd 0.22
    assert abs(share.std() - np.sqrt(0.25 * 0.75 / 3)) < 0.03
    # users, items and their interests come from the streams they came from before
    for col in ("interest", "price_sensitivity", "preferred_style", "n_events"):
        assert truth[col].equals(even.extras["user_truth"][col])
    assert skewed.items.equals(even.items)
    # each user's observed post share follows the drawn one; the volume stays ~3:1
    ev = skewed.interactions
    per_user = (
        ev.group_by("user_id")
        .agg((pl.col("entity") == "post").mean().alias("observed"))
        .join(truth.select("user_id", "target_share"), on="user_id")
    )
    assert np.corrcoef(per_user["observed"], per_user["target_share"])[0, 1] > 0.9
    assert abs((ev["entity"] == "post").mean() - 0.25) < 0.04
    with pytest.raises(ValueError, match="target_share_concentration"):
        SyntheticConfig(target_share_concentration=0.0)


def test_late_adopters_see_posts_only_after_their_start() -> None:
    cfg = SyntheticConfig(
        n_users=400, n_items=400, n_events=60_000, n_clusters=10, seed=6, late_adopter_share=0.3
    )
    world = generate(cfg)
    truth = world.extras["user_truth"]
    late = truth.filter(pl.col("late_adopter")).get_column("user_id")
    assert abs(len(late) / cfg.n_users - 0.3) < 0.06
    start = cfg.start_timestamp + cfg.late_adopter_start * cfg.span_days * 86_400
    ev = world.interactions.with_columns(pl.col("user_id").is_in(late.implode()).alias("late"))
    late_posts = ev.filter(pl.col("late") & (pl.col("entity") == "post"))
    assert late_posts.height > 0 and late_posts.get_column("timestamp").min() >= start
    # after the start they read posts at target_share / (1 - start): the volume stays ~3:1
    after = ev.filter(pl.col("late") & (pl.col("timestamp") >= start))
    assert abs((after.get_column("entity") == "post").mean() - 0.25 / 0.3) < 0.05
    assert abs((ev.get_column("entity") == "post").mean() - 0.25) < 0.03
    with pytest.raises(ValueError, match="late_adopter_start"):
        SyntheticConfig(late_adopter_start=1.0)


def test_style_price_link_ties_post_taste_to_price_sensitivity() -> None:
    cfg = SyntheticConfig(n_users=400, n_items=400, n_events=20_000, n_clusters=10, seed=7)
    free = generate(cfg).extras["user_truth"]
    linked = generate(SyntheticConfig(**{**cfg.__dict__, "style_price_link": 1.0}))
    truth = linked.extras["user_truth"]
    sens = truth["price_sensitivity"].to_numpy()
    style = np.array([int(s[1:]) for s in truth["preferred_style"]])
    # every style is one quarter of the users, ordered by price sensitivity
    assert np.bincount(style).tolist() == [100] * 4
    for s in range(3):
        assert sens[style == s].max() < sens[style == s + 1].min()
    for col in ("interest", "price_sensitivity", "n_events", "target_share"):
        assert truth[col].equals(free[col])
    # unlinked, style says nothing about price sensitivity
    free_style = np.array([int(s[1:]) for s in free["preferred_style"]])
    assert abs(np.corrcoef(free_style, sens)[0, 1]) < 0.15
