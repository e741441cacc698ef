"""The hybrid search index on disk: a BM25 index, the models it fuses, tuned weights.

Folder layout::

    fusion.json           format, model folders, weights per "<model>/<scoring>/<prior|no_prior>",
                          their validation objective, the default model and scoring, the
                          tag-prior weight ρ with its validation grid
    lexical_vocab.parquet the lexical vocabulary (every term of the item text)
    lexical.npz           BM25 weights, title words and title years (plain arrays)
    tag_counts.npy        distinct text-part tag strings per item (the prior's tag part)

Weights are tuned on the validation tag queries and on known-item queries of the
validation half of the items (``hybrid.tune_fusion``), never on the test tags or on the
test half's known-item queries that evaluate them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recflow.artifacts import Artifact
from recflow.store import atomic_path, read_json, write_json
from recflow.zsl.hybrid import FusionWeights, tune_fusion
from recflow.zsl.lexical import LexicalIndex
from recflow.zsl.scorers import SCORINGS, VectorScorer

FORMAT = 2
TAG_COUNTS_FILE = "tag_counts.npy"


@dataclass(frozen=True)
class SearchConfig:
    """How the search index is built.

    tag_prior: mix each item's count of text-part tags into the search's prior (weight ρ
    tuned on the validation tags). Tags are item text: a film its users tagged often is
    more likely to carry a held-out tag too, like a document prior in keyword search. On
    ml_small's three tag splits it lifts the default search's tag NDCG@100 from
    0.120 / 0.122 / 0.102 to 0.148 / 0.173 / 0.127 and its known-item MRR from ~0.88 to
    ~0.91. Off: the prior is popularity alone. ρ and the counts are saved either way, and
    the tag-query evaluation shows that prior alone and with TF-IDF as references.

    max_popularity_overlap: fusion weights compete only if, on the validation queries with
    a known word, the answers share on average at most this much of their top 10 with the
    popularity top 10, and (with the tag prior) with the prior's own top 10
    (``hybrid.tune_fusion``; None: no requirement). The tag queries the weights are tuned
    on are mostly about popular, much-tagged films, so without it tuning raises the prior
    until most queries get one list (TF-IDF + the tag prior, tuned for NDCG alone, shares
    62% of its top 10 with that list).
    """

    tag_prior: bool = True
    max_popularity_overlap: float | None = 0.3


def weight_key(model: str, scoring: str, prior: bool) -> str:
    return f"{model}/{scoring}/{'prior' if prior else 'no_prior'}"


@dataclass
class SearchIndex:
    """A search-index folder read back."""

    root: Path
    meta: dict[str, Any]
    lexical: LexicalIndex
    tag_counts: np.ndarray | None = None
    """(n_items,) distinct text-part tags per item (None: the data has none)."""

    @property
    def tag_weight(self) -> float:
        """ρ tuned for the tag prior on validation (0: none), fused or not."""
        return float(self.meta.get("tag_prior", {}).get("weight", 0.0))

    @property
    def fused_tag_weight(self) -> float:
        """ρ the search's prior uses (0 when the tag prior is not fused)."""
        fused = bool(self.meta.get("tag_prior", {}).get("fused", False))
        return self.tag_weight if fused and self.tag_counts is not None else 0.0

    @property
    def models(self) -> dict[str, str]:
        return self.meta["models"]

    @property
    def default_model(self) -> str:
        return self.meta["default"]["model"]

    @property
    def default_scoring(self) -> str:
        return self.meta["default"]["scoring"]

    def weights(self, model: str, scoring: str, prior: bool) -> FusionWeights:
        key = weight_key(model, scoring, prior)
        if key not in self.meta["weights"]:
            raise KeyError(f"{self.root}: no fusion weights for {key}")
        return FusionWeights(**self.meta["weights"][key])


@dataclass(frozen=True)
class SearchIndexArtifact(Artifact):
    """A folder written by ``save_search_index`` (``<dataset>/zsl_search_index``) and the
    (model, scoring) it answers with by default."""

    default_model: str
    default_scoring: str

    def load(self) -> SearchIndex:
        return load_search_index(self.folder)


def tune_all(
    lexical: LexicalIndex,
    models: Mapping[str, Any],
    popularity: np.ndarray | None,
    validation: Sequence[tuple[str, np.ndarray]],
    scorings: Sequence[str] = SCORINGS,
    known_items: Sequence[tuple[str, int]] = (),
    tag_counts: np.ndarray | None = None,
    tag_weight: float = 0.0,
    max_overlap: float | None = None,
) -> tuple[dict[str, FusionWeights], dict[str, float], list[dict[str, Any]]]:
    """Fusion weights for every (model, scoring, prior on/off) and the lexical-only
    ``bm25`` entry. ``models``: name → an object with ``item_vectors``, ``word_vectors``
    and ``vocab`` (a saved or trained model); ``known_items``: validation (title query,
    item index) pairs that count beside the tag queries (``hybrid.tune_fusion``);
    ``tag_counts`` and ``tag_weight`` ρ: the prior's text-tag part (``ensemble.item_prior``),
    shared by every configuration; ``max_overlap``: ``tune_fusion``'s requirement on the
    answers. Returns weights, the validation objective at them and the whole search grid
    as rows."""
    grid_rows: list[dict[str, Any]] = []
    weights: dict[str, FusionWeights] = {}
    scores: dict[str, float] = {}
    configs: list[tuple[str, str, VectorScorer | None]] = [("bm25", "none", None)]
    for name, m in models.items():
        for scoring in scorings:
            vs = VectorScorer(name, m.item_vectors, m.word_vectors, m.vocab, scoring)
            configs.append((name, scoring, vs))
    priors = (True, False) if popularity is not None else (False,)
    for name, scoring, vs in configs:
        for prior in priors:
            key = weight_key(name, scoring, prior)
            w, table = tune_fusion(
                lexical,
                vs,
                popularity,
                validation,
                use_prior=prior,
                known_items=known_items,
                tag_counts=tag_counts,
                tag_weight=tag_weight,
                max_overlap=max_overlap,
            )
            weights[key] = w
            scores[key] = next(r["objective"] for r in table if r["chosen"])
            grid_rows += [{"config": key} | r for r in table]
    return weights, scores, grid_rows


def save_search_index(
    out_dir: str | Path,
    lexical: LexicalIndex,
    model_dirs: Mapping[str, str],
    weights: Mapping[str, FusionWeights],
    validation_ndcg: Mapping[str, float],
    validation_queries: int,
    tag_counts: np.ndarray | None = None,
    tag_prior: Mapping[str, Any] | None = None,
) -> Path:
    """Write the folder; the default (model, scoring) is the best on validation with the
    prior (ties: the order of ``model_dirs``, dot before cosine). ``tag_counts``: the
    items' text-tag counts; ``tag_prior``: ρ tuned for them, whether the fused prior uses
    it, and its validation grid (``fusion.json``'s ``tag_prior``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lexical.save(out)
    if tag_counts is not None:
        if len(tag_counts) != lexical.n_items:
            raise ValueError(f"{len(tag_counts)} tag counts for {lexical.n_items} items")
        with atomic_path(out / TAG_COUNTS_FILE) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(tag_counts, dtype=np.int64), allow_pickle=False)
    candidates = [
        (m, s) for m in model_dirs for s in SCORINGS if weight_key(m, s, True) in weights
    ] or [(m, s) for m in model_dirs for s in SCORINGS if weight_key(m, s, False) in weights]
    if not candidates:
        raise ValueError("no tuned weights for any model")
    prior = weight_key(*candidates[0], True) in weights

    def val(c: tuple[str, str]) -> float:
        return validation_ndcg.get(weight_key(*c, prior), float("-inf"))

    best = max(candidates, key=lambda c: (val(c), -candidates.index(c)))
    meta = {
        "format": FORMAT,
        "models": dict(model_dirs),
        "weights": {k: w.to_dict() for k, w in weights.items()},
        "validation_objective": dict(validation_ndcg),
        "validation_queries": validation_queries,
        "default": {"model": best[0], "scoring": best[1]},
        "tag_prior": dict(tag_prior or {"weight": 0.0, "fused": False}),
    }
    write_json(meta, out / "fusion.json")
    return out


def load_search_index(folder: str | Path) -> SearchIndex:
    root = Path(folder)
    if not (root / "fusion.json").exists():
        raise FileNotFoundError(f"{root}: not a search index (no fusion.json)")
    meta = read_json(root / "fusion.json")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{root}: search index format {meta.get('format')}, expected {FORMAT}")
    counts_path = root / TAG_COUNTS_FILE
    tag_counts = np.load(counts_path, allow_pickle=False) if counts_path.exists() else None
    return SearchIndex(root, meta, LexicalIndex.load(root), tag_counts)
