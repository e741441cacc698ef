"""The ``<dataset>_mkt`` group: multi-entity knowledge transfer (Guan et al. 2024).

feature-aligned tables → MEM (pretrained on source + target) → TEM (fine-tuned on the
target, MEM frozen) → the comparison with baselines and ablations over several seeds.
Each asset loads its inputs, calls its stage in ``recflow.mkt.stages`` and turns what the
stage measured into metadata; the method lives there.
"""

import dataclasses
import shutil
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from assets.config import config_class, library_kwargs
from assets.datasets import dataset_from_handle, dataset_key
from assets.groups import group_name
from assets.metadata import line_chart, markdown_table
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.artifacts import Artifact, EvaluationArtifact
from recflow.data.dataset import DatasetArtifact
from recflow.data.validate import DataValidationError
from recflow.mkt.experiment import PAPER_TENREC, ExperimentConfig, RunConfig
from recflow.mkt.mappings import mapping_for
from recflow.mkt.mem import MemConfig
from recflow.mkt.stages import (
    FeatureTablesArtifact,
    MemArtifact,
    TemArtifact,
    run_comparison,
    run_feature_tables,
    run_mem,
    run_tem,
)
from recflow.mkt.tables import TableConfig
from recflow.mkt.tem import TemConfig
from recflow.store import ArtifactStore
from recflow.train import TrainResult

CODE_VERSION = "2"
_DEVICE = "the torch_device resource picks it"

MktTablesConfig = config_class("MktTablesConfig", TableConfig)
MktMemConfig = config_class(
    "MktMemConfig",
    MemConfig,
    RunConfig,
    doc="MEM architecture (``recflow.mkt.mem.MemConfig``) and its pretraining run "
    "(``recflow.mkt.experiment.RunConfig``).",
)
MktTemConfig = config_class(
    "MktTemConfig",
    TemConfig,
    RunConfig,
    exclude={"dim": "MEM's dim: TEM gates MEM's vectors into its own, so the sizes agree"},
    doc="TEM architecture (``recflow.mkt.tem.TemConfig``) and its fine-tuning run "
    "(``recflow.mkt.experiment.RunConfig``).",
)
MktExperimentConfig = config_class(
    "MktExperimentConfig",
    ExperimentConfig,
    exclude={
        "device": _DEVICE,
        "mem": "the mkt_mem asset's architecture (read from its artifact)",
        "tem": "the mkt_tem asset's architecture (read from its artifact)",
        "baseline": "the baselines' sizes are BaselineConfig's, equal to MEM/TEM's defaults",
    },
    doc="The comparison's own experiment settings (``recflow.mkt.experiment."
    "ExperimentConfig``): seeds, models, ablations, references, and the training settings "
    "every model of the experiment shares.",
)


def mkt_key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, f"mkt_{name}"])


A = TypeVar("A", bound=Artifact)


def _published(artifact: A, tmp: Path) -> A:
    """``artifact`` (written into the store's temporary folder) at its final version path."""
    return dataclasses.replace(artifact, path=str(ArtifactStore.final_path(tmp)))


def _checkpoint_dir(context: dg.AssetExecutionContext, store: StoreResource, what: str) -> Path:
    """Per-run checkpoints: a re-execution of a failed run (same root run) resumes."""
    run = context.run
    return Path(store.root) / "_checkpoints" / what / (run.root_run_id or run.run_id)


def _training_metadata(res: TrainResult) -> dict[str, Any]:
    return {
        "loss": line_chart(
            {"loss": [r["loss"] for r in res.history]}, "training loss", "epoch", "loss"
        ),
        "samples_per_s": res.samples_per_s,
        "trained_params": res.trained_params,
        "total_params": res.total_params,
        "device": res.device,
        "resumed_from_epoch": -1 if res.resumed_from_epoch is None else res.resumed_from_epoch,
        "epochs_run": len(res.history),
        **({} if res.best_epoch is None else {"best_epoch": res.best_epoch}),
        **({} if res.best_value is None else {"valid GAUC (best epoch)": res.best_value}),
    }


def _metric_rows(summary: Any) -> list[dict[str, Any]]:
    rows = []
    for r in summary.to_dicts():
        row = {
            "model": r["model"],
            "seeds": r["seeds"],
            "AUC": f"{r['auc_mean']:.4f} ± {r['auc_std'] or 0:.4f}",
            "GAUC": f"{r['gauc_mean']:.4f} ± {r['gauc_std'] or 0:.4f}",
            "GAUC lift": f"{r.get('gauc_lift', 0.0):+.4f}",
        }
        for b in ("0-10", "10-30", ">30"):
            v = r.get(f"gauc[{b}]_mean")
            row[f"GAUC {b}"] = "n/a" if v is None else f"{v:.4f}"
        rows.append(row)
    return rows


def _throughput_rows(training: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("stage", "seed", "samples_per_s", "trained_params", "total_params", "reused")
    return [{k: r[k] for k in keys} for r in training]


def build_mkt_assets(dataset: str) -> list[dg.AssetsDefinition]:
    """Feature tables, MEM, TEM and the comparison of ``dataset`` (its mapping must be
    declared in ``recflow.mkt.mappings``)."""
    mapping = mapping_for(dataset)
    tables_key, mem_key, tem_key = (mkt_key(dataset, n) for n in ("feature_tables", "mem", "tem"))
    group = group_name(dataset, "mkt")

    @dg.asset(
        key=tables_key,
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name=group,
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description=(
            f"Feature-aligned impressions of {mapping.source_entity} (source) and "
            f"{mapping.target_entity} (target): user profile, behaviour sequences per entity, "
            "entity-shared and entity-specific features, time-ordered 80/20 split, codes "
            "fitted on train. The column → group mapping is shown in the metadata."
        ),
    )
    def feature_tables(
        config: MktTablesConfig, dataset_handle: DatasetArtifact, store: StoreResource
    ) -> dg.Output[FeatureTablesArtifact]:
        artifacts = store.store()
        try:
            with artifacts.new_version(f"{dataset}/mkt_feature_tables") as tmp:
                table_config = TableConfig(**library_kwargs(config, TableConfig))
                ds = dataset_from_handle(dataset_handle)
                handle, summary = run_feature_tables(ds, mapping, table_config, tmp)
        except DataValidationError as err:
            meta = {"file": err.file, "column": err.column or "", "rows": err.rows}
            raise dg.Failure(description=str(err), metadata=meta) from err
        handle = _published(handle, tmp)
        groups = [{"group": g, "columns": ", ".join(c)} for g, c in summary["groups"].items()]
        vocab = [{"column": k, "codes": v} for k, v in summary["vocab_sizes"].items()]
        return dg.Output(
            handle,
            metadata={
                "path": dg.MetadataValue.path(handle.path),
                "dagster/row_count": summary["rows"],
                "feature groups": markdown_table(groups),
                "rows by split and entity": markdown_table(summary["by_split_entity"]),
                "vocabulary sizes": markdown_table(vocab),
            },
        )

    @dg.asset(
        key=mem_key,
        ins={"tables": dg.AssetIn(key=tables_key)},
        group_name=group,
        kinds={"torch"},
        code_version=CODE_VERSION,
        pool="gpu",
        description=(
            "Multi-entity model pretrained on source + target impressions: shared sequence "
            "encoder, heterogeneous feature alignment, MMoE common knowledge, independent "
            "extractors, loss BCE_s + BCE_t + γ·PDL. Checkpointed per epoch; resumable."
        ),
    )
    def mem(
        context: dg.AssetExecutionContext,
        config: MktMemConfig,
        tables: FeatureTablesArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[MemArtifact]:
        arch = MemConfig(**library_kwargs(config, MemConfig))
        run = RunConfig(**library_kwargs(config, RunConfig))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_mem")
        with store.store().new_version(f"{dataset}/mkt_mem") as tmp:
            handle, res = run_mem(
                tables.load(),
                arch,
                run,
                tmp,
                device=str(torch_device.resolve(context.log)),
                checkpoint_dir=ckpt,
                on_progress=log_progress(context, "mem"),
            )
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: no resume needed
        handle = _published(handle, tmp)
        meta = {"path": dg.MetadataValue.path(handle.path), **_training_metadata(res)}
        return dg.Output(handle, metadata=meta)

    @dg.asset(
        key=tem_key,
        ins={"tables": dg.AssetIn(key=tables_key), "mem": dg.AssetIn(key=mem_key)},
        group_name=group,
        kinds={"torch"},
        code_version=CODE_VERSION,
        pool="gpu",
        description=(
            "Target entity model fine-tuned on target impressions with the MEM frozen: its "
            "own embeddings and tower, MEM's user, sequence, shared and common-knowledge "
            "vectors merged through GLU gates. Metadata: AUC/GAUC on the target test split."
        ),
    )
    def tem(
        context: dg.AssetExecutionContext,
        config: MktTemConfig,
        tables: FeatureTablesArtifact,
        mem: MemArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[TemArtifact]:
        arch = TemConfig(**library_kwargs(config, TemConfig))
        run = RunConfig(**library_kwargs(config, RunConfig))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_tem")
        with store.store().new_version(f"{dataset}/mkt_tem") as tmp:
            handle, res = run_tem(
                tables.load(),
                mem.load(),
                arch,
                run,
                tmp,
                device=str(torch_device.resolve(context.log)),
                checkpoint_dir=ckpt,
                on_progress=log_progress(context, "tem"),
            )
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: no resume needed
        handle, test = _published(handle, tmp), res.test
        meta = {
            "path": dg.MetadataValue.path(handle.path),
            "test AUC": test["auc"],
            "test GAUC": test["gauc"],
            "GAUC users used / skipped": f"{test['gauc_users_used']} / {test['gauc_users_skipped']}",
        }
        return dg.Output(handle, metadata={**meta, **_training_metadata(res.train)})

    @dg.asset(
        key=mkt_key(dataset, "comparison"),
        ins={
            "tables": dg.AssetIn(key=tables_key),
            "mem": dg.AssetIn(key=mem_key),
            "tem": dg.AssetIn(key=tem_key),
        },
        group_name=group,
        kinds={"torch", "sklearn"},
        code_version=CODE_VERSION,
        pool="gpu",
        description=(
            "An experiment with its own settings (seeds, models, epochs): MKT against the "
            "single-domain MLP, joint shared-bottom / MMoE and Finetune, plus ablations (no "
            "HFA, no PDL, no MEM pretraining, no TEM fine-tuning), every MKT variant with "
            "the mkt_mem / mkt_tem architecture. It trains its models itself; the mkt_mem / "
            "mkt_tem models are scored as their seed's MKT when their run settings are the "
            "experiment's (metadata: 'assets reused as seed'), else retrained. AUC and GAUC "
            "on target test impressions, lift over the MLP, and GAUC by user-activity bucket "
            "(0-10, 10-30, >30 target clicks in train), as in tables 2-4."
        ),
    )
    def comparison(
        context: dg.AssetExecutionContext,
        config: MktExperimentConfig,
        tables: FeatureTablesArtifact,
        mem: MemArtifact,
        tem: TemArtifact,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[EvaluationArtifact]:
        device = str(torch_device.resolve(context.log))
        exp = ExperimentConfig(**library_kwargs(config, ExperimentConfig, device=device))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_comparison")
        with store.store().new_version(f"{dataset}/mkt_comparison") as tmp:
            handle, result = run_comparison(
                tables.load(),
                mem,
                tem,
                exp,
                tmp,
                checkpoint_root=ckpt,
                on_progress=log_progress(context, "comparison"),
            )
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: no resume needed
        handle = _published(handle, tmp)
        for reason in result.reuse_blockers:
            context.log.warning(f"mkt_mem/mkt_tem not reused, retrained: {reason}")
        meta: dict[str, Any] = {
            "path": dg.MetadataValue.path(handle.path),
            "comparison (mean ± std over seeds)": markdown_table(_metric_rows(result.summary)),
            "training throughput": markdown_table(_throughput_rows(result.training)),
            "assets reused as seed": -1 if result.reused_seed is None else result.reused_seed,
            "why not reused": "; ".join(result.reuse_blockers) or "-",
        }
        if dataset == "tenrec":
            meta["paper (Tenrec, AUC/GAUC)"] = markdown_table(
                [{"model": m, "AUC": a, "GAUC": g} for m, (a, g) in PAPER_TENREC.items()]
            )
        return dg.Output(handle, metadata=meta)

    return [feature_tables, mem, tem, comparison]
