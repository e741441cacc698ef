"""Where artifacts live, and how they are written so a failure never leaves half a file.

Layout under the store root::

    <root>/<name>/<version>/...      one folder per materialization, written as a
                                     temporary folder and renamed into place when complete
    <root>/<name>/LATEST             the published version (replaced atomically)
    <root>/<name>/.tmp-<version>     a version being written (never read; a dead writer's
                                     folder is removed by the next publish of ``name``)
    <root>/<name>/_resume-*          training checkpoints (not a version, never pruned here)

A *version* is a folder named ``<UTC stamp>-<6 hex>``; nothing else counts as one.

**LATEST.** Used outside Dagster (``publish_on_commit=True``, the default) a version is
published the moment it is complete. Under Dagster the asset writes its version and the
IO manager publishes it (``publish``) as it records the output, right before Dagster
records the materialization, so ``latest(name)`` — what the CLI reads — names the
version of Dagster's latest materialization, not whichever run finished writing last
(``assets/io_manager.py``).

**Pruning** keeps the newest ``keep_versions`` complete versions and never deletes the
published one or any version in ``protect`` (the IO manager passes the versions Dagster's
latest materialization and still-running runs use).

Checkpoints are torch state dicts loaded with ``weights_only=True``: no pickled code is
ever executed on load.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DEFAULT_KEEP_VERSIONS = 3
VERSION_RE = re.compile(r"^\d{8}T\d{12}-[0-9a-f]{6}$")
TMP_PREFIX = ".tmp-"


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


def is_version_name(name: str) -> bool:
    """Whether a folder name is a complete version (not a temp, resume or handle folder)."""
    return VERSION_RE.fullmatch(name) is not None


@contextmanager
def _locked(lock_path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``lock_path`` (released when the process dies, too);
    yields False when ``blocking`` is off and another process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fh, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class ArtifactStore:
    """A folder of versioned artifacts; see the module docstring for the layout."""

    def __init__(
        self,
        root: str | Path,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        publish_on_commit: bool = True,
    ) -> None:
        if keep_versions < 1:
            raise ValueError(
                f"keep_versions must be >= 1 (the published version), got {keep_versions}"
            )
        self.root = Path(root)
        self.keep_versions = keep_versions
        self.publish_on_commit = publish_on_commit

    def artifact_dir(self, name: str) -> Path:
        """``<root>/<name>``; a name that would leave the store is refused."""
        parts = Path(name).parts
        if not parts or Path(name).is_absolute() or ".." in parts:
            raise ValueError(f"artifact name {name!r} must be a relative path inside the store")
        return self.root / name

    @contextmanager
    def new_version(self, name: str) -> Iterator[Path]:
        """Yield an empty folder to write a new version of ``name`` into.

        On success the folder is renamed to ``<root>/<name>/<version>`` (and, with
        ``publish_on_commit``, becomes LATEST); on an exception it is deleted and the
        previous version stays current. While the block runs the writer holds a lock
        beside the folder, so a later publish can tell a dead writer's folder from a
        live one.
        """
        base = self.artifact_dir(name)
        base.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        version = f"{stamp}-{uuid.uuid4().hex[:6]}"
        tmp = base / f"{TMP_PREFIX}{version}"
        lock = base / f"{TMP_PREFIX}{version}.lock"
        with _locked(lock):
            tmp.mkdir()
            try:
                yield tmp
                os.rename(tmp, base / version)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                current = (
                    (base / "LATEST").read_text().strip() if (base / "LATEST").exists() else None
                )
                raise OSError(
                    errno.ENOSPC,
                    f"no space left on the device of {self.root} while writing a new version "
                    f"of {name!r} ({exc}); nothing was published"
                    + (f", {name}/{current} is still the current version" if current else ""),
                ) from exc
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp)
                lock.unlink(missing_ok=True)
        if self.publish_on_commit:
            self.publish(name, version)

    @staticmethod
    def final_path(tmp: Path) -> Path:
        """Where the folder yielded by ``new_version`` lands once the ``with`` block succeeds."""
        return tmp.parent / tmp.name.removeprefix(TMP_PREFIX)

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name``, oldest first (temp and resume folders excluded)."""
        base = self.artifact_dir(name)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and is_version_name(p.name))

    def latest(self, name: str) -> Path:
        """The published version of ``name``; a clear error when there is none."""
        pointer = self.artifact_dir(name) / "LATEST"
        if not pointer.exists():
            raise FileNotFoundError(
                f"no materialized {name!r} under {self.root}: materialize it first"
            )
        return self.artifact_dir(name) / pointer.read_text().strip()

    def locate(self, path: str | Path) -> tuple[str, str] | None:
        """``(name, version)`` of the version folder of this store that ``path`` is (or
        lies inside), else None."""
        path = Path(path)
        for folder in (path, *path.parents):
            if is_version_name(folder.name):
                try:
                    name = folder.parent.relative_to(self.root)
                except ValueError:
                    return None
                return name.as_posix(), folder.name
        return None

    def publish(self, name: str, version: str, protect: Iterable[str] = ()) -> list[str]:
        """Make ``version`` LATEST, then prune (``version`` and ``protect`` are kept);
        returns the versions pruned."""
        base = self.artifact_dir(name)
        if not (base / version).is_dir():
            raise FileNotFoundError(
                f"cannot publish {name!r} {version}: {base / version} is missing"
            )
        with _locked(base / ".publish.lock"):
            with atomic_path(base / "LATEST") as t:
                t.write_text(version + "\n")
            return self.prune(name, protect={version, *protect})

    def prune(self, name: str, protect: Iterable[str] = ()) -> list[str]:
        """Delete complete versions beyond the newest ``keep_versions``, except LATEST's
        and ``protect``; remove temp folders whose writer is gone. Returns what was deleted."""
        base = self.artifact_dir(name)
        keep = set(protect)
        pointer = base / "LATEST"
        if pointer.exists():
            keep.add(pointer.read_text().strip())
        versions = self.versions(name)
        deleted = []
        for old in versions[: max(0, len(versions) - self.keep_versions)]:
            if old not in keep:
                shutil.rmtree(base / old, ignore_errors=True)
                deleted.append(old)
        self._remove_dead_temps(base)
        return deleted

    @staticmethod
    def _remove_dead_temps(base: Path) -> None:
        for tmp in base.glob(f"{TMP_PREFIX}*"):
            if not tmp.is_dir():
                continue
            lock = tmp.with_name(tmp.name + ".lock")
            with _locked(lock, blocking=False) as free:
                if free:  # no live writer holds it: a crashed write
                    shutil.rmtree(tmp, ignore_errors=True)
                    lock.unlink(missing_ok=True)
