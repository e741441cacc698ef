"""A small IO manager for handles: each asset returns a JSON-able dict (paths + facts).

Large tables never travel through Dagster: assets write Parquet into the artifact store
and hand downstream a handle such as ``{"path": ".../cooc_matrix/<version>"}``. Handles
are stored as JSON (no pickles), one file per asset key and partition.
"""

import json
from pathlib import Path
from typing import Any

import dagster as dg

from recflow.store import read_json, write_json


class JsonHandleIOManager(dg.ConfigurableIOManager):
    """Stores each asset's output under ``<root>/_handles/<key path>[/<partition>].json``."""

    root: str

    def _path(self, context: dg.InputContext | dg.OutputContext) -> Path:
        key = context.asset_key.path
        path = Path(self.root, "_handles", *key)
        if context.has_asset_partitions:
            keys = list(context.asset_partition_keys)
            if len(keys) != 1:
                raise dg.Failure(f"{'/'.join(key)}: expected one partition, got {keys}")
            path = path / keys[0]
        return path.with_suffix(".json")

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        json.dumps(obj)  # fail here, loudly, on anything that is not JSON
        write_json(obj, self._path(context))

    def load_input(self, context: dg.InputContext) -> Any:
        path = self._path(context)
        if not path.exists():
            raise dg.Failure(
                f"{context.asset_key.to_user_string()} has no materialization under {path}: "
                "materialize it first"
            )
        return read_json(path)
