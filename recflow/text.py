"""Tokenizer and vocabulary, used for item text and for queries alike.

Text becomes *terms*: lower-cased word tokens (letters and digits; apostrophes are dropped
so "schindler's" is one token), each folded to a common form by ``fold`` (a small suffix
stripper: "comedies" and "comedy" → "comedi", "inspiring" and "inspirational" → "inspir"),
and, optionally, the bigrams of adjacent terms inside one field ("dark comedi"). Bigrams never span two fields, so a title's last word and the first
genre do not make a bigram. A vocabulary keeps the terms that occur in at least
``min_item_count`` items; items with fewer than ``min_terms_per_item`` known terms get no
text row. Queries go through the very same ``text_terms`` so that a query term and an item
term are equal exactly when a user would expect them to be.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recflow.data.validate import DataValidationError

_TOKEN = re.compile(r"[^\W_]+")
_APOSTROPHES = re.compile(r"['\u2019`]")
NO_GENRES = "(no genres listed)"


def tokenize(text: str | None) -> list[str]:
    """Lower-cased word tokens of ``text``; ``None`` or blank text has none."""
    if not text:
        return []
    return _TOKEN.findall(_APOSTROPHES.sub("", text.lower()))


_VOWELS = frozenset("aeiouy")
_PLURALS = (("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("us", "us"), ("is", "is"), ("s", ""))
# (suffix, the shortest stem it may leave): longer suffixes first, at most one is stripped
_SUFFIXES = (
    ("ational", 4), ("ically", 4), ("ation", 4), ("ical", 4), ("ness", 4), ("ship", 4),
    ("like", 4), ("ment", 4), ("ence", 5), ("ful", 4), ("ous", 4), ("ing", 4), ("ion", 4),
    ("ism", 4), ("ent", 5), ("ed", 4), ("ic", 5), ("ly", 5),
)  # fmt: skip


def fold(word: str) -> str:
    """The term a lower-cased word counts as: plural, inflection and a few derivational
    suffixes stripped, a final "y" → "i" and a final "e" dropped, so that the forms a
    searcher types meet the forms item text uses ("lawyers" → "lawyer", "humorous" →
    "humor", "dreamlike" → "dream", "movies"/"movie" → "movi"). Words of up to three
    letters and words with digits stay as they are; a stem keeps a vowel and at least the
    length its suffix asks (so "family" stays "famili", not "fami"). Written for this
    project's English item text, not a full Porter stemmer."""
    if len(word) <= 3 or not word.isalpha():
        return word
    for suffix, repl in _PLURALS:
        if word.endswith(suffix):
            if len(word) - len(suffix) + len(repl) >= 3:
                word = word[: len(word) - len(suffix)] + repl
            break
    for suffix, shortest in _SUFFIXES:
        stem = word[: len(word) - len(suffix)]
        if word.endswith(suffix) and len(stem) >= shortest and _VOWELS & set(stem):
            word = stem
            break
    if len(word) >= 5 and word.endswith("e"):
        word = word[:-1]
    elif len(word) >= 4 and word.endswith("y") and word[-2] not in _VOWELS:
        word = word[:-1] + "i"
    return word


def word_terms(text: str | None) -> list[str]:
    """The folded term of each word of ``text``, in order (``fold`` of ``tokenize``)."""
    return [fold(w) for w in tokenize(text)]


def field_terms(text: str | None, bigrams: bool = True) -> list[str]:
    """Unigram terms of one field, then its bigrams ("a b") when asked."""
    tokens = word_terms(text)
    if not bigrams:
        return tokens
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def text_terms(fields: Iterable[str | None], bigrams: bool = True) -> list[str]:
    """Terms of several fields (bigrams stay inside their field), in order, with repeats."""
    out: list[str] = []
    for f in fields:
        out.extend(field_terms(f, bigrams))
    return out


def genre_fields(genres: str | None) -> list[str]:
    """MovieLens-style ``"A|B"`` genres as separate fields; the no-genre marker is none."""
    if not genres:
        return []
    return [g for g in genres.split("|") if g and g.strip().lower() != NO_GENRES]


@dataclass(frozen=True)
class TextConfig:
    """Which terms become vocabulary.

    min_item_count: a term must occur in at least this many items.
    min_terms_per_item: an item needs at least this many known terms to get a text row.
    bigrams: add adjacent-token bigrams inside each field.
    """

    min_item_count: int = 2
    min_terms_per_item: int = 1
    bigrams: bool = True


@dataclass
class Vocabulary:
    """Terms with dense indices 0..n-1 and how many items each occurs in."""

    terms: list[str]
    item_counts: np.ndarray  # (n_terms,) int64
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.terms)}
        if len(self.index) != len(self.terms):
            raise ValueError("vocabulary terms must be unique")

    def __len__(self) -> int:
        return len(self.terms)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "index": pl.Series(np.arange(len(self.terms)), dtype=pl.Int32),
                "term": pl.Series(self.terms, dtype=pl.String),
                "item_count": pl.Series(self.item_counts, dtype=pl.Int64),
            }
        )

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> Vocabulary:
        df = df.sort("index")
        idx = df.get_column("index").to_numpy()
        if not np.array_equal(idx, np.arange(df.height)):
            raise DataValidationError("vocabulary", "index", "indices are not 0..n-1", df.height)
        return cls(df.get_column("term").to_list(), df.get_column("item_count").to_numpy())


@dataclass(frozen=True)
class EncodedQuery:
    """A query as vocabulary indices, with the terms the vocabulary does not know."""

    text: str
    known: list[int]
    unknown: list[str]

    @property
    def has_known(self) -> bool:
        return bool(self.known)


def encode_query(query: str, vocab: Vocabulary, bigrams: bool = True) -> EncodedQuery:
    """Query text → known term indices (repeats kept) and unknown words.

    Only unknown *words* are reported, as the user typed them (lower-cased, not folded): an
    unknown bigram of two known words is normal and not something a user needs to hear
    about.
    """
    known: list[int] = []
    unknown: list[str] = []
    words = tokenize(query)
    for pos, term in enumerate(field_terms(query, bigrams)):
        i = vocab.index.get(term)
        if i is not None:
            known.append(i)
        elif pos < len(words) and words[pos] not in unknown:
            unknown.append(words[pos])
    return EncodedQuery(query, known, unknown)


def item_fields(items: pl.DataFrame, text_columns: Sequence[str] = ("title",)) -> list[list[str]]:
    """Per item row: its free-text columns as fields, then each genre as its own field."""
    out: list[list[str]] = []
    cols = [items.get_column(c).to_list() for c in text_columns]
    genres = items.get_column("genres").to_list() if "genres" in items.columns else None
    for r in range(items.height):
        fields = [c[r] for c in cols if c[r]]
        if genres is not None:
            fields.extend(genre_fields(genres[r]))
        out.append(fields)
    return out


def build_vocabulary(
    item_ids: Sequence[int] | np.ndarray,
    item_texts: Sequence[Sequence[str | None]],
    config: TextConfig = TextConfig(),
) -> tuple[Vocabulary, pl.DataFrame]:
    """Vocabulary and item–term table from each item's text fields.

    Returns the vocabulary (terms sorted by descending item count, then alphabetically, so
    indices are deterministic) and a table (item_id Int64, term Int32, count Int32) of the
    items that keep at least ``min_terms_per_item`` known terms.
    """
    if len(item_ids) != len(item_texts):
        raise ValueError(f"{len(item_ids)} item ids but {len(item_texts)} texts")
    per_item = [Counter(text_terms(t, config.bigrams)) for t in item_texts]
    df_count: Counter[str] = Counter()
    for c in per_item:
        df_count.update(c.keys())
    kept = [t for t, n in df_count.items() if n >= config.min_item_count]
    kept.sort(key=lambda t: (-df_count[t], t))
    vocab = Vocabulary(kept, np.array([df_count[t] for t in kept], dtype=np.int64))
    rows_item: list[int] = []
    rows_term: list[int] = []
    rows_count: list[int] = []
    for item_id, c in zip(item_ids, per_item, strict=True):
        known = [(vocab.index[t], n) for t, n in c.items() if t in vocab.index]
        if sum(n for _, n in known) < config.min_terms_per_item:
            continue
        for term, n in sorted(known):
            rows_item.append(int(item_id))
            rows_term.append(term)
            rows_count.append(n)
    table = pl.DataFrame(
        {
            "item_id": pl.Series(rows_item, dtype=pl.Int64),
            "term": pl.Series(rows_term, dtype=pl.Int32),
            "count": pl.Series(rows_count, dtype=pl.Int32),
        }
    )
    return vocab, table
