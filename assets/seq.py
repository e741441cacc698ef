"""The ``sequences`` and ``peterrec`` groups: NextItNet pretraining and PeterRec fine-tuning.

seq_sequences → seq_downstream_splits, nextitnet_pretrain → finetune_{fine_all, fine_last,
fine_cls, peterrec_serial, peterrec_parallel, scratch} → finetune_comparison. Yuan et al.,
SIGIR 2020. Each asset loads its inputs, calls one stage of ``recflow.seq.stages`` and
saves the folder it wrote; how each dataset becomes a source and a target domain is the
transfer setup its ``DatasetSpec`` names (``recflow.seq.domains``).
"""

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from assets.config import config_class, library_kwargs
from assets.datasets import dataset_key
from assets.groups import group_name
from assets.metadata import line_chart, markdown_table
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.artifacts import Artifact, EvaluationArtifact
from recflow.data.dataset import DatasetArtifact
from recflow.data.registry import DATASET_SPECS
from recflow.seq import stages
from recflow.seq.domains import TransferSetup
from recflow.seq.finetune import Method
from recflow.seq.nextitnet import NextItNetConfig
from recflow.seq.pretrain import PretrainConfig
from recflow.seq.sequences import SequenceConfig
from recflow.seq.stages import (
    DownstreamSplitsArtifact,
    FinetuneArtifact,
    PretrainedArtifact,
    SequencesArtifact,
)
from recflow.seq.tasks import TaskSpec
from recflow.train import TrainConfig

CODE_VERSION = "2"
DEVICE = "the torch_device resource picks the device"
DOWNSTREAM = "a setting of the downstream tasks: the seq_downstream_splits config"

NextItNetPretrainConfig = config_class(
    "NextItNetPretrainConfig",
    NextItNetConfig,
    PretrainConfig,
    TrainConfig,
    exclude={
        "n_tokens": "the size of the sequences' item map",
        "device": DEVICE,
        "select_by": "pretraining keeps its last epoch",
        "select_mode": "pretraining keeps its last epoch",
        "patience": "pretraining keeps its last epoch",
    },
    doc="Network shape (NextItNetConfig), data (PretrainConfig) and optimisation "
    "(TrainConfig) of next-item pretraining; defaults are the library's.",
)


def finetune_config(method: Method) -> type[dg.Config]:
    """Fine-tuning settings of one method: ``TrainConfig`` with the method's step size
    (``FINETUNE_LR``) and ``FinetuneConfig``; ``seed`` seeds the training, the user split
    is ``seq_downstream_splits``' ``split_seed``."""
    return config_class(
        f"Finetune{method.value.title().replace('_', '')}Config",
        TrainConfig,
        stages.FinetuneConfig,
        exclude={
            "device": DEVICE,
            "select_by": "each task's validation metric (recflow.seq.stages.run_finetune)",
            "select_mode": "each task's FinetuneSettings",
        },
        overrides={"lr": stages.FINETUNE_LR[method], "patience": stages.FinetuneConfig.patience},
    )


def sequences_config(setup: TransferSetup) -> type[dg.Config]:
    """The ``seq_sequences`` config of one dataset: which events form sequences and the
    dataset's domains, with its defaults from ``recflow.seq.domains.TRANSFER_SETUPS``."""
    return config_class(
        "SeqSequencesConfig",
        SequenceConfig,
        TransferSetup,
        exclude={
            "entity": "the source domain is source_entity / target_genres",
            "split": f"{setup.split} split: the kind of domains this dataset's data has",
            "attributes": DOWNSTREAM,
            "n_negatives": DOWNSTREAM,
        },
        overrides={
            "source_entity": setup.source_entity,
            "target_entity": setup.target_entity,
            "target_genres": list(setup.target_genres),
            "min_label": setup.min_label,
        },
    )


def splits_config(setup: TransferSetup) -> type[dg.Config]:
    """The ``seq_downstream_splits`` config: the tasks (``TaskSpec``) with the dataset's
    attributes and negatives, and the one seed that splits users for every method."""
    return config_class(
        "SeqDownstreamSplitsConfig",
        TaskSpec,
        overrides={"attributes": setup.attributes, "n_negatives": setup.n_negatives},
    )


def _round(rows: list[dict]) -> list[dict]:
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def _key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, name])


A = TypeVar("A", bound=Artifact)


def _stored(
    store: StoreResource, name: str, stage: Callable[[Path], tuple[A, dict[str, Any]]]
) -> tuple[A, dict[str, Any]]:
    """Run ``stage`` into a new store version of ``name`` (deleted if it fails); its
    artifact, naming the folder where the version landed, and its metrics."""
    final, (artifact, metrics) = store.in_new_version(name, stage)
    return dataclasses.replace(artifact, path=final), metrics


def build_seq_assets(dataset: str) -> list[dg.AssetsDefinition]:
    """The sequences → splits, pretrain → fine-tunes → comparison chain of ``dataset``."""
    return [
        sequences_asset(dataset),
        splits_asset(dataset),
        pretrain_asset(dataset),
        *(finetune_asset(dataset, m) for m in Method),
        comparison_asset(dataset),
    ]


def sequences_asset(dataset: str) -> dg.AssetsDefinition:
    """``<dataset>/seq_sequences``: source sequences, target events and the item map."""
    setup = DATASET_SPECS[dataset].transfer()
    seq_config = sequences_config(setup)
    domains = (
        f"{setup.source_entity} → {setup.target_entity}"
        if setup.split == "entity"
        else f"target genres {list(setup.target_genres)} (as the data spells them)"
    )

    @dg.asset(
        key=_key(dataset, "seq_sequences"),
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name=group_name(dataset, "sequences"),
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description=(
            "Per-user source-domain behaviour sequences sorted by (timestamp, item_id), the "
            "leave-last-out split by time, the target-domain events and the item-id map. "
            f"Domains: {setup.split} split, {domains}."
        ),
    )
    def seq_sequences(
        config: seq_config, dataset_handle: DatasetArtifact, store: StoreResource
    ) -> dg.Output[SequencesArtifact]:
        chosen = TransferSetup(**library_kwargs(config, TransferSetup, split=setup.split))
        events = SequenceConfig(**library_kwargs(config, SequenceConfig))
        try:
            seq, metrics = _stored(
                store,
                f"{dataset}/seq_sequences",
                lambda out: stages.run_sequences(dataset_handle.load(), chosen, events, out),
            )
        except ValueError as e:
            raise dg.Failure(f"{dataset}/seq_sequences: {e}") from e
        return dg.Output(
            seq,
            metadata={
                "dagster/row_count": metrics["users"],
                **metrics,
                "path": dg.MetadataValue.path(seq.path),
            },
        )

    return seq_sequences


def splits_asset(dataset: str) -> dg.AssetsDefinition:
    """``<dataset>/seq_downstream_splits``: the downstream tasks and their one user split."""
    split_config = splits_config(DATASET_SPECS[dataset].transfer())

    @dg.asset(
        key=_key(dataset, "seq_downstream_splits"),
        ins={
            "seq": dg.AssetIn(key=_key(dataset, "seq_sequences")),
            "dataset_handle": dg.AssetIn(key=dataset_key(dataset)),
        },
        group_name=group_name(dataset, "sequences"),
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description=(
            "The downstream tasks (cold start, user attributes) and their one user split "
            "into train/valid/test, seeded once: every fine-tune and every baseline is "
            "scored on these users. Builds every task, so data that cannot feed one fails "
            "here in seconds, naming the setting to change."
        ),
    )
    def seq_downstream_splits(
        config: split_config,
        seq: SequencesArtifact,
        dataset_handle: DatasetArtifact,
        store: StoreResource,
    ) -> dg.Output[DownstreamSplitsArtifact]:
        spec = TaskSpec(**library_kwargs(config, TaskSpec))
        try:
            splits, metrics = _stored(
                store,
                f"{dataset}/seq_downstream_splits",
                lambda out: stages.run_downstream_splits(seq, dataset_handle.load(), spec, out),
            )
        except ValueError as e:
            raise dg.Failure(f"{dataset}/seq_downstream_splits: {e}") from e
        return dg.Output(
            splits,
            metadata={
                "split seed": spec.split_seed,
                "tasks": markdown_table(metrics["tasks"]),
                "path": dg.MetadataValue.path(splits.path),
            },
        )

    return seq_downstream_splits


def pretrain_asset(dataset: str) -> dg.AssetsDefinition:
    """``<dataset>/nextitnet_pretrain``: NextItNet pretrained on the source sequences."""

    @dg.asset(
        key=_key(dataset, "nextitnet_pretrain"),
        ins={"seq": dg.AssetIn(key=_key(dataset, "seq_sequences"))},
        group_name=group_name(dataset, "peterrec"),
        kinds={"torch"},
        pool="gpu",
        code_version=CODE_VERSION,
        description=(
            "NextItNet (dilated causal convolutions, residual blocks with layer norm) "
            "pretrained by next-item prediction on the source sequences (split by time). "
            "Weights (weights-only state dict) + JSON config + item-id map; resumes from "
            "the last epoch after an interruption."
        ),
    )
    def nextitnet_pretrain(
        context: dg.AssetExecutionContext,
        config: NextItNetPretrainConfig,
        seq: SequencesArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[PretrainedArtifact]:
        device = torch_device.resolve(context.log)
        name = f"{dataset}/nextitnet_pretrain"
        key = stages.pretrain_resume_key(seq, config.model_dump())
        resume_dir = store.store().artifact_dir(name) / f"_resume-{key}"
        pre, metrics = _stored(
            store,
            name,
            lambda out: stages.run_pretrain(
                seq,
                NextItNetConfig(**library_kwargs(config, NextItNetConfig, n_tokens=0)),
                PretrainConfig(**library_kwargs(config, PretrainConfig)),
                TrainConfig(**library_kwargs(config, TrainConfig, device=str(device))),
                out,
                resume_dir=resume_dir,
                on_progress=log_progress(context, "pretrain epoch"),
            ),
        )
        shutil.rmtree(resume_dir, ignore_errors=True)
        return dg.Output(
            pre, metadata=_pretrain_metadata(metrics) | {"path": dg.MetadataValue.path(pre.path)}
        )

    return nextitnet_pretrain


def finetune_asset(dataset: str, method: Method) -> dg.AssetsDefinition:
    """``<dataset>/finetune_<method>``: one method fine-tuned on every downstream task."""
    method_config = finetune_config(method)

    @dg.asset(
        key=_key(dataset, f"finetune_{method.value}"),
        ins={
            "pre": dg.AssetIn(key=_key(dataset, "nextitnet_pretrain")),
            "seq": dg.AssetIn(key=_key(dataset, "seq_sequences")),
            "splits": dg.AssetIn(key=_key(dataset, "seq_downstream_splits")),
        },
        group_name=group_name(dataset, "peterrec"),
        kinds={"torch"},
        pool="gpu",
        code_version=CODE_VERSION,
        description=(
            f"{stages.METHOD_TITLES[method]}. Fine-tuned on every downstream task of the "
            "dataset, on the users of seq_downstream_splits."
        ),
    )
    def _finetune(
        context: dg.AssetExecutionContext,
        config: method_config,
        pre: PretrainedArtifact,
        seq: SequencesArtifact,
        splits: DownstreamSplitsArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[FinetuneArtifact]:
        device = torch_device.resolve(context.log)
        # patience goes with each task's selection metric: run_finetune sets both
        train = TrainConfig(
            **library_kwargs(config, TrainConfig, device=str(device), patience=None)
        )
        tuned, metrics = _stored(
            store,
            f"{dataset}/finetune_{method.value}",
            lambda out: stages.run_finetune(
                pre,
                seq,
                splits,
                method,
                train,
                stages.FinetuneConfig(**library_kwargs(config, stages.FinetuneConfig)),
                out,
                on_progress=lambda task: log_progress(context, f"{method.value} {task} epoch"),
            ),
        )
        rows = metrics["rows"]
        return dg.Output(
            tuned,
            metadata={
                "test metrics": markdown_table(_round(rows)),
                "trained parameters": int(rows[0]["trained_params"]),
                "share of parameters trained": rows[0]["trained_params"] / rows[0]["total_params"],
                "path": dg.MetadataValue.path(tuned.path),
            },
        )

    return _finetune


def comparison_asset(dataset: str) -> dg.AssetsDefinition:
    """``<dataset>/finetune_comparison``: every method next to the baselines."""

    @dg.asset(
        key=_key(dataset, "finetune_comparison"),
        ins={
            "seq": dg.AssetIn(key=_key(dataset, "seq_sequences")),
            "splits": dg.AssetIn(key=_key(dataset, "seq_downstream_splits")),
            "pre": dg.AssetIn(key=_key(dataset, "nextitnet_pretrain")),
            **{m.value: dg.AssetIn(key=_key(dataset, f"finetune_{m.value}")) for m in Method},
        },
        group_name=group_name(dataset, "peterrec"),
        kinds={"polars", "sklearn"},
        code_version=CODE_VERSION,
        description=(
            "One table per dataset: every fine-tuning method and training from scratch on "
            "every task (test metrics, trained parameters, share of FineAll's, training "
            "time), with majority / logistic-regression / popularity baselines, all on the "
            "test users of seq_downstream_splits. Paper: PeterRec within ~0.002 of FineAll "
            "while training 0.16–9.4% of its parameters."
        ),
    )
    def finetune_comparison(
        store: StoreResource,
        seq: SequencesArtifact,
        splits: DownstreamSplitsArtifact,
        pre: PretrainedArtifact,
        **tuned: FinetuneArtifact,
    ) -> dg.Output[EvaluationArtifact]:
        evaluation, metrics = _stored(
            store,
            f"{dataset}/finetune_comparison",
            lambda out: stages.run_comparison(
                seq, splits, pre, [tuned[m.value] for m in Method], out
            ),
        )
        return dg.Output(
            evaluation,
            metadata={
                "comparison": markdown_table(_round(metrics["table"].to_dicts())),
                "verdict": dg.MetadataValue.md("\n".join(f"- {v}" for v in metrics["verdicts"])),
                "path": dg.MetadataValue.path(str(evaluation.folder / "comparison.parquet")),
            },
        )

    return finetune_comparison


def _pretrain_metadata(metrics: dict) -> dict:
    """Loss and validation curves and the timings of one pretraining."""
    history = metrics["history"]
    return {
        "loss": line_chart(
            {"train loss": [r["loss"] for r in history]}, "next-item loss", "epoch", "loss"
        ),
        "valid (99 sampled negatives)": line_chart(
            {k: [r[k] for r in history] for k in ("hr@10", "ndcg@10", "mrr")},
            "validation",
            "epoch",
            "metric",
        ),
        "final valid hr@10": float(history[-1]["hr@10"]),
        "parameters": metrics["total_params"],
        "sequences per second": metrics["samples_per_s"],
        "train seconds": metrics["elapsed_s"],
        "device": metrics["device"],
        "resumed from epoch": metrics["resumed_from_epoch"],
    }
