"""The PeterRec pipeline as stage functions: sequences → user splits → pretraining →
fine-tunes → comparison (Yuan et al., SIGIR 2020).

Each ``run_<stage>`` takes typed inputs (the artifacts of ``recflow.artifacts``), plain
config dataclasses and an optional progress callback, writes its files into the folder it
is given, and returns ``(artifact, metrics)``: the artifact names only that folder, the
metrics are numbers and rows for display. The Dagster assets in ``assets/seq.py`` only
load inputs, call a stage and save its folder in the store, so changing a method means
editing this package, never the asset layer.

Every fine-tune and every baseline is scored on the users of one ``seq_downstream_splits``
artifact: its ``splits.parquet`` assigns each user of each task to train/valid/test once,
and each result row carries the fingerprint of the test users it was scored on
(``test_users_sha``), which the comparison checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
import torch

from recflow.artifacts import Artifact, EvaluationArtifact
from recflow.data.dataset import CanonicalDataset
from recflow.progress import ProgressFn
from recflow.seq.checkpoint import load_pretrained, save_pretrained
from recflow.seq.comparison import (
    baseline_rows,
    baseline_verdicts,
    comparison_table,
    run_method,
    versus_best_baseline,
)
from recflow.seq.domains import TransferSetup
from recflow.seq.finetune import Method
from recflow.seq.nextitnet import NextItNet, NextItNetConfig
from recflow.seq.pretrain import PretrainConfig, pretrain
from recflow.seq.sequences import (
    ItemIndex,
    RaggedTokens,
    SequenceConfig,
    build_sequences,
    contexts_and_targets,
    read_sequences,
    split_by_time,
    write_sequences,
)
from recflow.seq.tasks import (
    AttributeTask,
    ColdStartTask,
    TaskSpec,
    describe_tasks,
    split_fingerprint,
    split_users,
    tasks_from_splits,
)
from recflow.store import read_json, save_state_dict, write_json
from recflow.train import TrainConfig

Task = AttributeTask | ColdStartTask

FINETUNE_LR: dict[Method, float] = {
    Method.FINE_ALL: 1e-3,
    Method.FINE_LAST: 3e-3,
    Method.FINE_CLS: 5e-3,
    Method.PETERREC_SERIAL: 5e-3,
    Method.PETERREC_PARALLEL: 5e-3,
    Method.SCRATCH: 1e-3,
}
"""Default step size of each method: methods with a frozen backbone take larger steps."""

METHOD_TITLES: dict[Method, str] = {
    Method.FINE_ALL: "FineAll: every weight of the pretrained network",
    Method.FINE_LAST: "FineLast: the last residual block and the new head",
    Method.FINE_CLS: "FineCLS: the new head only",
    Method.PETERREC_SERIAL: "PeterRec, serial patches: patches after each dilated conv, layer norms, head",
    Method.PETERREC_PARALLEL: "PeterRec, parallel patches: patches beside each dilated conv, layer norms, head",
    Method.SCRATCH: "No pretraining: the same network trained from scratch on the task",
}


@dataclass(frozen=True)
class FinetuneConfig:
    """How a method is fine-tuned on every task (optimisation: ``TrainConfig``, whose
    ``lr`` defaults to the method's ``FINETUNE_LR`` in the assets).

    Each task keeps its best epoch by its validation number (cold start NDCG@5; attributes
    log loss, as their ``FinetuneSettings`` ask) and stops after ``patience`` epochs
    without gain."""

    batch_size: int = 128
    reduction: int = 4  # patch bottleneck C → C/reduction
    patience: int = 2


# ---- artifacts -----------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceData:
    """What ``seq_sequences`` wrote: per-user source sequences, target-domain events and
    the source item-id map."""

    sequences: pl.DataFrame
    target_events: pl.DataFrame
    index: ItemIndex


@dataclass(frozen=True)
class SequencesArtifact(Artifact):
    """``sequences.parquet`` (per-user source sequences), ``sequences_by_time.parquet``
    (their leave-last-out split), ``target_events.parquet`` and ``item_index.parquet``."""

    def load(self) -> SequenceData:
        path = self.folder / "item_index.parquet"
        return SequenceData(
            read_sequences(self.folder / "sequences.parquet"),
            pl.read_parquet(self.folder / "target_events.parquet", glob=False),
            ItemIndex.from_frame(pl.read_parquet(path, glob=False), str(path)),
        )

    def by_time(self) -> pl.DataFrame:
        """The sequences split leave-last-out (``split`` column: train/valid/test)."""
        return read_sequences(self.folder / "sequences_by_time.parquet")


@dataclass(frozen=True)
class DownstreamSplits:
    """The task spec and the user split every method and baseline is scored on."""

    spec: TaskSpec
    users: pl.DataFrame  # tasks.SPLIT_COLUMNS

    def tasks(self, data: SequenceData, max_len: int) -> list[Task]:
        """The downstream tasks on these users, with windows of ``max_len`` tokens."""
        return tasks_from_splits(
            self.spec, data.sequences, data.target_events, self.users, data.index, max_len
        )

    def test_users_sha(self, task: str) -> str:
        return split_fingerprint(self.users, task, "test")


@dataclass(frozen=True)
class DownstreamSplitsArtifact(Artifact):
    """``tasks.json`` (the ``TaskSpec``) and ``splits.parquet`` (task, user_id, split, label)."""

    def load(self) -> DownstreamSplits:
        return DownstreamSplits(
            TaskSpec.from_json(read_json(self.folder / "tasks.json")),
            pl.read_parquet(self.folder / "splits.parquet", glob=False),
        )


@dataclass(frozen=True)
class PretrainedArtifact(Artifact):
    """A pretrained NextItNet (``recflow.seq.checkpoint`` layout) and the window length
    it was trained on, which every fine-tune uses."""

    max_len: int

    def load(self, device: str | torch.device = "cpu") -> tuple[NextItNet, ItemIndex, dict]:
        """(model, item index, metadata) as ``load_pretrained`` returns them."""
        return load_pretrained(self.path, device)


@dataclass(frozen=True)
class FinetuneArtifact(Artifact):
    """One method fine-tuned on every task: ``<task>/model.pt`` + ``<task>/config.json``
    and ``results.json`` (test rows and per-epoch histories)."""

    method: str

    def load(self) -> dict[str, Any]:
        """``{"rows": [...], "histories": {task: [...]}}``."""
        return read_json(self.folder / "results.json")


# ---- stages ---------------------------------------------------------------------------


def run_sequences(
    dataset: CanonicalDataset, setup: TransferSetup, config: SequenceConfig, out_dir: Path
) -> tuple[SequencesArtifact, dict[str, Any]]:
    """Split the dataset's events into source and target domain (``setup``), build the
    per-user source sequences and their split by time, and write them with the target
    events and the item-id map. Raises ``ValueError`` naming the setting to change."""
    items = dataset.items()
    genres = setup.resolved_target_genres(items) if setup.split == "genre" else ()
    source, target = setup.split_events(dataset.scan_interactions().collect(), items)
    sequences = build_sequences(source, config)
    index = ItemIndex.from_item_ids(sequences.get_column("items").explode())
    write_sequences(sequences, out_dir / "sequences.parquet")
    write_sequences(split_by_time(sequences), out_dir / "sequences_by_time.parquet")
    target.select("user_id", "item_id", "timestamp").write_parquet(
        out_dir / "target_events.parquet"
    )
    index.to_frame().write_parquet(out_dir / "item_index.parquet")
    lengths = sequences.get_column("items").list.len()
    metrics = {
        "users": sequences.height,
        "source items": index.n_items,
        "source events": int(lengths.sum()),
        "median length": float(lengths.median()),
        "target genres (data spelling)": ", ".join(genres) or "-",
        "target events": target.height,
        "target items": target.get_column("item_id").n_unique(),
        "target users": target.get_column("user_id").n_unique(),
    }
    return SequencesArtifact(str(out_dir)), metrics


def run_downstream_splits(
    sequences: SequencesArtifact, dataset: CanonicalDataset, spec: TaskSpec, out_dir: Path
) -> tuple[DownstreamSplitsArtifact, dict[str, Any]]:
    """Split each downstream task's users once (``spec.split_seed``) and build every task
    on 2-token windows (cheap) to check, before any fine-tune, that the data can feed it.
    Writes ``tasks.json`` and ``splits.parquet``; metrics: one row per task."""
    data = sequences.load()
    users = split_users(spec, data.sequences, data.target_events, dataset.users())
    write_json(spec.to_json(), out_dir / "tasks.json")
    users.write_parquet(out_dir / "splits.parquet")
    artifact = DownstreamSplitsArtifact(str(out_dir))
    splits = artifact.load()  # as every reader sees it (JSON orders the attributes)
    tasks = splits.tasks(data, max_len=2)
    rows = [
        {**row, "test users sha": splits.test_users_sha(t.name)}
        for t, row in zip(tasks, describe_tasks(tasks), strict=True)
    ]
    return artifact, {"tasks": rows}


def pretrain_resume_key(sequences: SequencesArtifact, settings: dict[str, Any]) -> str:
    """A name for the resume folder of one pretraining: the same sequences and settings
    resume each other's epochs, anything else starts afresh."""
    text = json.dumps([sequences.path, settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_pretrain(
    sequences: SequencesArtifact,
    net: NextItNetConfig,
    data: PretrainConfig,
    train: TrainConfig,
    out_dir: Path,
    *,
    resume_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[PretrainedArtifact, dict[str, Any]]:
    """Pretrain NextItNet by next-item prediction on the train part of the sequences
    split by time (validation: the valid part), and save it with the item-id map.
    ``net.n_tokens`` is replaced by the item map's size. Metrics: history and timings."""
    seq = sequences.load()
    by_time = sequences.by_time()
    train_tokens = RaggedTokens.from_items(
        by_time.filter(pl.col("split") == "train").get_column("items"), seq.index
    )
    valid = contexts_and_targets(by_time.filter(pl.col("split") == "valid"), seq.index)
    result = pretrain(
        train_tokens,
        replace(net, n_tokens=seq.index.n_tokens),
        data,
        train,
        valid=valid,
        checkpoint_dir=resume_dir,
        on_progress=on_progress,
    )
    metrics = {
        "max_len": data.max_len,
        "history": result.train.history,
        "samples_per_s": result.train.samples_per_s,
        "device": result.train.device,
    }
    save_pretrained(result.model, seq.index, out_dir, metadata=metrics)
    metrics |= {
        "total_params": result.train.total_params,
        "elapsed_s": result.train.elapsed_s,
        "resumed_from_epoch": result.train.resumed_from_epoch or 0,
    }
    return PretrainedArtifact(str(out_dir), data.max_len), metrics


def run_finetune(
    pretrained: PretrainedArtifact,
    sequences: SequencesArtifact,
    splits: DownstreamSplitsArtifact,
    method: Method | str,
    train: TrainConfig,
    config: FinetuneConfig,
    out_dir: Path,
    *,
    on_progress: Callable[[str], ProgressFn] | None = None,
) -> tuple[FinetuneArtifact, dict[str, Any]]:
    """Fine-tune ``method`` on every downstream task (the shared split, windows of the
    pretraining's ``max_len``), keeping each task's best epoch by its validation metric.

    ``train`` is used as given except ``select_by``/``patience``, set per task;
    ``on_progress(task_name)`` gives the callback for that task's epochs. Writes
    ``<task>/model.pt``, ``<task>/config.json`` and ``results.json``; metrics: ``rows``,
    one test row per task with the fingerprint of its test users."""
    method = Method(method)
    model, _, _ = pretrained.load()
    shared = splits.load()
    rows, histories = [], {}
    for task in shared.tasks(sequences.load(), pretrained.max_len):
        cfg = replace(train, select_by=f"valid_{task.primary_metric}", patience=config.patience)
        run = run_method(
            model,
            task,
            method,
            cfg,
            batch_size=config.batch_size,
            reduction=config.reduction,
            on_progress=on_progress(task.name) if on_progress else None,
        )
        folder = out_dir / task.name.replace(":", "_")
        save_state_dict(run.model.state_dict(), folder / "model.pt")
        write_json(
            {
                "method": method.value,
                "n_outputs": task.n_outputs,
                "readout": run.model.readout.value,
                "reduction": config.reduction,
                "pretrained": pretrained.path,
            },
            folder / "config.json",
        )
        rows.append({**run.row, "test_users_sha": shared.test_users_sha(task.name)})
        histories[task.name] = run.history
    write_json({"rows": rows, "histories": histories}, out_dir / "results.json")
    return FinetuneArtifact(str(out_dir), method.value), {"rows": rows}


def _scored_users(rows: list[dict[str, Any]], splits: DownstreamSplits) -> dict[str, str]:
    """Per task, the fingerprint of the test users its rows were scored on; raises when a
    row was scored on other users than ``splits`` holds (a fine-tune of another split)."""
    wanted = {t: splits.test_users_sha(t) for t in splits.users.get_column("task").unique()}
    stale = sorted(
        {(r["method"], r["task"]) for r in rows if r.get("test_users_sha") != wanted.get(r["task"])}
    )
    if stale:
        raise ValueError(
            f"fine-tunes {stale} were scored on other test users than the current "
            "seq_downstream_splits holds; materialize them again"
        )
    return wanted


def run_comparison(
    sequences: SequencesArtifact,
    splits: DownstreamSplitsArtifact,
    pretrained: PretrainedArtifact,
    finetunes: list[FinetuneArtifact],
    out_dir: Path,
    *,
    baseline_seed: int = 0,
) -> tuple[EvaluationArtifact, dict[str, Any]]:
    """Every method's test rows next to the task's baselines (majority, logistic
    regression, popularity; ``baseline_seed`` seeds their tie-breaking and solver), all
    on the same test users: ``comparison.parquet`` (one row per task × method, with the
    share of FineAll's parameters and the margin to the best baseline) and
    ``summary.parquet`` (one row per task: its test users and the verdict)."""
    shared = splits.load()
    tasks = shared.tasks(sequences.load(), pretrained.max_len)
    rows = [r for f in finetunes for r in f.load()["rows"]]
    for task in tasks:
        rows += [
            {**r, "test_users_sha": shared.test_users_sha(task.name)}
            for r in baseline_rows(task, baseline_seed)
        ]
    scored = _scored_users(rows, shared)
    table = versus_best_baseline(
        comparison_table(
            [{k: v for k, v in r.items() if k != "test_users_sha"} for r in rows]
        ).sort(["task"], maintain_order=True),
        {t.name: t.primary_metric for t in tasks},
    )
    verdicts = baseline_verdicts(table)  # one per task, in the table's task order
    verdict = dict(zip(table.get_column("task").unique(maintain_order=True), verdicts, strict=True))
    test = shared.users.filter(pl.col("split") == "test")
    summary = pl.DataFrame(
        [
            {
                "task": t.name,
                "primary_metric": t.primary_metric,
                "test_users": test.filter(pl.col("task") == t.name).height,
                "test_users_sha": scored[t.name],
                "verdict": verdict[t.name],
            }
            for t in tasks
        ]
    )
    table.write_parquet(out_dir / "comparison.parquet")
    summary.write_parquet(out_dir / "summary.parquet")
    return EvaluationArtifact(str(out_dir)), {"table": table, "verdicts": verdicts}
