"""Typed artifacts: what one pipeline stage hands the next.

An artifact is a frozen dataclass naming the version folder a stage wrote (``path``) and
the facts a reader needs without opening it. Each kind of artifact is its own subclass
(``Dataset``, ``CoocArtifact``, ``ZslModelArtifact``, …) with a ``load`` that returns the
content, so a stage says in its signature what it reads. An artifact holds *only its own*
folder: a stage that needs the matrix declares the matrix as an input, never reads it
through a model's artifact.

The Dagster IO manager stores an artifact as JSON ``{"type": "<module>:<class>",
"fields": {...}}`` (no pickles) and rebuilds it on load; ``decode`` accepts only
subclasses of ``Artifact`` defined in ``recflow`` modules, so a handle file cannot name
arbitrary code.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Artifact:
    """A version folder in the artifact store; subclasses add fields and a ``load``."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)


@dataclass(frozen=True)
class EvaluationArtifact(Artifact):
    """An evaluation's results: Parquet tables in ``path`` (``summary.parquet`` always;
    others such as ``comparison.parquet`` or ``per_query.parquet`` as the evaluation has)."""

    def table(self, name: str = "summary") -> list[dict[str, Any]]:
        """The rows of ``<path>/<name>.parquet``."""
        import polars as pl

        return pl.read_parquet(self.folder / f"{name}.parquet", glob=False).to_dicts()

    def has_table(self, name: str = "summary") -> bool:
        return (self.folder / f"{name}.parquet").is_file()


def encode(artifact: Artifact) -> dict[str, Any]:
    """JSON-able form of ``artifact`` (type name + fields)."""
    if not isinstance(artifact, Artifact) or not dataclasses.is_dataclass(artifact):
        raise TypeError(f"not an Artifact: {type(artifact).__name__}")
    cls = type(artifact)
    fields = {f.name: getattr(artifact, f.name) for f in dataclasses.fields(artifact)}
    return {"type": f"{cls.__module__}:{cls.__qualname__}", "fields": fields}


def is_encoded(obj: Any) -> bool:
    return isinstance(obj, dict) and set(obj) == {"type", "fields"}


def decode(obj: dict[str, Any]) -> Artifact:
    """The artifact ``encode`` wrote; refuses any type outside ``recflow``'s artifacts."""
    module_name, _, qualname = str(obj["type"]).partition(":")
    if module_name != "recflow" and not module_name.startswith("recflow."):
        raise ValueError(f"artifact type {obj['type']!r} is not a recflow artifact")
    cls: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Artifact)):
        raise ValueError(f"artifact type {obj['type']!r} is not an Artifact subclass")
    names = {f.name for f in dataclasses.fields(cls)}
    fields = dict(obj["fields"])
    if set(fields) != names:
        raise ValueError(
            f"{obj['type']}: stored fields {sorted(fields)} do not match {sorted(names)}; "
            "the artifact was written by another version of recflow: materialize it again"
        )
    for f in dataclasses.fields(cls):  # JSON has lists where the dataclass has tuples
        if isinstance(fields[f.name], list) and "tuple" in str(f.type):
            fields[f.name] = tuple(fields[f.name])
    return cls(**fields)


def paths_in(artifact: Any) -> list[str]:
    """Every string in an artifact or handle (the store paths a run reads)."""
    if isinstance(artifact, Artifact):
        artifact = encode(artifact)["fields"]
    if isinstance(artifact, str):
        return [artifact]
    if isinstance(artifact, dict):
        return [s for v in artifact.values() for s in paths_in(v)]
    if isinstance(artifact, list | tuple):
        return [s for v in artifact for s in paths_in(v)]
    return []
