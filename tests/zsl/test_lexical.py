"""BM25 against the formula computed by hand, title hits, and the saved index."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recflow.zsl.lexical import Bm25Config, LexicalIndex, title_field

TITLES = [
    title_field("The Godfather", 1972),
    title_field("The Godfather: Part II", 1974),
    title_field("Toy Story", 1995),
    title_field("Toy Story 2", 1999),
    title_field("Dark City", 1998),
]
GENRES = [["Crime", "Drama"], ["Crime", "Drama"], ["Animation"], ["Animation"], ["Sci-Fi"]]
FIELDS = [[t, *g] for t, g in zip(TITLES, GENRES, strict=True)]


def brute_bm25(fields, query_terms, k1=1.2, b=0.75):
    """The formula term by term on lists of terms (unigrams + in-field bigrams)."""
    from recflow.text import text_terms

    docs = [text_terms(f) for f in fields]
    n, avg = len(docs), sum(len(d) for d in docs) / len(docs)
    out = []
    for d in docs:
        s = 0.0
        for t in query_terms:
            df = sum(t in x for x in docs)
            tf = d.count(t)
            if df == 0 or tf == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            s += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avg))
        out.append(s)
    return np.array(out)


def test_bm25_matches_the_formula():
    index = LexicalIndex.build(FIELDS, TITLES)
    for query, terms in [
        ("godfather", ["godfather"]),
        ("toy story", ["toy", "stori", "toy stori"]),  # terms are folded words (text.fold)
        ("crime drama", ["crim", "drama"]),  # genres are separate fields: no bigram
    ]:
        np.testing.assert_allclose(index.match(query).scores, brute_bm25(FIELDS, terms))
    k = LexicalIndex.build(FIELDS, TITLES, Bm25Config(k1=2.0, b=0.0))
    np.testing.assert_allclose(k.match("the").scores, brute_bm25(FIELDS, ["the"], k1=2.0, b=0.0))


def test_title_hits_need_every_word_and_the_title_covered():
    index = LexicalIndex.build(FIELDS, TITLES)
    # content words: "The Godfather (1972)" has one (godfather), Part II three
    m = index.match("Godfather")
    assert m.title_hit.tolist() == [True, False, False, False, False]
    assert m.title_coverage[0] == pytest.approx(1.0)
    assert m.title_coverage[1] == pytest.approx(1 / 3)
    # one word is never "half a title": "dark" does not name Dark City
    assert not index.match("dark").title_hit.any()
    assert index.match("dark city").title_hit.tolist() == [False] * 4 + [True]
    m = index.match("toy story 1995")
    assert m.title_hit.tolist() == [False, False, True, False, False]
    assert m.title_coverage[2] == pytest.approx(1.0)
    m = index.match("toy story")  # both films (2 of Toy Story 2's 3 words), Toy Story fuller
    assert m.title_hit.tolist() == [False, False, True, True, False]
    assert m.title_coverage[2] == 1.0 and m.title_coverage[3] == pytest.approx(2 / 3)
    assert not index.match("godfather zombies").title_hit.any()  # an unknown word
    assert index.match("zombies").known == [] and index.scores("zombies") is None


def test_matched_terms_and_roundtrip(tmp_path):
    index = LexicalIndex.build(FIELDS, TITLES)
    assert index.matched_terms("dark crime", 4) == ["dark"]
    assert index.matched_terms("dark crime", 0) == ["crim"]
    index.save(tmp_path)
    back = LexicalIndex.load(tmp_path)
    assert back.vocab.terms == index.vocab.terms
    for q in ("toy story", "godfather", "crime"):
        a, b = index.match(q), back.match(q)
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.title_hit, b.title_hit)
        np.testing.assert_array_equal(a.title_coverage, b.title_coverage)
    with pytest.raises(ValueError, match="titles"):
        LexicalIndex.build(FIELDS, TITLES[:2])
