"""Search over saved models: a query in, ranked items with scores out.

``HybridSearcher`` (the default) fuses BM25 over item text, a ZSL model's vectors and the
popularity prior with the weights of a search index (``search_index.py``), title hits
first; ``Searcher`` ranks by one model's vectors (and the prior) alone. Unknown query
words are reported; a query with no known word falls back to popularity (when there is a
prior) and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from recflow.text import encode_query
from recflow.zsl.artifact import SavedModel, load_model
from recflow.zsl.ensemble import PriorEnsembleScorer
from recflow.zsl.hybrid import FusionWeights, HybridScorer
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import VectorScorer
from recflow.zsl.search_index import SearchIndex, load_search_index

_EMPTY_HITS = {"rank": pl.Int32, "item_id": pl.Int64, "title": pl.String, "score": pl.Float64}


@dataclass(frozen=True)
class SearchResult:
    """hits: rank Int32, item_id Int64, title String, score Float64 (best first)."""

    query: str
    hits: pl.DataFrame
    unknown_terms: list[str]
    known_terms: list[str]
    fallback: bool
    method: str
    explain: pl.DataFrame | None = field(default=None)
    """Per hit (hybrid only): lexical, vector, prior contributions, title_hit, matched."""

    def describe(self, explain: bool = False) -> str:
        """Human-readable lines: warnings first, then the ranked items (with ``explain``,
        each item's parts of the fused score and the query words it matched)."""
        lines = []
        if self.unknown_terms:
            lines.append(f"unknown words (not in the vocabulary): {', '.join(self.unknown_terms)}")
        if self.fallback:
            lines.append("no known word in the query: showing the most popular items instead")
        elif not self.known_terms:
            lines.append("no known word in the query and no popularity to fall back on")
        parts = self.explain.iter_rows(named=True) if explain and self.explain is not None else None
        if explain and self.explain is not None:
            lines.append(f"query words known: {', '.join(self.known_terms) or '-'}")
        titles = self.explain.get_column("title_hit").to_list() if self.explain is not None else []
        for r, (rank, item_id, title, score) in enumerate(self.hits.iter_rows()):
            mark = "T" if titles and titles[r] else " "
            lines.append(f"{rank:>3} {mark} {score:8.4f}  {item_id:>10}  {title or ''}")
            if parts is not None:
                p = next(parts)
                tag = "title hit · " if p["title_hit"] else ""
                matched = ", ".join(p["matched"]) or "-"
                lines.append(
                    f"{'':>6}{tag}lexical {p['lexical']:+.3f}  vector {p['vector']:+.3f}  "
                    f"prior {p['prior']:+.3f}  words matched in its text: {matched}"
                )
        if titles and any(titles):
            lines.append("T: the title holds every query word (title hits rank first)")
        return "\n".join(lines)


class Searcher:
    """Holds one loaded model; ``search`` answers queries against it."""

    def __init__(
        self,
        model: SavedModel,
        scoring: str | None = None,
        prior_weight: float | None = None,
        prior: bool = True,
    ) -> None:
        """``prior=False``: the vectors alone, and no popularity fallback either."""
        self.model = model
        scoring = scoring or model.meta.get("scoring", "dot")
        self.base = VectorScorer(
            model.method,
            model.item_vectors,
            model.word_vectors,
            model.vocab,
            scoring,
            model.bigrams,
        )
        beta = model.prior_weight_for(scoring) if prior_weight is None else prior_weight
        self.ensemble = (
            PriorEnsembleScorer(self.base, model.popularity, beta or 0.0)
            if model.popularity is not None and prior
            else None
        )

    @classmethod
    def from_dir(cls, model_dir: str | Path, **kwargs) -> Searcher:
        return cls(load_model(model_dir), **kwargs)

    def search(self, query: str, top: int = 10) -> SearchResult:
        enc = encode_query(query, self.model.vocab, self.model.bigrams)
        known = [self.model.vocab.terms[i] for i in dict.fromkeys(enc.known)]
        fallback = False
        if self.ensemble is not None:
            scores = self.ensemble.scores(query)
            fallback = self.ensemble.last_fallback
        else:
            scores = self.base.scores(query)
        hits = _hits(self.model.items, scores, top)
        return SearchResult(query, hits, enc.unknown, known, fallback, self.model.method)


def _hits(items: pl.DataFrame, scores: np.ndarray | None, top: int) -> pl.DataFrame:
    if scores is None:
        return pl.DataFrame(schema=_EMPTY_HITS)
    idx = top_k(scores, top)
    return pl.DataFrame(
        {
            "rank": pl.Series(range(1, len(idx) + 1), dtype=pl.Int32),
            "item_id": items.get_column("item_id").gather(idx),
            "title": items.get_column("title").gather(idx),
            "score": pl.Series(scores[idx], dtype=pl.Float64),
        }
    )


class HybridSearcher:
    """BM25 + one model's vectors + the prior, with a search index's tuned weights."""

    def __init__(
        self,
        index: SearchIndex,
        model: str | None = None,
        scoring: str | None = None,
        prior: bool = True,
        model_dir: str | Path | None = None,
    ) -> None:
        self.index = index
        self.model_name = model or index.default_model
        if self.model_name not in index.models:
            raise KeyError(f"{index.root}: no model {self.model_name!r} in this search index")
        self.scoring = scoring or index.default_scoring
        self.model = load_model(model_dir or index.models[self.model_name])
        if self.model.items.height != index.lexical.n_items:
            raise ValueError(
                f"{self.model.root} has {self.model.items.height} items, the search index "
                f"{index.root} {index.lexical.n_items}: they were not built together"
            )
        has_prior = prior and self.model.popularity is not None
        self.weights: FusionWeights = index.weights(self.model_name, self.scoring, has_prior)
        vector = VectorScorer(
            self.model_name,
            self.model.item_vectors,
            self.model.word_vectors,
            self.model.vocab,
            self.scoring,
            self.model.bigrams,
        )
        self.scorer = HybridScorer(
            index.lexical,
            vector,
            self.model.popularity if has_prior else None,
            self.weights,
            tag_counts=index.tag_counts if has_prior else None,
        )

    @classmethod
    def from_dir(cls, index_dir: str | Path, **kwargs) -> HybridSearcher:
        return cls(load_search_index(index_dir), **kwargs)

    def search(self, query: str, top: int = 10) -> SearchResult:
        p = self.scorer.parts(query)
        lexical_vocab = self.index.lexical.vocab
        known_lex = [lexical_vocab.terms[t] for t in p.match.known]
        known = list(dict.fromkeys(known_lex + p.vector_known))
        unknown = [w for w in encode_query(query, lexical_vocab).unknown if w not in p.vector_known]
        scores = None if p.empty else self.scorer.scores(query)
        hits = _hits(self.model.items, scores, top)
        idx = top_k(scores, top) if scores is not None else np.empty(0, dtype=np.int64)
        # rank by the title-first scores, show the fused score (title hits are flagged)
        hits = hits.with_columns(pl.Series("score", p.fused[idx], dtype=pl.Float64))
        matched = [
            self.index.lexical.matched_terms(query, int(i)) if p.match.known else [] for i in idx
        ]
        explain = pl.DataFrame(
            {
                "lexical": pl.Series(p.lexical[idx], dtype=pl.Float64),
                "vector": pl.Series(p.vector[idx], dtype=pl.Float64),
                "prior": pl.Series(p.prior[idx], dtype=pl.Float64),
                "title_hit": pl.Series(p.match.title_hit[idx], dtype=pl.Boolean),
                "matched": pl.Series(matched, dtype=pl.List(pl.String)),
            }
        )
        method = f"hybrid ({self.model_name}, {self.scoring})"
        return SearchResult(query, hits, unknown, known, p.fallback, method, explain)


def search(model_dir: str | Path, query: str, top: int = 10, **kwargs) -> SearchResult:
    """Load the model in ``model_dir`` and answer one query."""
    return Searcher.from_dir(model_dir, **kwargs).search(query, top)
