"""The evaluation table: every fine-tuning method (and training from scratch) on one task.

One row per method: the task's test metrics, trained parameters, their share of
FineAll's trained parameters, and training time; plus one row per non-neural baseline.
PeterRec's Table 3 is the reference: PeterRec within ~0.002 of FineAll while training
0.16–9.4% of its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from torch import nn

from recflow.progress import ProgressFn
from recflow.seq.finetune import (
    LabelledSequences,
    Method,
    SequenceClassifier,
    finetune,
    prepare_finetune,
)
from recflow.seq.nextitnet import NextItNet
from recflow.train import TrainConfig

ALL_METHODS = tuple(Method)


@dataclass
class Comparison:
    """The table (one row per method or baseline) and each method's per-epoch history."""

    table: pl.DataFrame
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)


class Task(Protocol):
    name: str
    primary_metric: str

    @property
    def n_outputs(self) -> int: ...

    @property
    def train(self) -> LabelledSequences: ...

    def evaluate(self, model: nn.Module, split: str = "test") -> dict[str, float]: ...

    def baselines(self, split: str = "test", seed: int = 0) -> dict[str, dict[str, float]]: ...


@dataclass
class MethodRun:
    """One method fine-tuned on one task: its test row, per-epoch history and model."""

    row: dict[str, Any]
    history: list[dict[str, float]]
    model: SequenceClassifier


def run_method(
    pretrained: NextItNet,
    task: Task,
    method: Method | str,
    train_config: TrainConfig,
    *,
    batch_size: int = 128,
    reduction: int = 4,
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> MethodRun:
    """Prepare ``method`` on a copy of ``pretrained``, fine-tune it on ``task.train`` with
    the shared loop (validation metrics each epoch), and score it on the test split."""
    method = Method(method)
    model = prepare_finetune(
        pretrained, method, task.n_outputs, seed=train_config.seed, reduction=reduction
    )

    def on_valid(m: nn.Module) -> dict[str, float]:
        return {f"valid_{k}": v for k, v in task.evaluate(m, "valid").items()}

    result = finetune(
        model,
        task.train,
        train_config,
        batch_size=batch_size,
        evaluate=on_valid,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
    )
    row = {
        "task": task.name,
        "method": method.value,
        **task.evaluate(model, "test"),
        "trained_params": result.trained_params,
        "total_params": result.total_params,
        "train_s": result.elapsed_s,
    }
    return MethodRun(row, result.history, model)


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """Method and baseline rows of one or more tasks as one table, with each method's
    share of FineAll's trained parameters (per task)."""
    rows = [dict(r) for r in rows]
    fine_all = {
        r["task"]: r["trained_params"] for r in rows if r["method"] == Method.FINE_ALL.value
    }
    for r in rows:
        trained, base = r.get("trained_params"), fine_all.get(r["task"])
        r["share_of_fine_all"] = trained / base if base and trained is not None else None
    book = ("trained_params", "share_of_fine_all", "total_params", "train_s")
    metric_cols: list[str] = []
    for r in rows:
        metric_cols += [k for k in r if k not in {"task", "method", *book, *metric_cols}]
    cols = ["task", "method", *metric_cols, *book]
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], infer_schema_length=None)


def baseline_rows(task: Task, seed: int = 0) -> list[dict[str, Any]]:
    """The task's non-neural baselines as table rows (no trained parameters)."""
    return [
        {"task": task.name, "method": name, **scores}
        for name, scores in task.baselines("test", seed).items()
    ]


def compare_methods(
    pretrained: NextItNet,
    task: Task,
    train_config: TrainConfig,
    *,
    methods: Sequence[Method | str] = ALL_METHODS,
    lr_by_method: Mapping[str, float] | None = None,
    batch_size: int = 128,
    reduction: int = 4,
    on_progress: ProgressFn | None = None,
) -> Comparison:
    """Fine-tune every method on ``task`` and tabulate them with the baselines.

    ``lr_by_method`` overrides ``train_config.lr`` per method name (frozen-backbone
    methods often want a larger step).
    """
    rows: list[dict[str, Any]] = []
    histories: dict[str, list[dict[str, float]]] = {}
    for method in map(Method, methods):
        cfg = train_config
        if lr_by_method and method.value in lr_by_method:
            cfg = replace(cfg, lr=lr_by_method[method.value])
        run = run_method(
            pretrained,
            task,
            method,
            cfg,
            batch_size=batch_size,
            reduction=reduction,
            on_progress=on_progress,
        )
        rows.append(run.row)
        histories[method.value] = run.history
    rows += baseline_rows(task, train_config.seed)
    return Comparison(comparison_table(rows), histories)
