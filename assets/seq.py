"""The ``sequences`` and ``peterrec`` groups: NextItNet pretraining and PeterRec fine-tuning.

seq_sequences → nextitnet_pretrain → finetune_{fine_all, fine_last, fine_cls,
peterrec_serial, peterrec_parallel, scratch} → finetune_comparison. Yuan et al., SIGIR 2020.
How each dataset becomes a source and a target domain is ``recflow.seq.domains``.
Everything here is a thin call into ``recflow.seq``.
"""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl

from assets.datasets import dataset_from_handle, dataset_key
from assets.defaults import library_defaults
from assets.metadata import line_chart, markdown_table
from assets.progress import log_progress
from assets.resources import StoreResource, TorchDeviceResource
from recflow.seq.checkpoint import load_pretrained, save_pretrained
from recflow.seq.comparison import (
    baseline_rows,
    baseline_verdicts,
    comparison_table,
    run_method,
    versus_best_baseline,
)
from recflow.seq.domains import TransferSetup, transfer_setup
from recflow.seq.finetune import Method
from recflow.seq.nextitnet import NextItNetConfig
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
from recflow.seq.tasks import TaskSpec, build_tasks, describe_tasks
from recflow.store import read_json, save_state_dict, write_json
from recflow.train import TrainConfig
from recflow.data.dataset import DatasetArtifact

CODE_VERSION = "1"
_SEQ = library_defaults(SequenceConfig)
_NET = library_defaults(NextItNetConfig)
_PRE = library_defaults(PretrainConfig)
_TRAIN = library_defaults(TrainConfig)

FINETUNE_LR = {
    Method.FINE_ALL: 1e-3,
    Method.FINE_LAST: 3e-3,
    Method.FINE_CLS: 5e-3,
    Method.PETERREC_SERIAL: 5e-3,
    Method.PETERREC_PARALLEL: 5e-3,
    Method.SCRATCH: 1e-3,
}
"""Default step sizes: methods with a frozen backbone take larger steps."""

METHOD_TITLES = {
    Method.FINE_ALL: "FineAll: every weight of the pretrained network",
    Method.FINE_LAST: "FineLast: the last residual block and the new head",
    Method.FINE_CLS: "FineCLS: the new head only",
    Method.PETERREC_SERIAL: "PeterRec, serial patches: patches after each dilated conv, layer norms, head",
    Method.PETERREC_PARALLEL: "PeterRec, parallel patches: patches beside each dilated conv, layer norms, head",
    Method.SCRATCH: "No pretraining: the same network trained from scratch on the task",
}


def seq_key(dataset: str, name: str) -> dg.AssetKey:
    return dg.AssetKey([dataset, name])


def sequences_config(setup: TransferSetup) -> type[dg.Config]:
    """The ``seq_sequences`` config of one dataset: which events form sequences and the
    dataset's transfer choices (domains, attribute tasks, negatives, user split), with the
    dataset's defaults from ``recflow.seq.domains.TRANSFER_SETUPS``, all editable in the
    Launchpad. Genre names are matched against the data's own genre vocabulary."""
    spec = TaskSpec()

    class SeqSequencesConfig(dg.Config):
        min_len: int = _SEQ["min_len"]
        max_events: int | None = _SEQ["max_events"]
        target_genres: list[str] = list(setup.target_genres)  # genre split only
        source_entity: str | None = setup.source_entity  # entity split only
        target_entity: str | None = setup.target_entity
        attributes: list[str] = list(setup.attributes)
        attribute_bins: dict[str, list[float]] = {
            k: list(v) for k, v in setup.attributes.items() if v is not None
        }
        n_negatives: int = setup.n_negatives
        valid_share: float = spec.valid_share
        test_share: float = spec.test_share
        split_seed: int = spec.split_seed
        min_users_per_split: int = spec.min_users_per_split

        def transfer_setup(self) -> TransferSetup:
            return dataclasses.replace(
                setup,
                target_genres=tuple(self.target_genres),
                source_entity=self.source_entity,
                target_entity=self.target_entity,
            )

        def task_spec(self) -> TaskSpec:
            unknown = sorted(set(self.attribute_bins) - set(self.attributes))
            if unknown:
                raise dg.Failure(
                    f"attribute_bins names {unknown}, which are not in attributes {self.attributes}"
                )
            return TaskSpec(
                attributes={a: self.attribute_bins.get(a) for a in self.attributes},
                n_negatives=self.n_negatives,
                valid_share=self.valid_share,
                test_share=self.test_share,
                split_seed=self.split_seed,
                min_users_per_split=self.min_users_per_split,
            )

    return SeqSequencesConfig


class NextItNetPretrainConfig(dg.Config):
    """Network shape (``NextItNetConfig``), data (``PretrainConfig``) and optimisation
    (``TrainConfig``) of next-item pretraining; defaults are the library's."""

    channels: int = _NET["channels"]
    kernel_size: int = _NET["kernel_size"]
    dilations: list[int] = list(_NET["dilations"])
    n_stacks: int = _NET["n_stacks"]
    dropout: float = _NET["dropout"]
    max_len: int = _PRE["max_len"]
    batch_size: int = _PRE["batch_size"]
    n_negatives: int = _PRE["n_negatives"]
    epochs: int = _TRAIN["epochs"]
    lr: float = _TRAIN["lr"]
    weight_decay: float = _TRAIN["weight_decay"]
    seed: int = _TRAIN["seed"]


class FinetuneConfig(dg.Config):
    """Fine-tuning settings shared by every method (``lr`` ≤ 0 = the method's default in
    ``FINETUNE_LR``). Each task keeps its best epoch by a validation number (cold start
    NDCG@5; attributes log loss, as their ``FinetuneSettings`` ask, with a mean readout,
    item dropout and ≥ 16 optimiser steps per epoch), stopping after ``patience`` epochs
    without gain; ``seed`` seeds the training, not the user split (that is
    ``seq_sequences``' ``split_seed``, shared by every method and baseline)."""

    epochs: int = 5
    patience: int = 2
    lr: float = 0.0
    batch_size: int = 128
    reduction: int = 4  # patch bottleneck C → C/reduction
    seed: int = _TRAIN["seed"]


def _load_sequences(handle: dict) -> tuple[pl.DataFrame, pl.DataFrame, ItemIndex]:
    root = Path(handle["path"])
    index = ItemIndex.from_frame(
        pl.read_parquet(root / "item_index.parquet", glob=False), str(root / "item_index.parquet")
    )
    return (
        read_sequences(root / "sequences.parquet"),
        pl.read_parquet(root / "target_events.parquet", glob=False),
        index,
    )


def _tasks(dataset: str, seq_handle: dict, max_len: int) -> list:
    """The downstream tasks as ``seq_sequences`` fixed them (spec in its ``tasks.json``)."""
    sequences, target, index = _load_sequences(seq_handle)
    users = dataset_from_handle({"path": seq_handle["dataset"]}).users()
    spec = TaskSpec.from_json(read_json(Path(seq_handle["path"]) / "tasks.json"))
    return build_tasks(spec, sequences, target, users, index, max_len)


def _round(rows: list[dict]) -> list[dict]:
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def build_seq_assets(dataset: str) -> list[dg.AssetsDefinition]:
    """The sequence → pretrain → fine-tune → comparison chain of ``dataset``."""
    setup = transfer_setup(dataset)
    seq_asset_key = seq_key(dataset, "seq_sequences")
    pre_key = seq_key(dataset, "nextitnet_pretrain")

    seq_config = sequences_config(setup)

    @dg.asset(
        key=seq_asset_key,
        ins={"dataset_handle": dg.AssetIn(key=dataset_key(dataset))},
        group_name="sequences",
        kinds={"polars", "parquet"},
        code_version=CODE_VERSION,
        description=(
            "Per-user source-domain behaviour sequences sorted by (timestamp, item_id), the "
            "leave-last-out split by time, the target-domain events, the item-id map and the "
            "downstream task spec (one user split for every method and baseline). Checks, "
            "before any training, that the data can feed every task. Domains: "
            f"{setup.split} split"
            + (
                f" {setup.source_entity} → {setup.target_entity}"
                if setup.split == "entity"
                else f", target genres {list(setup.target_genres)} (as the data spells them)"
            )
            + "."
        ),
    )
    def seq_sequences(
        context: dg.AssetExecutionContext,
        config: seq_config,
        dataset_handle: DatasetArtifact,
        store: StoreResource,
    ) -> dg.Output[dict]:
        ds = dataset_from_handle(dataset_handle)
        items = ds.items()
        chosen = config.transfer_setup()
        spec = config.task_spec()
        try:
            genres = chosen.resolved_target_genres(items) if chosen.split == "genre" else ()
            source, target = chosen.split_events(ds.scan_interactions().collect(), items)
            sequences = build_sequences(
                source, SequenceConfig(min_len=config.min_len, max_events=config.max_events)
            )
            index = ItemIndex.from_item_ids(sequences.get_column("items").explode())
            # preflight: the tasks every fine-tune will build, on 2-token windows (cheap)
            tasks = build_tasks(spec, sequences, target, ds.users(), index, max_len=2)
        except ValueError as e:
            raise dg.Failure(f"{dataset}/seq_sequences: {e}") from e
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/seq_sequences") as tmp:
            write_sequences(sequences, tmp / "sequences.parquet")
            write_sequences(split_by_time(sequences), tmp / "sequences_by_time.parquet")
            target.select("user_id", "item_id", "timestamp").write_parquet(
                tmp / "target_events.parquet"
            )
            index.to_frame().write_parquet(tmp / "item_index.parquet")
            write_json(spec.to_json(), tmp / "tasks.json")
            final = artifacts.final_path(tmp)
        lengths = sequences.get_column("items").list.len()
        target_users = target.get_column("user_id").n_unique()
        return dg.Output(
            {"path": str(final), "dataset": str(ds.root)},
            metadata={
                "dagster/row_count": sequences.height,
                "users": sequences.height,
                "source items": index.n_items,
                "source events": int(lengths.sum()),
                "median length": float(lengths.median()),
                "target genres (data spelling)": ", ".join(genres) or "-",
                "target events": target.height,
                "target items": target.get_column("item_id").n_unique(),
                "target users": target_users,
                "tasks": markdown_table(describe_tasks(tasks)),
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    @dg.asset(
        key=pre_key,
        ins={"seq": dg.AssetIn(key=seq_asset_key)},
        group_name="peterrec",
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
        seq: dict,
        store: StoreResource,
        torch_device: TorchDeviceResource,
    ) -> dg.Output[dict]:
        device = torch_device.resolve(context.log)
        by_time = read_sequences(Path(seq["path"]) / "sequences_by_time.parquet")
        _, _, index = _load_sequences(seq)
        train_tokens = RaggedTokens.from_items(
            by_time.filter(pl.col("split") == "train").get_column("items"), index
        )
        valid = contexts_and_targets(by_time.filter(pl.col("split") == "valid"), index)
        net = NextItNetConfig(
            index.n_tokens,
            channels=config.channels,
            kernel_size=config.kernel_size,
            dilations=tuple(config.dilations),
            n_stacks=config.n_stacks,
            dropout=config.dropout,
        )
        data = PretrainConfig(config.max_len, config.batch_size, config.n_negatives)
        train_cfg = TrainConfig(
            epochs=config.epochs,
            lr=config.lr,
            weight_decay=config.weight_decay,
            seed=config.seed,
            device=str(device),
        )
        fingerprint = hashlib.sha256(
            json.dumps([seq["path"], config.model_dump()], sort_keys=True).encode()
        ).hexdigest()[:16]
        artifacts = store.store()
        resume_dir = (
            artifacts.artifact_dir(f"{dataset}/nextitnet_pretrain") / f"_resume-{fingerprint}"
        )
        result = pretrain(
            train_tokens,
            net,
            data,
            train_cfg,
            valid=valid,
            checkpoint_dir=resume_dir,
            on_progress=log_progress(context, "pretrain epoch"),
        )
        history = result.train.history
        metadata_json = {
            "max_len": config.max_len,
            "history": history,
            "samples_per_s": result.train.samples_per_s,
            "device": result.train.device,
        }
        with artifacts.new_version(f"{dataset}/nextitnet_pretrain") as tmp:
            save_pretrained(result.model, index, tmp, metadata=metadata_json)
            final = artifacts.final_path(tmp)
        shutil.rmtree(resume_dir, ignore_errors=True)
        return dg.Output(
            {"path": str(final), "max_len": str(config.max_len)},
            metadata={
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
                "parameters": result.train.total_params,
                "sequences per second": result.train.samples_per_s,
                "train seconds": result.train.elapsed_s,
                "device": result.train.device,
                "resumed from epoch": result.train.resumed_from_epoch or 0,
                "path": dg.MetadataValue.path(str(final)),
            },
        )

    def make_finetune(method: Method) -> dg.AssetsDefinition:
        @dg.asset(
            key=seq_key(dataset, f"finetune_{method.value}"),
            ins={"pre": dg.AssetIn(key=pre_key), "seq": dg.AssetIn(key=seq_asset_key)},
            group_name="peterrec",
            kinds={"torch"},
            pool="gpu",
            code_version=CODE_VERSION,
            description=f"{METHOD_TITLES[method]}. Fine-tuned on every downstream task of the dataset.",
        )
        def _finetune(
            context: dg.AssetExecutionContext,
            config: FinetuneConfig,
            pre: dict,
            seq: dict,
            store: StoreResource,
            torch_device: TorchDeviceResource,
        ) -> dg.Output[dict]:
            device = torch_device.resolve(context.log)
            pretrained, _, _ = load_pretrained(pre["path"])
            lr = config.lr if config.lr > 0 else FINETUNE_LR[method]
            rows, histories = [], {}
            artifacts = store.store()
            with artifacts.new_version(f"{dataset}/finetune_{method.value}") as tmp:
                for task in _tasks(dataset, seq, int(pre["max_len"])):
                    cfg = TrainConfig(
                        epochs=config.epochs,
                        lr=lr,
                        seed=config.seed,
                        device=str(device),
                        select_by=f"valid_{task.primary_metric}",
                        patience=config.patience,
                    )
                    run = run_method(
                        pretrained,
                        task,
                        method,
                        cfg,
                        batch_size=config.batch_size,
                        reduction=config.reduction,
                        on_progress=log_progress(context, f"{method.value} {task.name} epoch"),
                    )
                    folder = tmp / task.name.replace(":", "_")
                    save_state_dict(run.model.state_dict(), folder / "model.pt")
                    write_json(
                        {
                            "method": method.value,
                            "n_outputs": task.n_outputs,
                            "readout": run.model.readout.value,
                            "reduction": config.reduction,
                            "pretrained": pre["path"],
                        },
                        folder / "config.json",
                    )
                    rows.append(run.row)
                    histories[task.name] = run.history
                write_json({"rows": rows, "histories": histories}, tmp / "results.json")
                final = artifacts.final_path(tmp)
            return dg.Output(
                {"path": str(final), "results": str(final / "results.json")},
                metadata={
                    "test metrics": markdown_table(_round(rows)),
                    "trained parameters": int(rows[0]["trained_params"]),
                    "share of parameters trained": rows[0]["trained_params"]
                    / rows[0]["total_params"],
                    "path": dg.MetadataValue.path(str(final)),
                },
            )

        return _finetune

    finetunes = [make_finetune(m) for m in Method]

    @dg.asset(
        key=seq_key(dataset, "finetune_comparison"),
        ins={
            "seq": dg.AssetIn(key=seq_asset_key),
            "pre": dg.AssetIn(key=pre_key),
            **{m.value: dg.AssetIn(key=seq_key(dataset, f"finetune_{m.value}")) for m in Method},
        },
        group_name="peterrec",
        kinds={"polars", "sklearn"},
        code_version=CODE_VERSION,
        description=(
            "One table per dataset: every fine-tuning method and training from scratch on "
            "every task (test metrics, trained parameters, share of FineAll's, training "
            "time), with majority / logistic-regression / popularity baselines. Paper: "
            "PeterRec within ~0.002 of FineAll while training 0.16–9.4% of its parameters."
        ),
    )
    def finetune_comparison(
        store: StoreResource,
        seq: dict,
        pre: dict,
        fine_all: dict,
        fine_last: dict,
        fine_cls: dict,
        peterrec_serial: dict,
        peterrec_parallel: dict,
        scratch: dict,
    ) -> dg.Output[dict]:
        runs = [fine_all, fine_last, fine_cls, peterrec_serial, peterrec_parallel, scratch]
        rows = [r for run in runs for r in read_json(run["results"])["rows"]]
        tasks = _tasks(dataset, seq, int(pre["max_len"]))
        for task in tasks:
            rows += baseline_rows(task)
        table = versus_best_baseline(
            comparison_table(rows).sort(["task"], maintain_order=True),
            {t.name: t.primary_metric for t in tasks},
        )
        artifacts = store.store()
        with artifacts.new_version(f"{dataset}/finetune_comparison") as tmp:
            table.write_parquet(tmp / "comparison.parquet")
            final = artifacts.final_path(tmp)
        return dg.Output(
            {"path": str(final)},
            metadata={
                "comparison": markdown_table(_round(table.to_dicts())),
                "verdict": dg.MetadataValue.md(
                    "\n".join(f"- {v}" for v in baseline_verdicts(table))
                ),
                "path": dg.MetadataValue.path(str(final / "comparison.parquet")),
            },
        )

    return [seq_sequences, nextitnet_pretrain, *finetunes, finetune_comparison]
