"""Resources every asset shares: where artifacts live, which torch device, where raw data is."""

import os
from pathlib import Path

import dagster as dg
import torch

from recflow.device import describe_device, resolve_device
from recflow.store import ArtifactStore

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_store_root() -> str:
    """``$RECFLOW_HOME``, else ``.recflow/`` in the repository."""
    return os.environ.get("RECFLOW_HOME", str(REPO_ROOT / ".recflow"))


class StoreResource(dg.ConfigurableResource):
    """The artifact store: versioned folders, atomic writes (see ``recflow.store``)."""

    root: str = default_store_root()
    keep_versions: int = 3

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root, keep_versions=self.keep_versions)


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


class DataSourcesResource(dg.ConfigurableResource):
    """Folders of the raw datasets. The bundled MovieLens sample is the default; the
    others are read from folders you configure (env vars or the Launchpad)."""

    movielens_small_dir: str = os.environ.get(
        "RECFLOW_ML_SMALL_DIR", str(REPO_ROOT / "data" / "ml-latest-small")
    )
    ml100k_dir: str = os.environ.get("RECFLOW_ML100K_DIR", "")
    ml1m_dir: str = os.environ.get("RECFLOW_ML1M_DIR", "")
    tenrec_dir: str = os.environ.get("RECFLOW_TENREC_DIR", "")
    tenrec_max_users: int = int(os.environ.get("RECFLOW_TENREC_MAX_USERS", "0"))

    def folder(self, field_name: str) -> Path:
        value = getattr(self, field_name)
        if not value:
            env = {
                "ml100k_dir": "RECFLOW_ML100K_DIR",
                "ml1m_dir": "RECFLOW_ML1M_DIR",
                "tenrec_dir": "RECFLOW_TENREC_DIR",
            }.get(field_name, "")
            raise dg.Failure(
                f"data source {field_name!r} is not configured: set {env} or the "
                f"'data_sources' resource's {field_name} in the Launchpad"
            )
        path = Path(value)
        if not path.is_dir():
            raise dg.Failure(f"data source {field_name!r}: {path} is not a folder")
        return path
