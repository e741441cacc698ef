"""MEM and TEM checkpoints: a weights-only state dict plus the JSON that rebuilds the model.

A folder holds ``model.pt`` (``recflow.store.save_state_dict``) and ``model.json`` (the
kind, the ``FeatureSpec`` and the architecture config). Loading rebuilds the network from
the JSON and loads the weights strictly, so a mismatch in keys or shapes is an error
rather than a silently half-initialised model. A TEM folder also holds its MEM's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recflow.mkt.mem import MemConfig, MultiEntityModel
from recflow.mkt.tables import FeatureSpec
from recflow.mkt.tem import TargetEntityModel, TemConfig
from recflow.store import load_state_dict, read_json, save_state_dict, write_json


def _config(cls: type, obj: dict[str, Any]) -> Any:
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()})


def save_mem(mem: MultiEntityModel, out_dir: str | Path) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_state_dict(mem.state_dict(), out / "model.pt")
    write_json(
        {"kind": "mem", "spec": mem.spec.to_json(), "config": mem.config.to_json()},
        out / "model.json",
    )


def load_mem(root: str | Path) -> MultiEntityModel:
    root = Path(root)
    meta = read_json(root / "model.json")
    if meta.get("kind") != "mem":
        raise ValueError(f"{root}: not a MEM checkpoint (kind {meta.get('kind')!r})")
    mem = MultiEntityModel(FeatureSpec.from_json(meta["spec"]), _config(MemConfig, meta["config"]))
    mem.load_state_dict(load_state_dict(root / "model.pt"), strict=True)
    return mem.eval()


def save_tem(tem: TargetEntityModel, out_dir: str | Path) -> None:
    out = Path(out_dir)
    save_mem(tem.mem, out / "mem")
    save_state_dict(tem.state_dict(), out / "model.pt")
    write_json(
        {"kind": "tem", "spec": tem.mem.spec.to_json(), "config": tem.config.to_json()},
        out / "model.json",
    )


def load_tem(root: str | Path) -> TargetEntityModel:
    root = Path(root)
    meta = read_json(root / "model.json")
    if meta.get("kind") != "tem":
        raise ValueError(f"{root}: not a TEM checkpoint (kind {meta.get('kind')!r})")
    mem = load_mem(root / "mem")
    config = _config(TemConfig, {**meta["config"], "init_embeddings_from_mem": False})
    tem = TargetEntityModel(FeatureSpec.from_json(meta["spec"]), mem, config)
    tem.load_state_dict(load_state_dict(root / "model.pt"), strict=True)
    return tem.eval()
