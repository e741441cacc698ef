"""Daily warm-start refresh (Wu et al. 2020, §5.4).

Yesterday's vectors are carried over by item id and by term string; items and terms that
are new today get fresh seeded random vectors; a few alternating solves on today's inputs
then adapt everything. Because each solve is exact given the other factors, one iteration
already places new items and words where today's data puts them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from recflow.progress import ProgressFn
from recflow.zsl.artifact import SavedModel
from recflow.zsl.inputs import ZslInputs
from recflow.zsl.models import Trainer, ZslConfig, ZslModel


@dataclass(frozen=True)
class RefreshConfig:
    """Warm-start refresh: ``iterations`` solves on today's matrix from yesterday's vectors."""

    iterations: int = 2


@dataclass(frozen=True)
class RefreshStats:
    """How today's index relates to yesterday's."""

    kept_items: int
    new_items: int
    dropped_items: int
    kept_terms: int
    new_terms: int
    dropped_terms: int


def carry_over(
    old_keys: np.ndarray | list,
    old_vectors: np.ndarray,
    new_keys: np.ndarray | list,
    fresh: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Rows of ``fresh`` (len(new_keys), d) replaced by the old row of the same key.

    Returns the merged array and how many rows were carried over.
    """
    position = {k: i for i, k in enumerate(np.asarray(old_keys).tolist())}
    out = fresh.copy()
    kept = 0
    for j, k in enumerate(np.asarray(new_keys).tolist()):
        i = position.get(k)
        if i is not None:
            out[j] = old_vectors[i]
            kept += 1
    return out, kept


def warm_start_refresh(
    previous: SavedModel,
    inputs: ZslInputs,
    iterations: int = 2,
    device: torch.device | str = "cpu",
    config: ZslConfig | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[ZslModel, RefreshStats]:
    """Start from ``previous`` on today's ``inputs`` and run ``iterations`` solves.

    ``config`` defaults to the previous model's; its method and dimension must match.
    """
    prev_cfg = ZslConfig(**previous.meta["config"])
    cfg = replace(config or prev_cfg, iterations=iterations)
    if (cfg.method, cfg.dim) != (prev_cfg.method, prev_cfg.dim):
        raise ValueError(
            f"refresh needs the previous method and dim ({prev_cfg.method}, {prev_cfg.dim}),"
            f" got ({cfg.method}, {cfg.dim})"
        )
    trainer = Trainer(inputs, cfg, torch.device(device))
    fresh = trainer.initial_state()  # seeded draws for every row; old rows overwrite them
    old_ids = previous.items.get_column("item_id").to_numpy()
    v, kept_items = carry_over(old_ids, previous.item_vectors, inputs.item_ids, _np(fresh.v))
    w, kept_terms = carry_over(
        previous.vocab.terms, previous.word_vectors, inputs.vocab.terms, _np(fresh.w)
    )
    u = None
    if fresh.u is not None:
        if previous.context_vectors is None:
            raise ValueError("previous model has no context vectors to carry over")
        u, _ = carry_over(old_ids, previous.context_vectors, inputs.item_ids, _np(fresh.u))
    model = trainer.run(trainer.state_from(v, w, u), iterations, on_progress)
    stats = RefreshStats(
        kept_items=kept_items,
        new_items=inputs.n_items - kept_items,
        dropped_items=len(old_ids) - kept_items,
        kept_terms=kept_terms,
        new_terms=len(inputs.vocab) - kept_terms,
        dropped_terms=len(previous.vocab) - kept_terms,
    )
    return model, stats


def _np(t: torch.Tensor) -> np.ndarray:
    return t.double().cpu().numpy()
