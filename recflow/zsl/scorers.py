"""Query → one score per item, for the models and the baselines alike.

A scorer returns (n_items,) scores, or ``None`` when it has nothing to go on (a query with
no known term, for the text methods): the caller decides what that means (no results in
an evaluation, a flagged popularity fallback in search). Baselines: TF-IDF keyword match
(scikit-learn, on the same vocabulary), popularity (interaction count), random.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from recflow.text import Vocabulary, encode_query
from recflow.zsl.sparse import CsrMatrix

SCORINGS = ("dot", "cosine")


class QueryScorer(Protocol):
    name: str

    def scores(self, query: str) -> np.ndarray | None: ...


def unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero)."""
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


class VectorScorer:
    """ZSL models: u_q = mean of the query's known w_t; score v_i·u_q or cos(v_i, u_q)."""

    def __init__(
        self,
        name: str,
        item_vectors: np.ndarray,
        word_vectors: np.ndarray,
        vocab: Vocabulary,
        scoring: str = "dot",
        bigrams: bool = True,
    ) -> None:
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        self.name = name
        self.items = unit_rows(item_vectors) if scoring == "cosine" else item_vectors
        self.words = word_vectors
        self.vocab = vocab
        self.scoring = scoring
        self.bigrams = bigrams

    def query_vector(self, query: str) -> np.ndarray | None:
        enc = encode_query(query, self.vocab, self.bigrams)
        if not enc.known:
            return None
        return self.words[enc.known].mean(axis=0)  # u_q = (1/|q|) Σ_t w_t

    def scores(self, query: str) -> np.ndarray | None:
        u = self.query_vector(query)
        if u is None:
            return None
        if self.scoring == "cosine":
            norm = np.linalg.norm(u)
            u = u / norm if norm > 0 else u
        return self.items @ u


class TfidfScorer:
    """Keyword match: cosine between TF-IDF vectors of the item text and of the query."""

    name = "tfidf"

    def __init__(self, item_terms: CsrMatrix, vocab: Vocabulary, bigrams: bool = True) -> None:
        from sklearn.feature_extraction.text import TfidfTransformer

        self.vocab = vocab
        self.bigrams = bigrams
        self.transformer = TfidfTransformer(sublinear_tf=True).fit(item_terms.to_scipy())
        from sklearn.preprocessing import normalize  # TF-IDF baseline only

        self.items = normalize(self.transformer.transform(item_terms.to_scipy())).tocsr()

    def scores(self, query: str) -> np.ndarray | None:
        enc = encode_query(query, self.vocab, self.bigrams)
        if not enc.known:
            return None
        counts = np.bincount(enc.known, minlength=len(self.vocab)).astype(np.float64)
        import scipy.sparse as sp  # TF-IDF baseline only, not the search CLI
        from sklearn.preprocessing import normalize

        q = normalize(self.transformer.transform(sp.csr_array(counts[None, :])))
        return np.asarray((self.items @ q.T).todense()).ravel()


class PopularityScorer:
    """Every query gets the same ranking: most interactions first (log1p, ties by index)."""

    name = "popularity"

    def __init__(self, popularity: np.ndarray) -> None:
        self.values = np.log1p(popularity.astype(np.float64))

    def scores(self, query: str) -> np.ndarray | None:
        return self.values


class RandomScorer:
    """Uniform random scores, seeded by (seed, query) so a rerun gives the same numbers."""

    name = "random"

    def __init__(self, n_items: int, seed: int = 0) -> None:
        self.n_items = n_items
        self.seed = seed

    def scores(self, query: str) -> np.ndarray | None:
        digest = hashlib.blake2b(f"{self.seed}:{query}".encode(), digest_size=8).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        return rng.random(self.n_items)
