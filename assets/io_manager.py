"""The IO manager for handles: each asset returns a typed artifact (``recflow.artifacts``).

Large tables never travel through Dagster: assets write Parquet into the artifact store
and hand downstream a frozen dataclass naming that version folder, e.g.
``CoocArtifact(path=".../cooc_matrix/<version>")``. Handles are stored as JSON
(``{"type": ..., "fields": ...}``, no pickles; a plain JSON dict is stored as it is),
**one file per run**::

    <store root>/_handles/<key path>[/<partition>]/<run id>.json
    <store root>/_handles/_in_use/<run id>/<key>.json    what a run has loaded

so two runs of the same asset never overwrite each other's handle. A step reads exactly
the upstream version its run loaded: the handle written by the run that produced the
upstream output in this execution (this run, or the parent run of a re-execution), and
for an upstream not produced in this run, the handle of the run of Dagster's latest
materialization of it (of that partition) — never "whatever was written last".

Recording an output also *publishes* it in the store: the handle's ``"path"`` (the
version folder the asset wrote) becomes the artifact's ``LATEST`` right before Dagster
records the materialization, so the CLI's "latest" and Dagster's latest materialization
name the same version (a process killed in the milliseconds between the two leaves
LATEST on a version Dagster has no record of, until the next materialization). Pruning
then keeps ``keep_versions`` versions and never deletes
the version of Dagster's latest materialization nor one a still-running run has loaded;
the handles of runs whose version was pruned are deleted with it.
The output's metadata records ``store_version`` (``<name>/<version>``) and the handle
file; each loaded input's metadata records the version and the run it came from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from assets.resources import StoreResource
from recflow.artifacts import Artifact, decode, encode, is_encoded, paths_in
from recflow.store import DEFAULT_KEEP_VERSIONS, ArtifactStore, read_json, write_json

HANDLES = "_handles"
IN_USE = "_in_use"
EPHEMERAL_RUN_ID = "__EPHEMERAL_RUN_ID"


def _key_dir(root: Path, context: dg.InputContext | dg.OutputContext) -> Path:
    key = context.asset_key.path
    path = Path(root, HANDLES, *key)
    if context.has_asset_partitions:
        keys = list(context.asset_partition_keys)
        if len(keys) != 1:
            raise dg.Failure(f"{'/'.join(key)}: expected one partition, got {keys}")
        path = path / keys[0]
    return path


def _producer_run_id(context: dg.InputContext) -> str | None:
    """The run that produced this input in this execution, or None when the upstream
    is not part of it (then Dagster's latest materialization decides)."""
    upstream = context.upstream_output
    if upstream is None:
        return None
    try:
        run_id = upstream.run_id
    except dg.DagsterInvariantViolationError:
        return None
    # an upstream outside this execution gets a placeholder run id (Dagster's
    # RUN_ID_PLACEHOLDER, a private name): no run of ours is called that
    return None if run_id == EPHEMERAL_RUN_ID else run_id


def _latest_materialization(
    instance: dg.DagsterInstance, context: dg.InputContext | dg.OutputContext
) -> dg.EventLogRecord | None:
    partitions = list(context.asset_partition_keys) if context.has_asset_partitions else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=partitions), limit=1
    ).records
    return records[0] if records else None


def _read_use(path: Path) -> list[str]:
    try:
        return read_json(path)
    except FileNotFoundError:  # its run finished and another publish cleared it
        return []


def _forget_handles(key_dir: Path, name: str, pruned: set[str], store: ArtifactStore) -> None:
    """Delete the handles of runs whose version of ``name`` was pruned: no step can read
    them any more (their files are gone), so the handle folder stays as small as the store."""
    if not pruned:
        return
    for handle_file in key_dir.glob("*.json"):
        try:
            handle = read_json(handle_file)
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if is_encoded(handle):
            handle = handle["fields"]
        path = handle.get("path") if isinstance(handle, dict) else None
        located = store.locate(path) if isinstance(path, str) else None
        if located is not None and located[0] == name and located[1] in pruned:
            handle_file.unlink(missing_ok=True)


class HandleIOManager(dg.IOManager):
    """Run-keyed handles under ``<root>/_handles``; see the module docstring."""

    def __init__(self, root: str | Path, keep_versions: int = DEFAULT_KEEP_VERSIONS) -> None:
        self.root = Path(root)
        self.store = ArtifactStore(self.root, keep_versions=keep_versions)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        stored = encode(obj) if isinstance(obj, Artifact) else obj
        json.dumps(stored)  # fail here, loudly, on anything that is not JSON
        path = _key_dir(self.root, context) / f"{context.run_id}.json"
        write_json(stored, path)
        meta: dict[str, Any] = {"handle_file": dg.MetadataValue.path(str(path))}
        if isinstance(obj, Artifact):
            meta["artifact"] = type(obj).__name__
        own = obj.path if isinstance(obj, Artifact) else obj.get("path")
        located = self.store.locate(own) if isinstance(own, str) else None
        if located is not None and (self.store.root / located[0] / located[1]).is_dir():
            name, version = located
            pruned = self.store.publish(name, version, protect=self._protected(context, name))
            _forget_handles(path.parent, name, set(pruned), self.store)
            meta["store_version"] = f"{name}/{version}"
        context.add_output_metadata(meta)

    def load_input(self, context: dg.InputContext) -> Any:
        key = context.asset_key.to_user_string()
        run_id = _producer_run_id(context)
        source = "this run" if run_id == context.step_context.run_id else f"run {run_id}"
        if run_id is None:
            record = _latest_materialization(context.instance, context)
            if record is None:
                raise dg.Failure(
                    f"{key} has no materialization recorded in this Dagster instance: "
                    "materialize it first"
                )
            run_id = record.run_id
            source = f"Dagster's latest materialization (run {run_id})"
        path = _key_dir(self.root, context) / f"{run_id}.json"
        if not path.exists():
            raise dg.Failure(
                f"{key}: the handle of {source} is missing ({path}); is the store root the "
                "one that run wrote to? Materialize it again."
            )
        handle = read_json(path)
        if is_encoded(handle):
            try:
                handle = decode(handle)
            except (ValueError, AttributeError, ImportError, TypeError) as e:
                raise dg.Failure(f"{key}: cannot read the handle {path}: {e}") from e
        self._record_use(context, handle)
        meta: dict[str, Any] = {"from_run": run_id, "handle_file": dg.MetadataValue.path(str(path))}
        own = handle.path if isinstance(handle, Artifact) else None
        if isinstance(handle, dict) and isinstance(handle.get("path"), str):
            own = handle["path"]
        if own is not None:
            located = self.store.locate(own)
            if located is not None:
                meta["store_version"] = "/".join(located)
        context.add_input_metadata(meta)
        return handle

    def _record_use(self, context: dg.InputContext, handle: Any) -> None:
        """Note which store paths this run reads, so no publish prunes them mid-run."""
        name = "__".join(context.asset_key.path)
        if context.has_asset_partitions:
            name += "__" + "__".join(context.asset_partition_keys)
        use = self.root / HANDLES / IN_USE / context.step_context.run_id / f"{name}.json"
        write_json(paths_in(handle), use)

    def _protected(self, context: dg.OutputContext, name: str) -> set[str]:
        """Versions of ``name`` that must survive pruning: the one Dagster's latest
        materialization of this asset records, and those loaded by unfinished runs."""
        keep: set[str] = set()
        instance = context.step_context.instance
        record = _latest_materialization(instance, context)
        if record is not None and record.asset_materialization is not None:
            recorded = record.asset_materialization.metadata.get("store_version")
            if recorded is not None and str(recorded.value).startswith(name + "/"):
                keep.add(str(recorded.value).rsplit("/", 1)[1])
        in_use = self.root / HANDLES / IN_USE
        if not in_use.is_dir():
            return keep
        for run_dir in in_use.iterdir():
            run = instance.get_run_by_id(run_dir.name)
            if run is not None and not run.is_finished:
                for use in run_dir.glob("*.json"):
                    for value in _read_use(use):
                        located = self.store.locate(value)
                        if located is not None and located[0] == name:
                            keep.add(located[1])
            elif run_dir.name != context.run_id:
                shutil.rmtree(run_dir, ignore_errors=True)  # a finished run reads nothing
        return keep


class JsonHandleIOManager(dg.ConfigurableIOManager):
    """``HandleIOManager`` on an explicit ``root`` (tests; a store of its own)."""

    root: str
    keep_versions: int = DEFAULT_KEEP_VERSIONS

    def _manager(self) -> HandleIOManager:
        return HandleIOManager(self.root, self.keep_versions)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self._manager().handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        return self._manager().load_input(context)


@dg.io_manager(
    required_resource_keys={"store"},
    description=(
        "Run-keyed JSON handles under the `store` resource's root (a Launchpad override of "
        "store.root moves the handles too); publishes each output's version as LATEST."
    ),
)
def store_handle_io_manager(init_context: dg.InitResourceContext) -> HandleIOManager:
    """The shipped IO manager: its root and keep-N are the ``store`` resource's."""
    store: StoreResource = init_context.resources.store
    return HandleIOManager(store.root, store.keep_versions)
