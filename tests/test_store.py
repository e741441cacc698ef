"""The artifact store: versions appear only when complete; failures leave the old one."""

from pathlib import Path

import dagster as dg
import pytest
import torch

from assets.io_manager import store_handle_io_manager
from assets.resources import StoreResource
from recflow.device import resolve_device
from recflow.store import (
    ArtifactStore,
    atomic_path,
    load_state_dict,
    read_json,
    save_state_dict,
    write_json,
)
from tests.faults.runs_assets import made


def test_new_version_becomes_latest_only_on_success(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    with store.new_version("m") as d:
        (d / "a.txt").write_text("one")
        final = store.final_path(d)
        assert not final.exists()  # not visible while being written
    assert store.latest("m") == final
    assert (final / "a.txt").read_text() == "one"

    with pytest.raises(RuntimeError, match="boom"), store.new_version("m") as d:
        (d / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert store.latest("m") == final
    assert (store.latest("m") / "a.txt").read_text() == "one"
    leftovers = [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def _versions(store: ArtifactStore, n: int, name: str = "m") -> list[str]:
    made = []
    for i in range(n):
        with store.new_version(name) as d:
            (d / "i").write_text(str(i))
            made.append(store.final_path(d).name)
    return made


def test_old_versions_are_pruned(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, keep_versions=2)
    made = _versions(store, 4)
    kept = sorted(p.name for p in (tmp_path / "m").iterdir() if p.is_dir())
    assert kept == made[2:]
    assert store.latest("m").name == made[-1]
    assert (store.latest("m") / "i").read_text() == "3"


def test_resume_and_temp_folders_are_not_versions(tmp_path: Path) -> None:
    """Issue 14.4: a ``_resume-*`` folder counted as a version, so keep 3 kept 2."""
    store = ArtifactStore(tmp_path, keep_versions=3)
    (tmp_path / "m" / "_resume-abc").mkdir(parents=True)
    (tmp_path / "m" / "_resume-abc" / "last.json").write_text("{}")
    made = _versions(store, 5)
    assert store.versions("m") == made[2:]  # three complete versions, whatever else is there
    assert (tmp_path / "m" / "_resume-abc" / "last.json").exists()  # not pruned either


def test_pruning_keeps_the_published_and_protected_versions(tmp_path: Path) -> None:
    # as under Dagster: versions land unpublished, the IO manager publishes one of them
    store = ArtifactStore(tmp_path, keep_versions=1, publish_on_commit=False)
    made = _versions(store, 4)
    assert store.versions("m") == made  # nothing published yet, so nothing pruned
    store.publish("m", made[0], protect={made[1]})  # the oldest is what Dagster recorded
    assert store.versions("m") == [made[0], made[1], made[3]]  # + the newest 1
    assert store.latest("m").name == made[0]
    assert store.prune("m") == [made[1]]  # no longer protected
    assert store.versions("m") == [made[0], made[3]]


def test_a_dead_writers_temp_folder_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    made = _versions(store, 1)
    dead = tmp_path / "m" / ".tmp-20200101T000000000000-abcdef"  # as a SIGKILL leaves it
    dead.mkdir()
    (dead / "half.parquet").write_text("partial")
    with store.new_version("m") as live:
        (live / "i").write_text("writing")
        store.prune("m")  # a concurrent publish while this version is being written
        assert live.exists() and not dead.exists()
    assert store.latest("m") != tmp_path / "m" / made[0]
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")] == []


def test_keep_versions_and_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep_versions must be >= 1"):
        ArtifactStore(tmp_path, keep_versions=0)
    for name in ("../outside", "/etc", "a/../../b", ""):
        with pytest.raises(ValueError, match="inside the store"):
            ArtifactStore(tmp_path).artifact_dir(name)


def test_pruning_under_dagster_spares_versions_a_running_run_reads(tmp_path: Path) -> None:
    """keep 1: each publish keeps the newest version and the one Dagster's latest
    materialization named until now (a step may be resolving it); the first version
    also stays while a run still in progress has it loaded, until that run ends."""

    resources = {
        "store": StoreResource(root=str(tmp_path), keep_versions=1),
        "io_manager": store_handle_io_manager,
    }
    store = ArtifactStore(tmp_path)
    with dg.instance_for_test() as instance:
        first = dg.materialize([made], instance=instance, resources=resources)
        v1 = Path(first.output_for_node("t__made")["path"]).name
        reader = instance.add_run(
            dg.DagsterRun(job_name="reader", status=dg.DagsterRunStatus.STARTED)
        )
        in_use = tmp_path / "_handles" / "_in_use" / reader.run_id / "t__made.json"
        write_json([str(tmp_path / "t" / "made" / v1 / "x.txt")], in_use)
        second = dg.materialize([made], instance=instance, resources=resources)
        v2 = Path(second.output_for_node("t__made")["path"]).name
        third = dg.materialize([made], instance=instance, resources=resources)
        v3 = Path(third.output_for_node("t__made")["path"]).name
        assert store.versions("t/made") == [v1, v2, v3]  # v1 in use, v2 Dagster's previous
        recorded = instance.fetch_materializations(dg.AssetKey(["t", "made"]), limit=1)
        assert recorded.records[0].asset_materialization.metadata["store_version"].value == (
            f"t/made/{v3}"
        )
        assert store.latest("t/made").name == v3
        instance.report_run_failed(instance.get_run_by_id(reader.run_id))
        fourth = dg.materialize([made], instance=instance, resources=resources)
        v4 = Path(fourth.output_for_node("t__made")["path"]).name
        assert store.versions("t/made") == [v3, v4]  # the reader ended: v1 and v2 go
        handles = sorted(p.stem for p in (tmp_path / "_handles" / "t" / "made").glob("*.json"))
        assert handles == sorted([third.run_id, fourth.run_id])  # and so do their handles
        assert not in_use.parent.exists()


def test_latest_without_materialization_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="materialize it first"):
        ArtifactStore(tmp_path).latest("nothing")


def test_atomic_path_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    write_json({"v": 1}, target)
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise ValueError("stop")
    assert read_json(target) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_state_dict_round_trip_is_weights_only(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2])}
    save_state_dict(state, tmp_path / "m.pt")
    back = load_state_dict(tmp_path / "m.pt")
    assert set(back) == {"w", "b"}
    assert torch.equal(back["w"], state["w"]) and torch.equal(back["b"], state["b"])

    # Any pickled object that is not a tensor/primitive must be refused on load.
    torch.save({"x": Path("/etc/passwd")}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_state_dict(tmp_path / "evil.pt")


def test_device_choice() -> None:
    assert resolve_device("cpu").type == "cpu"
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")
