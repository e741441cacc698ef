"""Tokenizer and vocabulary on hand-checked cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recflow.text import (
    TextConfig,
    Vocabulary,
    build_vocabulary,
    encode_query,
    field_terms,
    fold,
    genre_fields,
    item_fields,
    text_terms,
    tokenize,
    word_terms,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Dark Comedy", ["dark", "comedy"]),
        ("Schindler's List", ["schindlers", "list"]),
        ("Wall-E", ["wall", "e"]),
        ("  2001: A Space Odyssey ", ["2001", "a", "space", "odyssey"]),
        ("Amélie", ["amélie"]),
        ("snake_case", ["snake", "case"]),
        ("", []),
        (None, []),
        ("!!!", []),
    ],
)
def test_tokenize(text, tokens):
    assert tokenize(text) == tokens


def test_bigrams_stay_inside_a_field():
    assert field_terms("dark comedy film") == [
        "dark", "comedi", "film", "dark comedi", "comedi film",
    ]  # fmt: skip
    assert field_terms("dark comedy", bigrams=False) == ["dark", "comedi"]
    # "film" (end of field 1) and "noir" (start of field 2) must not form a bigram
    assert "film noir" not in text_terms(["dark film", "noir"])


def test_genre_fields():
    assert genre_fields("Comedy|Film-Noir") == ["Comedy", "Film-Noir"]
    assert genre_fields("(no genres listed)") == []
    assert genre_fields(None) == []


def test_vocabulary_thresholds_and_order():
    ids = [10, 20, 30]
    texts = [["red apple"], ["red car"], ["blue"]]
    vocab, table = build_vocabulary(ids, texts, TextConfig(min_item_count=2))
    assert vocab.terms == ["red"]  # the only term in ≥ 2 items
    assert table.to_dicts() == [
        {"item_id": 10, "term": 0, "count": 1},
        {"item_id": 20, "term": 0, "count": 1},
    ]  # item 30 has no known term and gets no row
    vocab, _ = build_vocabulary(ids, texts, TextConfig(min_item_count=1, bigrams=False))
    # by descending item count, then alphabetical
    assert vocab.terms == ["red", "appl", "blue", "car"]  # "apple" folded (text.fold)
    assert vocab.item_counts.tolist() == [2, 1, 1, 1]


def test_min_terms_per_item_and_counts():
    vocab, table = build_vocabulary(
        [1, 2],
        [["a a b"], ["a"]],
        TextConfig(min_item_count=1, min_terms_per_item=2, bigrams=False),
    )
    assert vocab.terms == ["a", "b"]
    assert table.to_dicts() == [
        {"item_id": 1, "term": 0, "count": 2},
        {"item_id": 1, "term": 1, "count": 1},
    ]


def test_encode_query_reports_unknown_unigrams_only():
    vocab = Vocabulary(["dark", "comedi", "dark comedi"], np.array([3, 2, 1]))
    enc = encode_query("Dark comedy about zombies", vocab)
    assert enc.known == [0, 1, 2]
    assert enc.unknown == ["about", "zombies"]  # unknown bigrams are not reported
    empty = encode_query("zzz zzz", vocab)
    assert not empty.has_known and empty.unknown == ["zzz"]


def test_item_fields_and_vocabulary_roundtrip():
    items = pl.DataFrame({"title": ["Heat", None], "genres": ["Action|Crime", None]})
    assert item_fields(items) == [["Heat", "Action", "Crime"], []]
    vocab = Vocabulary(["b", "a"], np.array([2, 1]))
    back = Vocabulary.from_frame(vocab.to_frame().sample(fraction=1.0, shuffle=True, seed=1))
    assert back.terms == ["b", "a"] and back.index == {"b": 0, "a": 1}
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"], np.array([1, 1]))


@pytest.mark.parametrize(
    ("forms", "term"),
    [
        (["comedy", "comedies"], "comedi"),
        (["movie", "movies"], "movi"),
        (["lawyer", "lawyers"], "lawyer"),
        (["inspiring", "inspired", "inspiration", "inspirational"], "inspir"),
        (["depressing", "depression", "depressed"], "depress"),
        (["humor", "humorous"], "humor"),
        (["dream", "dreams", "dreamlike"], "dream"),
        (["friend", "friends", "friendship"], "friend"),
        (["intelligent", "intelligence"], "intellig"),
        (["mystery", "mysterious"], "mysteri"),
        (["family", "families"], "famili"),
        (["darkness", "dark"], "dark"),
        (["schindlers", "schindler"], "schindler"),
    ],
)
def test_fold_meets_the_forms_of_a_word(forms, term):
    assert {fold(w) for w in forms} == {term}


@pytest.mark.parametrize(
    "word",
    # short words, words with digits, and stems that would get too short or lose their vowel
    ["the", "war", "king", "1970s", "2001", "famous", "spring", "animal", "action", "us"],
)
def test_fold_leaves_short_and_protected_words(word):
    assert fold(word) == word


def test_fold_keeps_unrelated_words_apart():
    # "animation" and "animal" must not meet, nor "story" and "star"
    assert fold("animation") != fold("animal")
    assert fold("stories") != fold("stars")


def test_queries_and_item_text_meet_through_fold():
    vocab, _ = build_vocabulary(
        [1, 2], [["Comedies of Errors"], ["Romantic comedy"]], TextConfig(min_item_count=1)
    )
    enc = encode_query("comedy", vocab)
    assert [vocab.terms[i] for i in enc.known] == ["comedi"] and enc.unknown == []
    # unknown words are reported as typed, not folded
    assert encode_query("Heartbreaking", vocab).unknown == ["heartbreaking"]
    assert word_terms("Toy Stories") == ["toy", "stori"]
