"""Zero-shot search over a saved model: a query in, ranked items with scores out.

Unknown query words are reported; a query with no known word falls back to popularity
(when the model has popularity) and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from recflow.text import encode_query
from recflow.zsl.artifact import SavedModel, load_model
from recflow.zsl.ensemble import PriorEnsembleScorer
from recflow.zsl.ranking import top_k
from recflow.zsl.scorers import VectorScorer


@dataclass(frozen=True)
class SearchResult:
    """hits: rank Int32, item_id Int64, title String, score Float64 (best first)."""

    query: str
    hits: pl.DataFrame
    unknown_terms: list[str]
    known_terms: list[str]
    fallback: bool
    method: str

    def describe(self) -> str:
        """Human-readable lines: warnings first, then the ranked items."""
        lines = []
        if self.unknown_terms:
            lines.append(f"unknown words (not in the vocabulary): {', '.join(self.unknown_terms)}")
        if self.fallback:
            lines.append("no known word in the query: showing the most popular items instead")
        elif not self.known_terms:
            lines.append("no known word in the query and no popularity to fall back on")
        for rank, item_id, title, score in self.hits.iter_rows():
            lines.append(f"{rank:>3}  {score:8.4f}  {item_id:>10}  {title or ''}")
        return "\n".join(lines)


class Searcher:
    """Holds one loaded model; ``search`` answers queries against it."""

    def __init__(
        self,
        model: SavedModel,
        scoring: str | None = None,
        prior_weight: float | None = None,
    ) -> None:
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
            if model.popularity is not None
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
        items = self.model.items
        if scores is None:
            hits = pl.DataFrame(
                schema={
                    "rank": pl.Int32,
                    "item_id": pl.Int64,
                    "title": pl.String,
                    "score": pl.Float64,
                }
            )
        else:
            idx = top_k(scores, top)
            hits = pl.DataFrame(
                {
                    "rank": pl.Series(range(1, len(idx) + 1), dtype=pl.Int32),
                    "item_id": items.get_column("item_id").gather(idx),
                    "title": items.get_column("title").gather(idx),
                    "score": pl.Series(scores[idx], dtype=pl.Float64),
                }
            )
        return SearchResult(query, hits, enc.unknown, known, fallback, self.model.method)


def search(model_dir: str | Path, query: str, top: int = 10, **kwargs) -> SearchResult:
    """Load the model in ``model_dir`` and answer one query."""
    return Searcher.from_dir(model_dir, **kwargs).search(query, top)
