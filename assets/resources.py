"""Resources every asset shares: where artifacts live, which torch device, where raw data is."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pydantic
import torch

from recflow.data.registry import REPO_ROOT, DatasetSpec, data_settings, default_store_root
from recflow.device import describe_device, resolve_device
from recflow.store import DEFAULT_KEEP_VERSIONS, ArtifactStore

T = TypeVar("T")


def checked_folder(value: str, what: str) -> str:
    """A configured folder as an absolute path, or a clear error naming ``what``.

    Policy for every folder setting (store root, data sources): ``~`` is expanded and a
    relative path is taken from the repository root (as the default ``.recflow/`` is);
    a path with a ``..`` segment or a control character is refused, so the folder named
    in the Launchpad is the folder used. Absolute paths anywhere are allowed (data
    lives where it lives; the store is where you point it). Quotes, spaces and non-ASCII
    characters are fine: no path is ever pasted into SQL or a shell line. Inside the
    store, artifact names cannot leave it (``ArtifactStore.artifact_dir``).
    """
    if not value.strip():
        raise ValueError(f"{what} is empty")
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127]
    if bad:
        raise ValueError(f"{what} {value!r} contains control characters {bad!r}")
    path = Path(value).expanduser()
    if ".." in path.parts:
        raise ValueError(
            f"{what} {value!r} has a '..' segment: give the folder itself (an absolute path)"
        )
    return str(path if path.is_absolute() else REPO_ROOT / path)


def checked_store_root(value: str) -> str:
    """The store root as an absolute path, or a clear error (``checked_folder``'s policy)."""
    return checked_folder(value, "store root (RECFLOW_HOME or the store resource's root)")


class StoreResource(dg.ConfigurableResource):
    """The artifact store: versioned folders, atomic writes (see ``recflow.store``).

    ``keep_versions`` (default 3) complete versions of each artifact are kept; the
    version Dagster's latest materialization names and versions still-running runs
    read are never pruned, whatever the count (``assets/io_manager.py``)."""

    root: str = default_store_root()
    keep_versions: int = DEFAULT_KEEP_VERSIONS

    @pydantic.field_validator("root")
    @classmethod
    def _root_is_a_plain_folder(cls, value: str) -> str:
        return checked_store_root(value)

    @pydantic.field_validator("keep_versions")
    @classmethod
    def _keeps_at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"keep_versions must be >= 1 (the published version), got {value}")
        return value

    def store(self) -> ArtifactStore:
        """The store for assets: versions are published by the IO manager as Dagster
        records them, not when the asset finishes writing them."""
        return ArtifactStore(
            checked_store_root(self.root),
            keep_versions=self.keep_versions,
            publish_on_commit=False,
        )

    def in_new_version(self, name: str, stage: Callable[[Path], T]) -> tuple[str, T]:
        """Run ``stage`` on a fresh version folder of ``name`` (removed if it fails);
        the folder where the version landed, and what ``stage`` returned."""
        artifacts = self.store()
        with artifacts.new_version(name) as tmp:
            result = stage(tmp)
            final = artifacts.final_path(tmp)
        return str(final), result


class TorchDeviceResource(dg.ConfigurableResource):
    """Which torch device training uses: ``auto`` = CUDA when present, else CPU.
    ``cpu_threads`` caps torch's CPU threads (0 = one per core, torch's default): on a
    machine shared with other CPU-bound work, set it to the cores you can count on."""

    device: str = os.environ.get("RECFLOW_DEVICE", "auto")
    cpu_threads: int = int(os.environ.get("RECFLOW_CPU_THREADS", "0"))

    def resolve(self, log: dg.DagsterLogManager | None = None) -> torch.device:
        if self.cpu_threads < 0:
            raise dg.Failure(f"cpu_threads must be >= 0 (0 = every core), got {self.cpu_threads}")
        if self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        device = resolve_device(self.device)
        if log is not None:
            log.info(f"torch device: {describe_device(device)} (asked for {self.device!r})")
        return device


class _DataSources(dg.ConfigurableResource):
    """Folders of the raw datasets and their loader options, one field per
    ``recflow.data.registry.Setting`` of every dataset spec. The bundled MovieLens sample
    is the default; the others are read from folders you configure (env vars or the
    Launchpad)."""

    def folder(self, field_name: str) -> Path:
        """The configured folder ``field_name``, checked; a clear failure when unset."""
        value = getattr(self, field_name)
        if not value:
            env = data_settings()[field_name].env
            raise dg.Failure(
                f"data source {field_name!r} is not configured: set {env} or the "
                f"'data_sources' resource's {field_name} in the Launchpad"
            )
        try:
            path = Path(checked_folder(value, f"data source {field_name!r}"))
        except ValueError as exc:
            raise dg.Failure(str(exc)) from exc
        if not path.is_dir():
            raise dg.Failure(f"data source {field_name!r}: {path} is not a folder")
        return path

    def loader_options(self, spec: DatasetSpec) -> dict[str, object]:
        """The keyword arguments ``spec.load`` takes from this resource."""
        return {s.option: getattr(self, s.field) for s in spec.options if s.option}


DataSourcesResource = pydantic.create_model(
    "DataSourcesResource",
    __base__=_DataSources,
    __module__=__name__,
    **{name: (type(s.default), s.value()) for name, s in data_settings().items()},
)
DataSourcesResource.__doc__ = _DataSources.__doc__
