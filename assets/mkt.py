"""The ``mkt`` group: multi-entity knowledge transfer (Guan et al. 2024) on one dataset.

feature-aligned tables → MEM (pretrained on source + target) → TEM (fine-tuned on the
target, MEM frozen); the comparison trains the baselines and ablations on the same tables
over several seeds and reports AUC/GAUC overall and by user-activity bucket.
"""

import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from assets.datasets import dataset_from_handle, dataset_key
from assets.defaults import library_defaults
from assets.metadata import line_chart, markdown_table
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.data.validate import DataValidationError
from recflow.mkt.batches import predict_scores
from recflow.mkt.checkpoint import load_mem, save_mem, save_tem
from recflow.mkt.experiment import (
    ABLATIONS,
    MODELS,
    PAPER_TENREC,
    REFERENCES,
    ExperimentConfig,
    evaluate_target,
    run_experiment,
)
from recflow.mkt.mappings import mapping_for
from recflow.mkt.mem import MemConfig
from recflow.mkt.tables import FeatureTables, TableConfig, build_feature_tables
from recflow.mkt.tem import TemConfig
from recflow.mkt.training import finetune_tem, pretrain_mem, validation_gauc
from recflow.train import EvalFn, TrainConfig, TrainResult
from recflow.data.dataset import DatasetArtifact

CODE_VERSION = "1"
_TABLE = library_defaults(TableConfig)
_MEM = library_defaults(MemConfig)
_TEM = library_defaults(TemConfig)
_EXP = library_defaults(ExperimentConfig)
_TRAIN = library_defaults(TrainConfig)


_RUN_FIELDS = {"epochs", "lr", "batch_size", "seed", "validation_share", "patience"}


def mkt_key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, f"mkt_{name}"])


class MktTablesConfig(dg.Config):
    """How the feature-aligned tables are built (defaults = ``recflow.mkt.tables.TableConfig``)."""

    train_share: float = _TABLE["train_share"]
    sequence_length: int = _TABLE["sequence_length"]
    numeric_buckets: int = _TABLE["numeric_buckets"]


class MktMemConfig(dg.Config):
    """MEM architecture (``recflow.mkt.mem.MemConfig``) and its pretraining run."""

    dim: int = _MEM["dim"]
    use_hfa: bool = _MEM["use_hfa"]
    aligned_dim: int = _MEM["aligned_dim"]
    cross_layers: int = _MEM["cross_layers"]
    n_experts: int = _MEM["n_experts"]
    expert_sizes: list[int] = list(_MEM["expert_sizes"])
    independent_sizes: list[int] = list(_MEM["independent_sizes"])
    tower_sizes: list[int] = list(_MEM["tower_sizes"])
    pdl_weight: float = _MEM["pdl_weight"]
    loss_weighting: str = _MEM["loss_weighting"]  # "volume" (per sample) or "entity"
    epochs: int = _EXP["pretrain_epochs"]  # the most; the best epoch on validation is kept
    validation_share: float = _EXP["validation_share"]  # latest training share held out
    patience: int | None = _EXP["patience"]
    lr: float = _EXP["lr"]
    batch_size: int = _EXP["batch_size"]
    seed: int = 0


class MktTemConfig(dg.Config):
    """TEM architecture (``recflow.mkt.tem.TemConfig``) and its fine-tuning run."""

    hidden_sizes: list[int] = list(_TEM["hidden_sizes"])
    tower_sizes: list[int] = list(_TEM["tower_sizes"])
    use_gates: bool = _TEM["use_gates"]
    init_embeddings_from_mem: bool = _TEM["init_embeddings_from_mem"]
    epochs: int = _EXP["target_epochs"]  # the most; the best epoch on validation is kept
    validation_share: float = _EXP["validation_share"]  # latest training share held out
    patience: int | None = _EXP["patience"]
    lr: float = _EXP["lr"]
    batch_size: int = _EXP["batch_size"]
    seed: int = 0


class MktComparisonConfig(dg.Config):
    """Seeds, training lengths and selection of the comparison; every field is a field
    of ``recflow.mkt.experiment.ExperimentConfig`` of the same name."""

    seeds: list[int] = list(_EXP["seeds"])
    models: list[str] = list(MODELS)
    ablations: list[str] = list(ABLATIONS)
    references: list[str] = list(REFERENCES)  # count-table references, no training
    pretrain_epochs: int = _EXP["pretrain_epochs"]
    target_epochs: int = _EXP["target_epochs"]
    validation_share: float = _EXP["validation_share"]
    patience: int | None = _EXP["patience"]
    select_by: str = _EXP["select_by"]  # "valid_gauc" or "valid_loss"
    lr: float = _EXP["lr"]
    weight_decay: float = _EXP["weight_decay"]
    batch_size: int = _EXP["batch_size"]


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    """Dagster config lists → the tuples the library's frozen dataclasses hold."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _selection(
    tables: FeatureTables, config: MktMemConfig | MktTemConfig, target: str, device: str
) -> tuple[FeatureTables, EvalFn | None, TrainConfig]:
    """The run's tables, validation scorer and TrainConfig: with a validation share, the
    tables gain a "valid" split and the loop keeps the best epoch by its GAUC on
    ``target``; with share 0 the tables as they are and a fixed epoch count."""
    train = {"epochs": config.epochs, "lr": config.lr, "seed": config.seed, "device": device}
    if config.validation_share <= 0:
        return tables, None, TrainConfig(**train)
    split = tables.with_validation(config.validation_share)
    tc = TrainConfig(**train, select_by="valid_gauc", patience=config.patience)
    return split, validation_gauc(split, target), tc


def _checkpoint_dir(context: dg.AssetExecutionContext, store: StoreResource, what: str) -> Path:
    """Per-run checkpoints: a re-execution of a failed run (same root run) resumes."""
    run = context.run
    root_id = run.root_run_id or run.run_id
    return Path(store.root) / "_checkpoints" / what / root_id


def _drop_checkpoints(path: Path) -> None:
    """A finished asset no longer needs its resume checkpoints."""
    shutil.rmtree(path, ignore_errors=True)


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


def build_mkt_assets(dataset: str) -> list[dg.AssetsDefinition]:
    """Feature tables, MEM, TEM and the comparison of ``dataset`` (its mapping must be
    declared in ``recflow.mkt.mappings``)."""
    mapping = mapping_for(dataset)
    tables_key = mkt_key(dataset, "feature_tables")

    @dg.asset(
        key=tables_key,
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name="mkt",
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
        context: dg.AssetExecutionContext,
        config: MktTablesConfig,
        dataset_handle: DatasetArtifact,
        store: StoreResource,
    ) -> dg.Output[dict[str, str]]:
        ds = dataset_from_handle(dataset_handle)
        artifacts = store.store()
        try:
            tables = build_feature_tables(
                ds.scan_interactions(),
                ds.items(),
                ds.users(),
                mapping,
                TableConfig(**config.model_dump()),
            )
        except DataValidationError as err:
            raise dg.Failure(
                description=str(err),
                metadata={"file": err.file, "column": err.column or "", "rows": err.rows},
            ) from err
        with artifacts.new_version(f"{dataset}/mkt_feature_tables") as tmp:
            tables.save(tmp)
            final = artifacts.final_path(tmp)
        summary = tables.summary()
        groups = [{"group": g, "columns": ", ".join(cols)} for g, cols in summary["groups"].items()]
        return dg.Output(
            {"path": str(final)},
            metadata={
                "path": dg.MetadataValue.path(str(final)),
                "dagster/row_count": summary["rows"],
                "feature groups": markdown_table(groups),
                "rows by split and entity": markdown_table(summary["by_split_entity"]),
                "vocabulary sizes": markdown_table(
                    [{"column": k, "codes": v} for k, v in summary["vocab_sizes"].items()]
                ),
            },
        )

    @dg.asset(
        key=mkt_key(dataset, "mem"),
        ins={"tables_handle": dg.AssetIn(key=tables_key)},
        group_name="mkt",
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
        tables_handle: dict[str, str],
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[dict[str, str]]:
        tables = FeatureTables.load(tables_handle["path"])
        device = torch_device.resolve(context.log)
        mem_config = MemConfig(**_tuples(config.model_dump(exclude=_RUN_FIELDS)))
        tables, evaluate, tc = _selection(tables, config, mapping.target_entity, str(device))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_mem")
        model, res = pretrain_mem(
            tables,
            mem_config,
            tc,
            config.batch_size,
            checkpoint_dir=ckpt,
            on_progress=log_progress(context, "mem"),
            evaluate=evaluate,
        )
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/mkt_mem") as tmp:
            save_mem(model.cpu(), tmp)
            final = artifacts.final_path(tmp)
        _drop_checkpoints(ckpt)
        return dg.Output(
            {"path": str(final), "tables": tables_handle["path"]},
            metadata={"path": dg.MetadataValue.path(str(final)), **_training_metadata(res)},
        )

    @dg.asset(
        key=mkt_key(dataset, "tem"),
        ins={"mem_handle": dg.AssetIn(key=mkt_key(dataset, "mem"))},
        group_name="mkt",
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
        mem_handle: dict[str, str],
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[dict[str, str]]:
        tables = FeatureTables.load(mem_handle["tables"])
        mem_model = load_mem(mem_handle["path"])
        device = torch_device.resolve(context.log)
        dims = {"dim": mem_model.config.dim}
        tem_config = TemConfig(**dims, **_tuples(config.model_dump(exclude=_RUN_FIELDS)))
        tables, evaluate, tc = _selection(tables, config, mapping.target_entity, str(device))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_tem")
        model, res = finetune_tem(
            tables,
            mem_model,
            tem_config,
            tc,
            config.batch_size,
            checkpoint_dir=ckpt,
            on_progress=log_progress(context, "tem"),
            evaluate=evaluate,
        )
        target = mapping.target_entity
        metrics = evaluate_target(
            tables.rows("test", target), predict_scores(model, tables.tensors("test", target))
        )
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/mkt_tem") as tmp:
            save_tem(model.cpu(), tmp)
            final = artifacts.final_path(tmp)
        _drop_checkpoints(ckpt)
        return dg.Output(
            {"path": str(final), "tables": mem_handle["tables"]},
            metadata={
                "path": dg.MetadataValue.path(str(final)),
                "test AUC": metrics["auc"],
                "test GAUC": metrics["gauc"],
                "GAUC users used / skipped": f"{metrics['gauc_users_used']} / {metrics['gauc_users_skipped']}",
                **_training_metadata(res),
            },
        )

    @dg.asset(
        key=mkt_key(dataset, "comparison"),
        ins={"tables_handle": dg.AssetIn(key=tables_key)},
        group_name="mkt",
        kinds={"torch", "sklearn"},
        code_version=CODE_VERSION,
        pool="gpu",
        description=(
            "MKT against the single-domain MLP, joint shared-bottom / MMoE and Finetune, plus "
            "ablations (no HFA, no PDL, no MEM pretraining, no TEM fine-tuning), over several "
            "seeds: AUC and GAUC on target test impressions, lift over the MLP, and GAUC by "
            "user-activity bucket (0-10, 10-30, >30 target clicks in train), as in tables 2-4."
        ),
    )
    def comparison(
        context: dg.AssetExecutionContext,
        config: MktComparisonConfig,
        tables_handle: dict[str, str],
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[dict[str, str]]:
        tables = FeatureTables.load(tables_handle["path"])
        device = torch_device.resolve(context.log)
        exp = ExperimentConfig(**_tuples(config.model_dump()), device=str(device))
        ckpt = _checkpoint_dir(context, store, f"{dataset}/mkt_comparison")
        result = run_experiment(
            tables,
            exp,
            checkpoint_root=ckpt,
            on_progress=log_progress(context, "comparison"),
        )
        summary = result.summary()
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/mkt_comparison") as tmp:
            result.table().write_parquet(tmp / "per_seed.parquet")
            summary.write_parquet(tmp / "summary.parquet")
            final = artifacts.final_path(tmp)
        _drop_checkpoints(ckpt)
        meta: dict[str, Any] = {
            "path": dg.MetadataValue.path(str(final)),
            "comparison (mean ± std over seeds)": markdown_table(_metric_rows(summary)),
            "training throughput": markdown_table(
                [
                    {
                        k: r[k]
                        for k in (
                            "stage",
                            "seed",
                            "samples_per_s",
                            "trained_params",
                            "total_params",
                        )
                    }
                    for r in result.training
                ]
            ),
        }
        if dataset == "tenrec":
            meta["paper (Tenrec, AUC/GAUC)"] = markdown_table(
                [{"model": m, "AUC": a, "GAUC": g} for m, (a, g) in PAPER_TENREC.items()]
            )
        return dg.Output({"path": str(final)}, metadata=meta)

    return [feature_tables, mem, tem, comparison]
