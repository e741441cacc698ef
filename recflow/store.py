"""Where artifacts live, and how they are written so a failure never leaves half a file.

Layout under the store root::

    <root>/<name>/<version>/...   one folder per materialization, written as a
                                  temporary folder and renamed into place when complete
    <root>/<name>/LATEST          the newest complete version (replaced atomically)

Readers take a version folder (passed down the asset graph) or ``latest(name)`` (the
CLI). Checkpoints are torch state dicts loaded with ``weights_only=True``: no pickled
code is ever executed on load.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_state_dict(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Save tensors only (a state dict), atomically."""
    import torch  # imported here: DuckDB/polars-only users of the store skip its cost

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp)


def load_state_dict(
    path: str | Path, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling arbitrary objects."""
    import torch

    return torch.load(Path(path), map_location=device, weights_only=True)


class ArtifactStore:
    """A folder of versioned artifacts; see the module docstring for the layout."""

    def __init__(self, root: str | Path, keep_versions: int = 3) -> None:
        self.root = Path(root)
        self.keep_versions = keep_versions

    def artifact_dir(self, name: str) -> Path:
        return self.root / name

    @contextmanager
    def new_version(self, name: str) -> Iterator[Path]:
        """Yield an empty folder to write a new version of ``name`` into.

        On success the folder is renamed to ``<root>/<name>/<version>`` and becomes
        LATEST; on an exception it is deleted and the previous version stays current.
        """
        base = self.artifact_dir(name)
        base.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        version = f"{stamp}-{uuid.uuid4().hex[:6]}"
        tmp = base / f".tmp-{version}"
        tmp.mkdir()
        try:
            yield tmp
            final = base / version
            os.rename(tmp, final)
            with atomic_path(base / "LATEST") as t:
                t.write_text(version + "\n")
            self._prune(base, keep=version)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    @staticmethod
    def final_path(tmp: Path) -> Path:
        """Where the folder yielded by ``new_version`` lands once the ``with`` block succeeds."""
        return tmp.parent / tmp.name.removeprefix(".tmp-")

    def latest(self, name: str) -> Path:
        """The newest complete version of ``name``; a clear error when there is none."""
        pointer = self.artifact_dir(name) / "LATEST"
        if not pointer.exists():
            raise FileNotFoundError(
                f"no materialized {name!r} under {self.root}: materialize it first"
            )
        return self.artifact_dir(name) / pointer.read_text().strip()

    def _prune(self, base: Path, keep: str) -> None:
        versions = sorted(
            p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for old in versions[: max(0, len(versions) - self.keep_versions)]:
            if old != keep:
                shutil.rmtree(base / old, ignore_errors=True)
