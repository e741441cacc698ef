"""Lexical matching over item text: Okapi BM25 and exact title hits.

The ZSL vocabulary drops words found in fewer than ``min_item_count`` items, so a title's
own rare words ("godfather", "shawshank") never reach the vectors. This index keeps every
term of every item's text (title with its year, text-part tags, genres; unigrams and
in-field bigrams from ``recflow.text``) and scores a query by BM25 (Robertson et al.)::

    bm25(q, i) = Σ_{t∈q} idf_t · tf_it (k1 + 1) / (tf_it + k1 (1 − b + b |i| / avg|i|))
    idf_t     = ln(1 + (N − df_t + 0.5) / (df_t + 0.5))

A *title hit* is an item whose title (with its year) contains every query word and whose
content words (not the year, not "the", "of", ...) the query covers: all of them, or at
least half with two or more matched ("godfather" → The Godfather, not The Godfather: Part
II; "toy story" → Toy Story and Toy Story 2; one word never names half a title, so "dark"
does not hit Dark City). Search ranks title hits first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recflow.store import atomic_path
from recflow.text import TextConfig, Vocabulary, build_vocabulary, field_terms, word_terms
from recflow.zsl.sparse import CsrMatrix

TITLE_COVERAGE = 0.5
MIN_PARTIAL_WORDS = 2
MINOR_WORDS = frozenset(
    {"a", "an", "the", "of", "and", "in", "on", "to", "for", "at", "by", "with", "from", "or"}
)
_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _binary(rows: list[int], cols: list[int], shape: tuple[int, int]) -> CsrMatrix:
    r, c = np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
    return CsrMatrix.from_coo(r, c, np.ones(len(r)), shape)


@dataclass(frozen=True)
class Bm25Config:
    """k1: term-frequency saturation · b: length normalization (the usual 1.2 / 0.75)."""

    k1: float = 1.2
    b: float = 0.75


def title_field(title: str | None, year: int | None) -> str | None:
    """ "Toy Story" + 1995 → "Toy Story (1995)" (the published MovieLens form)."""
    if not title:
        return None
    return f"{title} ({year})" if year is not None else title


@dataclass
class LexicalMatch:
    """One query against the index: BM25 per item and the query's terms it knows."""

    scores: np.ndarray  # (n_items,) BM25, 0 where no term matches
    known: list[int]  # lexical-vocabulary indices of the query's terms (unique, in order)
    title_hit: np.ndarray  # (n_items,) bool
    title_coverage: np.ndarray  # (n_items,) share of each item's title words in the query


class LexicalIndex:
    """BM25 weights, binary title words and the title's minor words (its year and
    MINOR_WORDS), each (n_items, V), on one vocabulary. Plain numpy arrays
    (``CsrMatrix``): a search loads and queries them without scipy, whose import alone
    took a quarter of a CLI query's time."""

    def __init__(
        self,
        vocab: Vocabulary,
        weights: CsrMatrix,
        title_words: CsrMatrix,
        minor_words: CsrMatrix,
        config: Bm25Config = Bm25Config(),
    ) -> None:
        n = weights.shape[0]
        shapes = {weights.shape, title_words.shape, minor_words.shape}
        if len(shapes) != 1 or weights.shape[1] != len(vocab):
            raise ValueError("weights, title words and vocabulary disagree in shape")
        self.vocab = vocab
        self.weights = weights
        self.title_words = title_words
        self.minor_words = minor_words
        # postings (term → items): a query reads only its own terms' entries
        self._postings = [m.transpose_with_order()[0] for m in (weights, title_words, minor_words)]
        # content words per title: "The Godfather (1972)" has one, "godfather"
        self.title_length = title_words.row_nnz - minor_words.row_nnz
        self.config = config
        self.n_items = n

    @classmethod
    def build(
        cls,
        fields: list[list[str]],
        titles: list[str | None],
        config: Bm25Config = Bm25Config(),
    ) -> LexicalIndex:
        """Index per item: its text ``fields`` (title first) and its title with the year."""
        if len(fields) != len(titles):
            raise ValueError(f"{len(fields)} items with fields but {len(titles)} titles")
        n = len(fields)
        vocab, table = build_vocabulary(np.arange(n), fields, TextConfig(1, 1, True))
        rows = table.get_column("item_id").to_numpy()
        cols = table.get_column("term").to_numpy().astype(np.int64)
        tf = table.get_column("count").to_numpy().astype(np.float64)
        length = np.bincount(rows, weights=tf, minlength=n)
        avg = length[length > 0].mean() if (length > 0).any() else 1.0
        df = np.bincount(cols, minlength=len(vocab)).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        k1, b = config.k1, config.b
        w = idf[cols] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length[rows] / avg))
        weights = CsrMatrix.from_coo(rows, cols, w, (n, len(vocab)))
        t_rows, t_cols, y_rows, y_cols = [], [], [], []
        for i, title in enumerate(titles):
            year = _YEAR.search(title or "")
            for term in set(word_terms(title)):
                j = vocab.index.get(term)
                if j is not None:
                    t_rows.append(i)
                    t_cols.append(j)
                    if term in MINOR_WORDS or (year is not None and term == year.group(1)):
                        y_rows.append(i)
                        y_cols.append(j)
        return cls(
            vocab,
            weights,
            _binary(t_rows, t_cols, (n, len(vocab))),
            _binary(y_rows, y_cols, (n, len(vocab))),
            config,
        )

    def match(self, query: str) -> LexicalMatch:
        """BM25 of every item for ``query`` and its title hits."""
        known = list(
            dict.fromkeys(
                self.vocab.index[t] for t in field_terms(query, True) if t in self.vocab.index
            )
        )
        bm25, title_words, minor_words = self._postings
        scores = bm25.sum_rows(known)
        words = list(dict.fromkeys(word_terms(query)))
        word_ids = [self.vocab.index.get(w) for w in words]
        if words and all(j is not None for j in word_ids):
            # items whose title holds every query word: Σ title_words[:, words] == |words|
            found = title_words.sum_rows(word_ids)  # distinct words, so distinct ids
            content = found - minor_words.sum_rows(word_ids)
            contains = found >= len(word_ids)
            # a title of minor words only ("The") is covered when it is contained
            coverage = np.where(
                self.title_length > 0, content / np.maximum(self.title_length, 1), 1.0
            )
            coverage = np.where(contains, np.minimum(coverage, 1.0), 0.0)
            partial = (coverage >= TITLE_COVERAGE) & (content >= MIN_PARTIAL_WORDS)
            hit = contains & ((coverage >= 1.0) | partial)
        else:
            coverage = np.zeros(self.n_items)
            hit = np.zeros(self.n_items, dtype=bool)
        return LexicalMatch(scores, known, hit, coverage)

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 per item; None when no query term is in the index (``QueryScorer``)."""
        m = self.match(query)
        return m.scores if m.known else None

    def matched_terms(self, query: str, item: int) -> list[str]:
        """The query's terms found in item ``item``'s text (for ``--explain``)."""
        m = self.match(query)
        present = set(self.weights.row(item).tolist())
        return [self.vocab.terms[t] for t in m.known if t in present]

    def save(self, folder: Path) -> None:
        """lexical_vocab.parquet and lexical.npz (plain arrays, loaded without pickle)."""
        self.vocab.to_frame().write_parquet(folder / "lexical_vocab.parquet")
        w, t = self.weights, self.title_words
        with atomic_path(folder / "lexical.npz") as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                shape=np.array(w.shape, dtype=np.int64),
                w_indptr=w.indptr,
                w_indices=w.indices,
                w_data=w.data,
                t_indptr=t.indptr,
                t_indices=t.indices,
                y_indptr=self.minor_words.indptr,
                y_indices=self.minor_words.indices,
                k1_b=np.array([self.config.k1, self.config.b]),
            )

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        vocab = Vocabulary.from_frame(pl.read_parquet(folder / "lexical_vocab.parquet", glob=False))
        with np.load(folder / "lexical.npz", allow_pickle=False) as z:
            shape = tuple(int(s) for s in z["shape"])
            weights = CsrMatrix(z["w_indptr"], z["w_indices"], z["w_data"], shape)
            t_ind = z["t_indices"]
            title = CsrMatrix(z["t_indptr"], t_ind, np.ones(len(t_ind)), shape)
            y_ind = z["y_indices"]
            year = CsrMatrix(z["y_indptr"], y_ind, np.ones(len(y_ind)), shape)
            k1, b = (float(x) for x in z["k1_b"])
        return cls(vocab, weights, title, year, Bm25Config(k1, b))
