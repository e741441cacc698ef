"""The MKT stages (Guan et al. 2024) as plain functions, one per ``mkt`` asset:

    run_feature_tables   canonical dataset → feature-aligned tables       (FeatureTablesArtifact)
    run_mem              tables → MEM pretrained on source + target      (MemArtifact)
    run_tem              tables + MEM → TEM fine-tuned on target, MEM frozen (TemArtifact)
    run_comparison       tables + MEM + TEM → baselines, ablations, seeds (EvaluationArtifact)

Each writes into the folder it is given and returns the artifact naming that folder with
what it measured. Selection protocol of a training stage (``RunConfig``): the latest
``validation_share`` of the training impressions becomes split "valid"; the loop keeps
the best epoch by ``select_by`` on the target entity's valid rows.

The comparison is an experiment with its own training settings (``ExperimentConfig``)
and several seeds, baselines and ablations, which it trains itself. It *consumes* the MEM
and TEM artifacts twice over: their architecture is the one every MKT variant of the
experiment uses, and when their run settings are the experiment's (same epochs, lr,
weight decay, batch size, validation, seed among the seeds) they are that seed's MKT
model instead of a second, identical training run. ``reuse_blockers`` says why not
otherwise, and the comparison then trains that seed's MEM and TEM itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch

from recflow.artifacts import Artifact, EvaluationArtifact
from recflow.data.dataset import CanonicalDataset
from recflow.mkt.batches import predict_scores
from recflow.mkt.checkpoint import load_mem, load_tem, save_mem, save_tem
from recflow.mkt.experiment import (
    ExperimentConfig,
    RunConfig,
    evaluate_target,
    run_experiment,
    train_config,
)
from recflow.mkt.features import FeatureMapping
from recflow.mkt.mem import MemConfig, MultiEntityModel
from recflow.mkt.tables import FeatureTables, TableConfig, build_feature_tables
from recflow.mkt.tem import TargetEntityModel, TemConfig
from recflow.mkt.training import finetune_tem, pretrain_mem, validation_gauc
from recflow.progress import ProgressFn
from recflow.store import read_json
from recflow.train import EvalFn, TrainResult


@dataclass(frozen=True)
class FeatureTablesArtifact(Artifact):
    """The feature-aligned tables (``FeatureTables.save``'s folder)."""

    def load(self) -> FeatureTables:
        return FeatureTables.load(self.path)


@dataclass(frozen=True)
class MemArtifact(Artifact):
    """A pretrained MEM checkpoint folder and the ``RunConfig`` it was trained with."""

    run: dict[str, Any]

    def load(self) -> MultiEntityModel:
        return load_mem(self.path)

    def run_config(self) -> RunConfig:
        return RunConfig(**self.run)


@dataclass(frozen=True)
class TemArtifact(Artifact):
    """A fine-tuned TEM checkpoint folder (with the frozen MEM it gates, as a copy) and
    the ``RunConfig`` it was trained with."""

    run: dict[str, Any]

    def load(self) -> TargetEntityModel:
        return load_tem(self.path)

    def run_config(self) -> RunConfig:
        return RunConfig(**self.run)

    def tem_config(self) -> TemConfig:
        """The architecture it was built with (as configured, before loading)."""
        config = read_json(Path(self.path) / "model.json")["config"]
        return TemConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})


@dataclass
class TemResult:
    """What fine-tuning TEM measured: the training run and the target test metrics."""

    train: TrainResult
    test: dict[str, Any]  # evaluate_target's AUC, GAUC, users used/skipped, buckets


@dataclass
class ComparisonResult:
    """The comparison's tables and whether it scored the MEM/TEM assets as one seed's MKT."""

    per_seed: pl.DataFrame
    summary: pl.DataFrame
    training: list[dict[str, Any]]  # one row per training stage (TRAINING_COLUMNS)
    reused_seed: int | None  # the seed whose MKT models are the assets'; None = retrained
    reuse_blockers: list[str]  # why the assets were not reused (empty when they were)


def run_feature_tables(
    dataset: CanonicalDataset, mapping: FeatureMapping, config: TableConfig, out_dir: Path
) -> tuple[FeatureTablesArtifact, dict[str, Any]]:
    """Build the feature-aligned tables of ``dataset`` into ``out_dir``; the summary
    (``FeatureTables.summary``) is the metrics."""
    tables = build_feature_tables(
        dataset.scan_interactions(), dataset.items(), dataset.users(), mapping, config
    )
    tables.save(out_dir)
    return FeatureTablesArtifact(path=str(out_dir)), tables.summary()


def _selection(tables: FeatureTables, run: RunConfig) -> tuple[FeatureTables, EvalFn | None]:
    """The run's tables and validation scorer: with a validation share the tables gain a
    "valid" split scored on the target entity; with share 0 the tables as they are."""
    if run.validation_share <= 0:
        return tables, None
    split = tables.with_validation(run.validation_share)
    return split, validation_gauc(split, tables.mapping.target_entity)


def run_mem(
    tables: FeatureTables,
    arch: MemConfig,
    run: RunConfig,
    out_dir: Path,
    *,
    device: str = "auto",
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[MemArtifact, TrainResult]:
    """Pretrain MEM on both entities' training rows and save it into ``out_dir``."""
    tables, evaluate = _selection(tables, run)
    model, res = pretrain_mem(
        tables,
        arch,
        train_config(run, device),
        run.batch_size,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
        evaluate=evaluate,
    )
    save_mem(model.cpu(), out_dir)
    return MemArtifact(path=str(out_dir), run=asdict(run)), res


def run_tem(
    tables: FeatureTables,
    mem: MultiEntityModel,
    arch: TemConfig,
    run: RunConfig,
    out_dir: Path,
    *,
    device: str = "auto",
    checkpoint_dir: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[TemArtifact, TemResult]:
    """Fine-tune TEM on the target's training rows with ``mem`` frozen, score it on the
    target's test rows, and save it into ``out_dir``. TEM's embedding size is MEM's
    (its gates merge MEM's vectors into its own), whatever ``arch.dim`` says."""
    arch = dataclasses.replace(arch, dim=mem.config.dim)
    tables, evaluate = _selection(tables, run)
    model, res = finetune_tem(
        tables,
        mem,
        arch,
        train_config(run, device),
        run.batch_size,
        checkpoint_dir=checkpoint_dir,
        on_progress=on_progress,
        evaluate=evaluate,
    )
    target = tables.mapping.target_entity
    scores = predict_scores(model, tables.tensors("test", target))
    test = evaluate_target(tables.rows("test", target), scores)
    save_tem(model.cpu(), out_dir)
    return TemArtifact(path=str(out_dir), run=asdict(run)), TemResult(train=res, test=test)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def reuse_blockers(
    mem: MemArtifact,
    tem: TemArtifact,
    config: ExperimentConfig,
    mem_model: MultiEntityModel,
    tem_model: TargetEntityModel,
) -> list[str]:
    """Why the MEM/TEM assets cannot stand for one seed's MKT in the comparison: their
    seed is not among its seeds, a run setting differs from the experiment's, or the TEM
    was fine-tuned on another MEM. Empty when they can."""
    seed = mem.run_config().seed
    out = []
    if seed not in config.seeds:
        out.append(f"mkt_mem's seed {seed} is not among the comparison's seeds {config.seeds}")
    for name, got, want in (
        ("mkt_mem", mem.run_config(), config.run(config.pretrain_epochs, seed)),
        ("mkt_tem", tem.run_config(), config.run(config.target_epochs, seed)),
    ):
        for field in dataclasses.fields(RunConfig):
            g, w = getattr(got, field.name), getattr(want, field.name)
            if g != w:
                out.append(f"{name}'s {field.name} is {g!r}, the comparison's {w!r}")
    if not _same_weights(tem_model.mem, mem_model):
        out.append("mkt_tem was fine-tuned on another MEM than mkt_mem's")
    return out


def run_comparison(
    tables: FeatureTables,
    mem: MemArtifact,
    tem: TemArtifact,
    config: ExperimentConfig,
    out_dir: Path,
    *,
    checkpoint_root: Path | None = None,
    on_progress: ProgressFn | None = None,
) -> tuple[EvaluationArtifact, ComparisonResult]:
    """MKT against the baselines and ablations over ``config.seeds``, every MKT variant
    with the MEM/TEM assets' architecture; writes ``per_seed.parquet`` (one row per model
    and seed) and ``summary.parquet`` (mean ± std, lift over the MLP) into ``out_dir``."""
    mem_model, tem_model = mem.load(), tem.load()
    config = dataclasses.replace(config, mem=mem_model.config, tem=tem.tem_config())
    uses_mkt = {"mkt", "mkt_without_tem_finetuning"} & {*config.models, *config.ablations}
    blockers = reuse_blockers(mem, tem, config, mem_model, tem_model) if uses_mkt else []
    seed = mem.run_config().seed if uses_mkt and not blockers else None
    pretrained = {} if seed is None else {seed: (mem_model, tem_model)}
    result = run_experiment(
        tables,
        config,
        checkpoint_root=checkpoint_root,
        on_progress=on_progress,
        pretrained=pretrained,
    )
    per_seed, summary = result.table(), result.summary()
    per_seed.write_parquet(out_dir / "per_seed.parquet")
    summary.write_parquet(out_dir / "summary.parquet")
    return EvaluationArtifact(path=str(out_dir)), ComparisonResult(
        per_seed, summary, result.training, seed, blockers
    )
