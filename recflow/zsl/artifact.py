"""A trained model on disk: what search needs, loadable without Dagster or pickles.

Folder layout::

    model.json           method, config, loss history, scoring, prior weight (per scoring), format
    item_vectors.npy     (n, d) v_i            (np.load with allow_pickle=False)
    word_vectors.npy     (V, d) w_t
    context_vectors.npy  (n, d) u_j, when the method has them
    vocab.parquet        index Int32, term String, item_count Int64
    items.parquet        index Int32, item_id Int64, title String?, popularity Int64?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from recflow.artifacts import Artifact
from recflow.data.validate import DataValidationError
from recflow.store import atomic_path, read_json, write_json
from recflow.text import TextConfig, Vocabulary

if TYPE_CHECKING:  # models imports torch; loading a saved model for search does not need it
    from recflow.zsl.models import ZslModel

FORMAT = 1


@dataclass
class SavedModel:
    """A model folder read back."""

    root: Path
    meta: dict[str, Any]
    item_vectors: np.ndarray
    word_vectors: np.ndarray
    context_vectors: np.ndarray | None
    vocab: Vocabulary
    items: pl.DataFrame
    popularity: np.ndarray | None = field(default=None)

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def prior_weight(self) -> float | None:
        return self.meta.get("prior_weight")

    def prior_weight_for(self, scoring: str) -> float | None:
        """β tuned for ``scoring`` (dot and cosine rank differently, so each has its own);
        models saved before per-scoring tuning only have the one of their own scoring."""
        per = self.meta.get("prior_weights") or {}
        if scoring in per:
            return per[scoring]
        return self.prior_weight if scoring == self.meta.get("scoring", "dot") else None

    @property
    def bigrams(self) -> bool:
        return bool(self.meta.get("text_config", {}).get("bigrams", True))


@dataclass(frozen=True)
class ZslModelArtifact(Artifact):
    """A model folder written by ``save_model`` (a ``<dataset>/<method>_model`` or
    ``zsl_te_refresh`` version); ``method``: stl, zsl_me or zsl_te."""

    method: str

    def load(self) -> SavedModel:
        return load_model(self.folder)


def _save_npy(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)


def save_model(
    out_dir: str | Path,
    model: ZslModel,
    vocab: Vocabulary,
    item_ids: np.ndarray,
    text_config: TextConfig,
    titles: list[str | None] | None = None,
    popularity: np.ndarray | None = None,
    prior_weight: float | None = None,
    scoring: str = "dot",
    prior_weights: dict[str, float] | None = None,
) -> Path:
    """Write ``model`` into ``out_dir`` (a fresh folder from ``ArtifactStore.new_version``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(item_ids)
    if model.item_vectors.shape[0] != n or model.word_vectors.shape[0] != len(vocab):
        raise ValueError("vectors do not match the item ids / vocabulary")
    _save_npy(model.item_vectors, out / "item_vectors.npy")
    _save_npy(model.word_vectors, out / "word_vectors.npy")
    if model.context_vectors is not None:
        _save_npy(model.context_vectors, out / "context_vectors.npy")
    vocab.to_frame().write_parquet(out / "vocab.parquet")
    items = pl.DataFrame(
        {
            "index": pl.Series(np.arange(n), dtype=pl.Int32),
            "item_id": pl.Series(item_ids, dtype=pl.Int64),
            "title": pl.Series(titles if titles is not None else [None] * n, dtype=pl.String),
            "popularity": pl.Series(
                popularity if popularity is not None else [None] * n, dtype=pl.Int64
            ),
        }
    )
    items.write_parquet(out / "items.parquet")
    meta = {
        "format": FORMAT,
        "method": model.config.method,
        "config": model.config.to_dict(),
        "text_config": {
            "min_item_count": text_config.min_item_count,
            "min_terms_per_item": text_config.min_terms_per_item,
            "bigrams": text_config.bigrams,
        },
        "loss_history": model.loss_history,
        "train_seconds": model.train_seconds,
        "prior_weight": prior_weight,
        "prior_weights": prior_weights or {},
        "scoring": scoring,
    }
    write_json(meta, out / "model.json")
    return out


def load_model(model_dir: str | Path) -> SavedModel:
    """Read a folder written by ``save_model``; shapes are checked against each other."""
    root = Path(model_dir)
    if not (root / "model.json").exists():
        raise FileNotFoundError(f"{root}: not a saved model (no model.json)")
    meta = read_json(root / "model.json")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{root}: model format {meta.get('format')}, expected {FORMAT}")
    v = np.load(root / "item_vectors.npy", allow_pickle=False)
    w = np.load(root / "word_vectors.npy", allow_pickle=False)
    ctx_path = root / "context_vectors.npy"
    ctx = np.load(ctx_path, allow_pickle=False) if ctx_path.exists() else None
    vocab = Vocabulary.from_frame(pl.read_parquet(root / "vocab.parquet", glob=False))
    items = pl.read_parquet(root / "items.parquet", glob=False).sort("index")
    if items.height != v.shape[0]:
        raise DataValidationError(
            root / "items.parquet", "index", f"{v.shape[0]} item vectors", items.height
        )
    if len(vocab) != w.shape[0]:
        raise DataValidationError(
            root / "vocab.parquet", "index", f"{w.shape[0]} word vectors", len(vocab)
        )
    pop_col = items.get_column("popularity")
    pop = None if pop_col.null_count() == items.height else pop_col.fill_null(0).to_numpy()
    return SavedModel(root, meta, v, w, ctx, vocab, items, pop)
