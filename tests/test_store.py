"""The artifact store: versions appear only when complete; failures leave the old one."""

from pathlib import Path

import pytest
import torch

from recflow.device import resolve_device
from recflow.store import (
    ArtifactStore,
    atomic_path,
    load_state_dict,
    read_json,
    save_state_dict,
    write_json,
)


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


def test_old_versions_are_pruned(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path, keep_versions=2)
    made = []
    for i in range(4):
        with store.new_version("m") as d:
            (d / "i").write_text(str(i))
            made.append(store.final_path(d))
    kept = sorted(p for p in (tmp_path / "m").iterdir() if p.is_dir())
    assert len(kept) == 2
    assert store.latest("m") == made[-1]
    assert (store.latest("m") / "i").read_text() == "3"


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
