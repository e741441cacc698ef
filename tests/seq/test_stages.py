"""The PeterRec stages (``recflow.seq.stages``) on a small synthetic world, without Dagster:
one stored user split rebuilds exactly the tasks the split seed defines, and every
fine-tune and baseline of the comparison is scored on its test users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recflow.data.dataset import CanonicalDataset, write_dataset
from recflow.data.synthetic import SyntheticConfig, generate
from recflow.seq.domains import transfer_setup
from recflow.seq.finetune import Method
from recflow.seq.nextitnet import NextItNetConfig
from recflow.seq.pretrain import PretrainConfig
from recflow.seq.sequences import SequenceConfig
from recflow.seq.stages import (
    FinetuneConfig,
    SequencesArtifact,
    run_comparison,
    run_downstream_splits,
    run_finetune,
    run_pretrain,
    run_sequences,
)
from recflow.seq.tasks import (
    AttributeTask,
    ColdStartTask,
    TaskSpec,
    attribute_task,
    build_tasks,
    cold_start_task,
)
from recflow.train import TrainConfig

SPEC = TaskSpec(attributes={"gender": None, "age": None}, split_seed=7)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, CanonicalDataset, SequencesArtifact]:
    root = tmp_path_factory.mktemp("seq_stages")
    small = SyntheticConfig(n_users=300, n_items=600, n_events=30_000, n_clusters=10, seed=1)
    dataset = write_dataset(generate(small), root / "dataset")
    (root / "seq").mkdir()
    setup = transfer_setup("synthetic")
    seq, metrics = run_sequences(dataset, setup, SequenceConfig(min_label=1.0), root / "seq")
    assert metrics["users"] == seq.load().sequences.height > 100
    return root, dataset, seq


def _folder(root: Path, name: str) -> Path:
    (root / name).mkdir()
    return root / name


def _same_task(a: AttributeTask | ColdStartTask, b: AttributeTask | ColdStartTask) -> None:
    assert a.name == b.name and type(a) is type(b)
    if isinstance(a, ColdStartTask):
        assert isinstance(b, ColdStartTask)
        np.testing.assert_array_equal(a.target_items, b.target_items)
        for split in ("train", "valid", "test"):
            np.testing.assert_array_equal(a.tokens[split], b.tokens[split])
            assert [r.tolist() for r in a.relevant[split]] == [
                r.tolist() for r in b.relevant[split]
            ]
        assert (a.n_negatives, a.seed) == (b.n_negatives, b.seed)
    else:
        assert isinstance(b, AttributeTask)
        assert a.classes == b.classes
        for split in ("train", "valid", "test"):
            np.testing.assert_array_equal(a.splits[split].tokens, b.splits[split].tokens)
            np.testing.assert_array_equal(a.splits[split].labels, b.splits[split].labels)


def test_stored_split_rebuilds_the_tasks_of_its_seed(world) -> None:
    root, dataset, seq = world
    splits, metrics = run_downstream_splits(seq, dataset, SPEC, _folder(root, "splits7"))
    data = seq.load()
    stored = splits.load()
    assert stored.spec == SPEC
    # the spec is stored as JSON with sorted keys: attributes in name order
    assert [r["task"] for r in metrics["tasks"]] == [
        "cold_start",
        "attribute:age",
        "attribute:gender",
    ]
    got = stored.tasks(data, max_len=6)
    users = dataset.users()
    # the split seed 7, applied by the task builders directly
    _same_task(got[0], cold_start_task(data.sequences, data.target_events, data.index, 6, seed=7))
    for task, name in zip(got[1:], ("age", "gender"), strict=True):
        _same_task(task, attribute_task(data.sequences, users, name, data.index, 6, seed=7))
    for a, b in zip(
        got,
        build_tasks(stored.spec, data.sequences, data.target_events, users, data.index, 6),
        strict=True,
    ):
        _same_task(a, b)
    # another seed puts other users in test
    other = build_tasks(TaskSpec(), data.sequences, data.target_events, users, data.index, 6)
    assert not np.array_equal(got[0].tokens["test"], other[0].tokens["test"])
    shas = {r["task"]: r["test users sha"] for r in metrics["tasks"]}
    assert shas == {t: stored.test_users_sha(t) for t in shas}


@pytest.mark.slow
def test_methods_and_baselines_are_scored_on_the_split_seeds_test_users(world) -> None:
    root, dataset, seq = world
    splits, _ = run_downstream_splits(seq, dataset, SPEC, _folder(root, "splits"))
    net = NextItNetConfig(0, channels=8, dilations=(1, 2), n_stacks=1)
    train = TrainConfig(epochs=1, device="cpu")
    pre, history = run_pretrain(
        seq, net, PretrainConfig(max_len=8, batch_size=64), train, _folder(root, "pre")
    )
    assert pre.max_len == 8 and len(history["history"]) == 1
    tuned = [
        run_finetune(
            pre, seq, splits, m, train, FinetuneConfig(batch_size=64), _folder(root, m.value)
        )[0]
        for m in (Method.FINE_ALL, Method.PETERREC_SERIAL)
    ]
    evaluation, metrics = run_comparison(seq, splits, pre, tuned, _folder(root, "comparison"))

    shared = splits.load()
    summary = {r["task"]: r for r in evaluation.table("summary")}
    assert set(summary) == {"cold_start", "attribute:gender", "attribute:age"}
    for task, row in summary.items():
        assert row["test_users_sha"] == shared.test_users_sha(task)
        for ft in tuned:  # every method row was scored on the same test users
            (scored,) = [r for r in ft.load()["rows"] if r["task"] == task]
            assert scored["test_users_sha"] == row["test_users_sha"]
    # the baselines are those of the seed-7 tasks, recomputed here from the split seed alone
    data = seq.load()
    cold = cold_start_task(data.sequences, data.target_events, data.index, 8, seed=7)
    assert summary["cold_start"]["test_users"] == len(cold.relevant["test"])
    table = evaluation.table("comparison")
    (popularity,) = [r for r in table if r["method"] == "popularity"]
    assert popularity["ndcg@5"] == pytest.approx(cold.baselines()["popularity"]["ndcg@5"])
    methods = {(r["task"], r["method"]) for r in table}
    assert {("cold_start", "fine_all"), ("attribute:age", "logreg_bag_of_items")} <= methods
    assert "test_users_sha" not in table[0]
    assert len(metrics["verdicts"]) == 3

    # fine-tunes scored on another split (seed 0) are refused, not mixed in
    seed0, _ = run_downstream_splits(
        seq, dataset, TaskSpec(attributes=SPEC.attributes), _folder(root, "splits0")
    )
    with pytest.raises(ValueError, match="other test users"):
        run_comparison(seq, seed0, pre, tuned, _folder(root, "comparison0"))
