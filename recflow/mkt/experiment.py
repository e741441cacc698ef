"""MKT's offline experiment (section 4): every model on the same tables, AUC/GAUC on the
target entity's test impressions, over several seeds, with the paper's ablations.

Models (names as they appear in the tables):
    mlp_target                   single-domain MLP, target rows only
    shared_bottom, mmoe          joint training on both entities
    finetune                     MLP pretrained on source rows, fine-tuned on target rows
    mkt                          MEM pretrained on both entities → TEM on target, MEM frozen
  ablations
    mkt_without_hfa              MEM concatenates raw entity-specific embeddings
    mkt_without_pdl              γ = 0
    mkt_without_mem_pretraining  TEM + an untrained MEM, trained together on target rows
    mkt_without_tem_finetuning   the pretrained MEM's target tower, no TEM
  references (no training)
    rate_target, rate_both       smoothed click rate of the (user, first entity-shared
                                 feature) pair on target / both entities' training rows:
                                 what counting alone gets, with and without the source

Every model trains through ``recflow.train.train`` (one loop); with ``checkpoint_root``
each stage checkpoints per epoch and a rerun resumes where it stopped.

Model selection: the last ``validation_share`` of the training impressions (by time) is
held out as split "valid"; every training stage runs up to its epoch budget, scores GAUC
on the valid rows of the entity it serves after each epoch, keeps its best epoch and
stops after ``patience`` epochs without gain. Test rows are only ever scored at the end.
``RunConfig`` holds these settings for one training stage (the ``mkt_mem``/``mkt_tem``
assets); ``ExperimentConfig`` takes its defaults from it, so both state them once.

Reuse: ``run_experiment(pretrained={seed: (mem, tem)})`` scores a MEM and TEM trained
elsewhere (the assets) as that seed's ``mkt_mem``/``mkt_tem`` instead of training them
again; with the same settings and seed they are the models the experiment would train.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from recflow.metrics import auc, gauc
from recflow.mkt.baselines import BaselineConfig, JointModel, SingleTowerModel
from recflow.mkt.batches import predict_scores, shuffled_batches
from recflow.mkt.losses import joint_bce, target_bce
from recflow.mkt.mem import MemConfig, MultiEntityModel
from recflow.mkt.tables import FeatureSpec, FeatureTables, activity_bucket
from recflow.mkt.tem import TemConfig, target_specific_columns
from recflow.mkt.training import finetune_tem, pretrain_mem, validation_gauc
from recflow.progress import ProgressFn
from recflow.seeding import seed_torch
from recflow.store import atomic_path
from recflow.train import EvalFn, TrainConfig, TrainResult, train

MODELS = ("mlp_target", "shared_bottom", "mmoe", "finetune", "mkt")
ABLATIONS = (
    "mkt_without_hfa",
    "mkt_without_pdl",
    "mkt_without_mem_pretraining",
    "mkt_without_tem_finetuning",
)
REFERENCES = ("rate_target", "rate_both")  # count tables, no training, no seed
# what ``validation_gauc`` reports, and which way is better
SELECT_MODES = {"valid_gauc": "max", "valid_auc": "max", "valid_loss": "min"}
REFERENCE_MODEL = "mlp_target"
TRAINING_COLUMNS = (  # one row of ExperimentResult.training per training stage
    "stage", "seed", "samples_per_s", "elapsed_s", "trained_params", "total_params",
    "final_loss", "resumed_from_epoch", "epochs_run", "best_epoch", "valid_gauc",
    "valid_loss", "device", "reused",
)  # fmt: skip
PAPER_TENREC = {  # table 2 of the paper: (AUC, GAUC) on Tenrec
    "mlp_target": (0.9337, 0.6393),
    "finetune": (0.9456, 0.6520),
    "mkt": (0.9524, 0.6583),
}


def _check_selection(select_by: str, validation_share: float) -> None:
    if select_by not in SELECT_MODES:
        raise ValueError(f"select_by must be one of {list(SELECT_MODES)}, got {select_by!r}")
    if not 0.0 <= validation_share < 1.0:
        raise ValueError(f"validation_share must be in [0, 1), got {validation_share}")


@dataclass(frozen=True)
class RunConfig:
    """How one MKT training stage runs (MEM pretraining, TEM fine-tuning): the settings
    every model of the experiment shares, for a stage trained on its own."""

    epochs: int = 10  # the most; with validation the best epoch is kept
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    # the last 1/8 of training impressions (10% of all) choose the best epoch;
    # 0 = no validation, the stage runs its full epoch count
    validation_share: float = 0.125
    patience: int | None = 2  # with validation: stop after this many epochs without gain
    select_by: str = "valid_gauc"  # a key of SELECT_MODES; "valid_loss" = log loss
    seed: int = 0

    def __post_init__(self) -> None:
        _check_selection(self.select_by, self.validation_share)


def train_config(run: RunConfig, device: str) -> TrainConfig:
    """The loop's settings for ``run``: selecting on validation when it holds rows out."""
    selecting = run.validation_share > 0
    return TrainConfig(
        epochs=run.epochs,
        lr=run.lr,
        weight_decay=run.weight_decay,
        seed=run.seed,
        device=device,
        select_by=run.select_by if selecting else None,
        select_mode=SELECT_MODES[run.select_by],
        patience=run.patience if selecting else None,
    )


@dataclass(frozen=True)
class ExperimentConfig:
    """Which models, how long, how many seeds; training settings default to ``RunConfig``'s."""

    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[str, ...] = MODELS
    ablations: tuple[str, ...] = ABLATIONS
    references: tuple[str, ...] = REFERENCES
    batch_size: int = RunConfig.batch_size
    pretrain_epochs: int = RunConfig.epochs  # MEM, joint models, Finetune's source stage
    target_epochs: int = RunConfig.epochs  # TEM, single-domain MLP, Finetune's target stage
    validation_share: float = RunConfig.validation_share
    patience: int | None = RunConfig.patience
    select_by: str = RunConfig.select_by
    lr: float = RunConfig.lr
    weight_decay: float = RunConfig.weight_decay
    device: str = "auto"
    mem: MemConfig = field(default_factory=MemConfig)
    tem: TemConfig = field(default_factory=TemConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        # checked up front: a typo must not surface after an hour of training other models
        for what, names, known in (
            ("model", self.models, MODELS + ABLATIONS),
            ("ablation", self.ablations, ABLATIONS),
            ("reference", self.references, REFERENCES),
        ):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"unknown MKT {what} {unknown}; known: {list(known)}")
        _check_selection(self.select_by, self.validation_share)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def run(self, epochs: int, seed: int) -> RunConfig:
        """One training stage of this experiment as a ``RunConfig``."""
        return RunConfig(
            epochs=epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            validation_share=self.validation_share,
            patience=self.patience,
            select_by=self.select_by,
            seed=seed,
        )


@dataclass
class ExperimentResult:
    """One row per (model, seed) with AUC/GAUC overall and by activity bucket."""

    rows: list[dict[str, Any]]
    training: list[dict[str, Any]]  # one row per training stage: samples/s, params, losses

    def table(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows)

    def summary(self) -> pl.DataFrame:
        return summarize(self.table())


def evaluate_target(rows: pl.DataFrame, scores: np.ndarray) -> dict[str, Any]:
    """AUC, GAUC (with users used/skipped) overall and per user-activity bucket.

    ``rows``: the target test rows (user_id, label, target_clicks_in_train) in score order.
    """
    users = rows.get_column("user_id").to_numpy()
    labels = rows.get_column("label").to_numpy()
    g = gauc(users, labels, scores)
    out: dict[str, Any] = {
        "auc": auc(labels, scores),
        "gauc": float(g.value),
        "gauc_users_used": g.users_used,
        "gauc_users_skipped": g.users_skipped,
        "impressions": len(labels),
    }
    buckets = activity_bucket(rows.get_column("target_clicks_in_train").to_numpy())
    for b in ("0-10", "10-30", ">30"):
        m = buckets == b
        usable = m.sum() > 0 and labels[m].min() != labels[m].max()
        out[f"auc[{b}]"] = auc(labels[m], scores[m]) if usable else None
        try:
            gb = gauc(users[m], labels[m], scores[m]) if usable else None
        except ValueError:  # no user of the bucket has both classes
            gb = None
        out[f"gauc[{b}]"] = float(gb.value) if gb else None
        out[f"users[{b}]"] = int(len(np.unique(users[m])))
    return out


class SeedRunner:
    """Trains the models of one seed on one set of tables."""

    def __init__(
        self,
        tables: FeatureTables,
        config: ExperimentConfig,
        seed: int,
        checkpoint_root: Path | None,
        pretrained: tuple[MultiEntityModel, nn.Module] | None = None,
    ) -> None:
        self.tables, self.config, self.seed = tables, config, seed
        self.spec: FeatureSpec = tables.spec()
        self.item_shared = torch.from_numpy(tables.item_shared)
        m = tables.mapping
        self.train_all = tables.tensors("train")
        self.train_source = tables.tensors("train", m.source_entity)
        self.train_target = tables.tensors("train", m.target_entity)
        self.test_target = tables.tensors("test", m.target_entity)
        self.test_rows = tables.rows("test", m.target_entity)
        self.validators: dict[str, EvalFn] = {}
        if config.validation_share > 0:
            for entity in (m.source_entity, m.target_entity):
                self.validators[entity] = validation_gauc(tables, entity)
        self.checkpoint_root = checkpoint_root
        self.training: list[dict[str, Any]] = []
        self.mem_cache: dict[str, MultiEntityModel] = {}
        self.tem_cache: dict[str, nn.Module] = {}
        if pretrained is not None:  # trained elsewhere with this seed and these settings
            self.mem_cache["mkt_mem"], self.tem_cache["mkt_tem"] = pretrained
            for stage in ("mkt_mem", "mkt_tem"):
                self.training.append({**dict.fromkeys(TRAINING_COLUMNS), "stage": stage,
                                      "seed": seed, "reused": True})  # fmt: skip

    def _init(self, build: Callable[[], nn.Module], stream: str) -> nn.Module:
        seed_torch(self.seed, "init", stream)
        model = build()
        for module in model.modules():
            if hasattr(module, "set_item_shared") and module.item_shared.sum() == 0:
                module.set_item_shared(self.item_shared)
        return model

    def _train_config(self, epochs: int) -> TrainConfig:
        return train_config(self.config.run(epochs, self.seed), self.config.device)

    def _validator(self, entity: str | None = None) -> EvalFn | None:
        return self.validators.get(entity or self.tables.mapping.target_entity)

    def _checkpoint(self, name: str) -> Path | None:
        if self.checkpoint_root is None:
            return None
        return self.checkpoint_root / f"seed{self.seed}" / name

    def _record(self, name: str, res: TrainResult) -> None:
        best = (
            next(r for r in res.history if r["epoch"] == res.best_epoch)
            if res.best_epoch is not None
            else {}
        )
        self.training.append(
            {
                "stage": name,
                "seed": self.seed,
                "samples_per_s": res.samples_per_s,
                "elapsed_s": res.elapsed_s,
                "trained_params": res.trained_params,
                "total_params": res.total_params,
                "final_loss": res.history[-1]["loss"] if res.history else None,
                "resumed_from_epoch": res.resumed_from_epoch,
                "epochs_run": len(res.history),
                "best_epoch": res.best_epoch,
                "valid_gauc": best.get("valid_gauc"),  # at the kept epoch
                "valid_loss": best.get("valid_loss"),
                "device": res.device,
                "reused": False,
            }
        )

    def _fit(
        self,
        name: str,
        model: nn.Module,
        loss: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
        tensors: dict[str, torch.Tensor],
        epochs: int,
        select_on: str | None = None,
    ) -> TrainResult:
        batches = shuffled_batches(tensors, self.config.batch_size)
        tc = self._train_config(epochs)
        res = train(
            model,
            loss,
            batches,
            tc,
            checkpoint_dir=self._checkpoint(name),
            evaluate=self._validator(select_on),
        )
        self._record(name, res)
        return res

    def mem(self, name: str, config: MemConfig) -> MultiEntityModel:
        """Pretrain (or reuse) the MEM of ``name`` on both entities' training rows."""
        if name not in self.mem_cache:
            tc = self._train_config(self.config.pretrain_epochs)
            mem, res = pretrain_mem(
                self.tables,
                config,
                tc,
                self.config.batch_size,
                checkpoint_dir=self._checkpoint(name),
                evaluate=self._validator(),
            )
            self._record(name, res)
            self.mem_cache[name] = mem
        return self.mem_cache[name]

    def tem(self, name: str, mem: MultiEntityModel, freeze: bool = True) -> nn.Module:
        if name in self.tem_cache:
            return self.tem_cache[name]
        tc = self._train_config(self.config.target_epochs)
        tem, res = finetune_tem(
            self.tables,
            mem,
            self.config.tem,
            tc,
            self.config.batch_size,
            freeze_mem=freeze,
            checkpoint_dir=self._checkpoint(name),
            evaluate=self._validator(),
        )
        self._record(name, res)
        return tem

    def model(self, name: str) -> nn.Module:
        """Train the model called ``name`` (see the module docstring) and return it."""
        c = self.config
        if name == "mlp_target":
            cols = target_specific_columns(self.spec)
            m = self._init(lambda: SingleTowerModel(self.spec, c.baseline, cols), name)
            self._fit(name, m, target_bce, self.train_target, c.target_epochs)
            return m
        if name in ("shared_bottom", "mmoe"):
            bottom = "shared" if name == "shared_bottom" else "mmoe"
            m = self._init(lambda: JointModel(self.spec, c.baseline, bottom), name)
            self._fit(name, m, joint_bce, self.train_all, c.pretrain_epochs)
            return m
        if name == "finetune":
            m = self._init(lambda: SingleTowerModel(self.spec, c.baseline), name)
            source = self.tables.mapping.source_entity  # pretraining knows no target rows
            self._fit(
                "finetune_source", m, target_bce, self.train_source, c.pretrain_epochs, source
            )
            self._fit("finetune_target", m, target_bce, self.train_target, c.target_epochs)
            return m
        if name == "mkt":
            return self.tem("mkt_tem", self.mem("mkt_mem", c.mem))
        if name == "mkt_without_tem_finetuning":
            return self.mem("mkt_mem", c.mem)
        if name == "mkt_without_hfa":
            mem = self.mem("mem_without_hfa", MemConfig(**{**asdict(c.mem), "use_hfa": False}))
            return self.tem("tem_without_hfa", mem)
        if name == "mkt_without_pdl":
            mem = self.mem("mem_without_pdl", MemConfig(**{**asdict(c.mem), "pdl_weight": 0.0}))
            return self.tem("tem_without_pdl", mem)
        if name == "mkt_without_mem_pretraining":
            fresh = self._init(lambda: MultiEntityModel(self.spec, c.mem), name)
            return self.tem("tem_without_mem_pretraining", fresh, freeze=False)
        raise ValueError(f"unknown MKT experiment model {name!r}; known: {MODELS + ABLATIONS}")

    def evaluate(self, model: nn.Module) -> dict[str, Any]:
        scores = predict_scores(model, self.test_target)
        return evaluate_target(self.test_rows, scores)


def user_feature_rate(
    tables: FeatureTables, entity: str | None, smoothing: float = 2.0
) -> np.ndarray:
    """Scores of the target test rows: the user's click rate on the row's value of the
    first entity-shared feature (the category) over training rows of ``entity`` (None =
    both), shrunk to the overall rate with ``smoothing`` pseudo-impressions."""
    shared = tables.columns("shared")
    if not shared:
        raise ValueError(f"{tables.mapping.dataset}: no entity-shared feature to count on")
    key = ["user_id", shared[0]]
    train = tables.rows("train", entity)
    base = float(train.get_column("label").mean())
    counts = train.group_by(key).agg(pl.col("label").sum().alias("c"), pl.len().alias("n"))
    test = tables.rows("test", tables.mapping.target_entity).select(key)
    joined = test.join(counts, on=key, how="left", maintain_order="left").fill_null(0)
    c, n = joined.get_column("c").to_numpy(), joined.get_column("n").to_numpy()
    return (c + smoothing * base) / (n + smoothing)


def run_experiment(
    tables: FeatureTables,
    config: ExperimentConfig = ExperimentConfig(),
    *,
    checkpoint_root: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    pretrained: dict[int, tuple[MultiEntityModel, nn.Module]] | None = None,
) -> ExperimentResult:
    """Train and evaluate every model of ``config`` for every seed; ``pretrained[seed]``
    = (MEM, TEM) trained with ``config.run(…, seed)`` stands in for that seed's MKT."""
    names = [*config.models, *config.ablations]
    total = len(names) * len(config.seeds) + len(config.references)
    rows: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    root = Path(checkpoint_root) if checkpoint_root is not None else None
    if config.validation_share > 0:
        tables = tables.with_validation(config.validation_share)
    test_rows = tables.rows("test", tables.mapping.target_entity)
    for name in config.references:
        entity = tables.mapping.target_entity if name == "rate_target" else None
        scores = user_feature_rate(tables, entity)
        rows.append({"model": name, "seed": None, **evaluate_target(test_rows, scores)})
    for seed in config.seeds:
        runner = SeedRunner(tables, config, seed, root, (pretrained or {}).get(seed))
        for name in names:
            row = {"model": name, "seed": seed, **runner.evaluate(runner.model(name))}
            rows.append(row)
            if on_progress is not None:
                on_progress(
                    len(rows), total, {"seed": seed, "auc": row["auc"], "gauc": row["gauc"]}
                )
        training.extend(runner.training)
    return ExperimentResult(rows=rows, training=training)


_LIFTS = ("auc_lift", "gauc_lift", "gauc_lift_pct")


def summarize(table: pl.DataFrame, reference: str = REFERENCE_MODEL) -> pl.DataFrame:
    """Mean ± std over seeds per model, and the GAUC/AUC lift over ``reference``."""
    metrics = [c for c in table.columns if c.startswith(("auc", "gauc")) and "users" not in c]
    agg = table.group_by("model", maintain_order=True).agg(
        pl.len().alias("seeds"),
        *[pl.col(c).cast(pl.Float64).mean().alias(f"{c}_mean") for c in metrics],
        *[pl.col(c).cast(pl.Float64).std().alias(f"{c}_std") for c in metrics],
    )
    ref = agg.filter(pl.col("model") == reference)
    if ref.height == 0:  # the reference did not run: the lift columns exist, empty
        lift = [pl.lit(None, pl.Float64).alias(c) for c in _LIFTS]
        return agg.with_columns(lift)
    ref_auc, ref_gauc = ref.item(0, "auc_mean"), ref.item(0, "gauc_mean")
    return agg.with_columns(
        (pl.col("auc_mean") - ref_auc).alias("auc_lift"),
        (pl.col("gauc_mean") - ref_gauc).alias("gauc_lift"),
        ((pl.col("gauc_mean") / ref_gauc - 1) * 100).alias("gauc_lift_pct"),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m recflow.mkt.experiment``: the comparison on a synthetic world, printed."""
    import argparse

    from recflow.data.synthetic import SyntheticConfig, generate
    from recflow.mkt.mappings import SYNTHETIC
    from recflow.mkt.tables import build_feature_tables

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--events", type=int, default=120_000)
    p.add_argument("--users", type=int, default=1_200)
    p.add_argument("--items", type=int, default=1_000)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument(
        "--target-interest-correlation",
        type=float,
        default=1.0,
        help="rho of the synthetic world: posts' interest = rho * shared + sqrt(1-rho^2) * own",
    )
    p.add_argument(
        "--target-share-concentration",
        type=float,
        default=None,
        help="kappa of the synthetic world: each user's post share ~ Beta (default: all 0.25)",
    )
    p.add_argument(
        "--late-adopter-share",
        type=float,
        default=0.3,
        help="users who see posts only late (their taste is known from products only)",
    )
    p.add_argument("--late-adopter-start", type=float, default=0.7)
    p.add_argument("--style-price-link", type=float, default=0.0)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--models", default=",".join(MODELS + ABLATIONS + REFERENCES))
    p.add_argument("--pretrain-epochs", type=int, default=ExperimentConfig.pretrain_epochs)
    p.add_argument("--target-epochs", type=int, default=ExperimentConfig.target_epochs)
    p.add_argument("--validation-share", type=float, default=ExperimentConfig.validation_share)
    p.add_argument("--patience", type=int, default=ExperimentConfig.patience)
    p.add_argument("--lr", type=float, default=ExperimentConfig.lr)
    p.add_argument("--weight-decay", type=float, default=ExperimentConfig.weight_decay)
    p.add_argument("--select-by", choices=list(SELECT_MODES), default=ExperimentConfig.select_by)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="folder for per_seed/summary parquet")
    a = p.parse_args(argv)
    names = tuple(a.models.split(","))
    unknown = [n for n in names if n not in MODELS + ABLATIONS + REFERENCES]
    if unknown:
        p.error(f"--models: unknown {unknown}; known: {', '.join(MODELS + ABLATIONS + REFERENCES)}")
    config = ExperimentConfig(
        seeds=tuple(int(s) for s in a.seeds.split(",")),
        models=tuple(n for n in names if n in MODELS),
        ablations=tuple(n for n in names if n in ABLATIONS),
        references=tuple(n for n in names if n in REFERENCES),
        pretrain_epochs=a.pretrain_epochs,
        target_epochs=a.target_epochs,
        validation_share=a.validation_share,
        patience=a.patience,
        select_by=a.select_by,
        lr=a.lr,
        weight_decay=a.weight_decay,
    )
    torch.set_num_threads(a.threads)
    world = generate(
        SyntheticConfig(
            n_events=a.events,
            n_users=a.users,
            n_items=a.items,
            seed=a.data_seed,
            target_interest_correlation=a.target_interest_correlation,
            target_share_concentration=a.target_share_concentration,
            late_adopter_share=a.late_adopter_share,
            late_adopter_start=a.late_adopter_start,
            style_price_link=a.style_price_link,
        )
    )
    tables = build_feature_tables(world.interactions, world.items, world.users, SYNTHETIC)
    result = run_experiment(
        tables, config, on_progress=lambda i, n, v: print(f"[{i}/{n}] {v}", flush=True)
    )
    summary = result.summary()
    if a.out is not None:  # results first: a printing problem must not lose the run
        a.out.mkdir(parents=True, exist_ok=True)
        outputs = {
            "per_seed": result.table(),
            "summary": summary,
            "training": pl.DataFrame(result.training),
        }
        for name, frame in outputs.items():
            with atomic_path(a.out / f"{name}.parquet") as tmp:
                frame.write_parquet(tmp)
    with pl.Config(tbl_rows=40, tbl_cols=40, tbl_width_chars=250, float_precision=4):
        cols = ["model", "seeds", "auc_mean", "auc_std", "gauc_mean", "gauc_std", "gauc_lift"]
        print(summary.select(cols + [c for c in summary.columns if c.startswith("gauc[")]))
        if result.training:
            print(pl.DataFrame(result.training).drop("device", "resumed_from_epoch"))


if __name__ == "__main__":
    main()
