"""A pretrained NextItNet on disk: weights, config and item-id map side by side.

Folder layout: ``model.pt`` (state dict, loaded with ``weights_only=True``),
``config.json`` (the NextItNetConfig plus free metadata) and ``item_index.parquet``
(token → item_id). Loading rebuilds the network from its config and requires every key
and shape to match, so a fine-tune can never silently start from random weights.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import nn

from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.sequences import ItemIndex
from recflow.store import atomic_path, load_state_dict, read_json, save_state_dict, write_json

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
ITEM_INDEX_FILE = "item_index.parquet"


def save_pretrained(
    model: NextItNet,
    item_index: ItemIndex,
    out_dir: str | Path,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write the three files of a checkpoint into ``out_dir`` (each atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if model.config.n_tokens != item_index.n_tokens:
        raise ValueError(
            f"model vocabulary {model.config.n_tokens} != item index {item_index.n_tokens} tokens"
        )
    save_state_dict(model.state_dict(), out / MODEL_FILE)
    write_json({"model": asdict(model.config), "metadata": metadata or {}}, out / CONFIG_FILE)
    with atomic_path(out / ITEM_INDEX_FILE) as tmp:
        item_index.to_frame().write_parquet(tmp)


def load_matching_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; any missing, unexpected or reshaped key is an error."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if missing or unexpected or reshaped:
        raise ValueError(
            f"{source}: checkpoint does not match the model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatch {reshaped[:5]}"
        )
    model.load_state_dict(state)


def load_pretrained(
    checkpoint_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[NextItNet, ItemIndex, dict[str, Any]]:
    """Rebuild the network from ``config.json`` and load its weights; returns (model,
    item index, metadata)."""
    root = Path(checkpoint_dir)
    raw = read_json(root / CONFIG_FILE)
    cfg = dict(raw["model"])
    cfg["dilations"] = tuple(cfg["dilations"])
    model = NextItNet(NextItNetConfig(**cfg))
    load_matching_state(model, load_state_dict(root / MODEL_FILE, device), str(root / MODEL_FILE))
    index = ItemIndex.from_frame(
        pl.read_parquet(root / ITEM_INDEX_FILE, glob=False), str(root / ITEM_INDEX_FILE)
    )
    if index.n_tokens != model.config.n_tokens:
        raise ValueError(
            f"{root}: item index has {index.n_tokens} tokens, the model {model.config.n_tokens}"
        )
    model.to(device)
    model.eval()
    return model, index, raw.get("metadata", {})
