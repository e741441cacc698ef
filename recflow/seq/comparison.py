"""The evaluation table: every fine-tuning method (and training from scratch) on one task.

One row per method: the task's test metrics, trained parameters, their share of
FineAll's trained parameters, and training time; plus one row per non-neural baseline.
PeterRec's Table 3 is the reference: PeterRec within ~0.002 of FineAll while training
0.16–9.4% of its parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from torch import nn

from recflow.progress import ProgressFn
from recflow.seq.finetune import (
    FinetuneSettings,
    LabelledSequences,
    Method,
    SequenceClassifier,
    finetune,
    prepare_finetune,
)
from recflow.seq.nextitnet import NextItNet
from recflow.train import TrainConfig


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
    the shared loop (validation metrics each epoch), and score it on the test split.

    A task with a ``finetune_settings`` attribute (``FinetuneSettings``, e.g. ``AttributeTask``)
    chooses the readout, item dropout and minimum steps per epoch, and, when
    ``train_config`` selects epochs at all, the validation number that selects them;
    other tasks (cold start) run PeterRec's defaults with ``train_config`` as given."""
    method = Method(method)
    settings = getattr(task, "finetune_settings", None)
    if not isinstance(settings, FinetuneSettings):
        settings = FinetuneSettings()
    if train_config.select_by is not None and settings.select_by is not None:
        train_config = replace(
            train_config,
            select_by=f"valid_{settings.select_by}",
            select_mode=settings.select_mode,
        )
    model = prepare_finetune(
        pretrained,
        method,
        task.n_outputs,
        seed=train_config.seed,
        reduction=reduction,
        readout=settings.readout,
    )

    def on_valid(m: nn.Module) -> dict[str, float]:
        return {f"valid_{k}": v for k, v in task.evaluate(m, "valid").items()}

    result = finetune(
        model,
        task.train,
        train_config,
        batch_size=batch_size,
        min_steps_per_epoch=settings.min_steps_per_epoch,
        item_dropout=settings.item_dropout,
        evaluate=on_valid,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
    )
    row = {
        "task": task.name,
        "method": method.value,
        **task.evaluate(model, "test"),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
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
    book = (
        "best_epoch",
        "epochs_run",
        "trained_params",
        "share_of_fine_all",
        "total_params",
        "train_s",
    )
    metric_cols: list[str] = []
    for r in rows:
        metric_cols += [k for k in r if k not in {"task", "method", *book, *metric_cols}]
    cols = ["task", "method", *metric_cols, *book]
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], infer_schema_length=None)


def versus_best_baseline(table: pl.DataFrame, primary: Mapping[str, str]) -> pl.DataFrame:
    """Add ``primary_metric`` and ``vs_best_baseline``: each row's primary metric minus
    that of the task's best baseline row (baselines are the rows with no trained
    parameters), so a positive number means the row beats every simple baseline."""
    out = []
    for task, metric in primary.items():
        part = table.filter(pl.col("task") == task)
        base = part.filter(pl.col("trained_params").is_null()).get_column(metric)
        best = base.max() if base.len() else None
        out.append(
            part.with_columns(
                pl.lit(metric).alias("primary_metric"),
                (pl.col(metric) - best).alias("vs_best_baseline")
                if best is not None
                else pl.lit(None, dtype=pl.Float64).alias("vs_best_baseline"),
            )
        )
    rest = table.filter(~pl.col("task").is_in(list(primary)))
    if rest.height:
        out.append(rest)
    return pl.concat(out, how="diagonal_relaxed")


def baseline_verdicts(table: pl.DataFrame) -> list[str]:
    """One plain sentence per task: the best row, and which trained rows beat the best
    simple baseline on the primary metric (needs ``versus_best_baseline``'s columns)."""
    lines = []
    for task in table.get_column("task").unique(maintain_order=True).to_list():
        part = table.filter(pl.col("task") == task)
        metric = part.get_column("primary_metric")[0]
        top = part.sort(metric, descending=True, nulls_last=True).row(0, named=True)
        trained = part.filter(pl.col("trained_params").is_not_null())
        bases = part.filter(pl.col("trained_params").is_null())
        base = bases.sort(metric, descending=True).row(0, named=True) if bases.height else None
        winners = trained.filter(pl.col("vs_best_baseline") > 0).get_column("method").to_list()
        best_text = f"best {metric}: {top['method']} {top[metric]:.4f}"
        if base is None:
            lines.append(f"{task}: {best_text}; no baseline")
        elif winners:
            lines.append(
                f"{task}: {best_text}; beat the best baseline ({base['method']} "
                f"{base[metric]:.4f}): {', '.join(winners)}"
            )
        else:
            lines.append(
                f"{task}: {best_text}; no trained method beats the best baseline "
                f"({base['method']} {base[metric]:.4f})"
            )
    return lines


def baseline_rows(task: Task, seed: int = 0) -> list[dict[str, Any]]:
    """The task's non-neural baselines as table rows (no trained parameters)."""
    return [
        {"task": task.name, "method": name, **scores}
        for name, scores in task.baselines("test", seed).items()
    ]
