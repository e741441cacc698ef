"""The two MKT stages as plain functions (what the assets call): pretrain MEM on both
entities' training rows, then fine-tune TEM on the target's, MEM frozen. Both go through
the shared loop ``recflow.train.train`` and so checkpoint per epoch, resume, and keep
the best epoch by ``evaluate`` when the train config selects one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from recflow.metrics import auc, gauc
from recflow.mkt.batches import predict_scores, shuffled_batches
from recflow.mkt.losses import target_bce
from recflow.mkt.mem import MemConfig, MultiEntityModel, mem_loss
from recflow.mkt.tables import FeatureTables
from recflow.mkt.tem import TargetEntityModel, TemConfig
from recflow.progress import ProgressFn
from recflow.seeding import seed_torch
from recflow.train import EvalFn, TrainConfig, TrainResult, train


def pretrain_mem(
    tables: FeatureTables,
    mem_config: MemConfig,
    train_config: TrainConfig,
    batch_size: int,
    *,
    checkpoint_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    evaluate: EvalFn | None = None,
) -> tuple[MultiEntityModel, TrainResult]:
    """MEM initialised from ``train_config.seed`` and trained on source + target rows."""
    seed_torch(train_config.seed, "mem_init")
    mem = MultiEntityModel(tables.spec(), mem_config)
    mem.embedder.set_item_shared(torch.from_numpy(tables.item_shared))
    result = train(
        mem,
        mem_loss,
        shuffled_batches(tables.tensors("train"), batch_size),
        train_config,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        on_progress=on_progress,
        evaluate=evaluate,
    )
    return mem, result


def finetune_tem(
    tables: FeatureTables,
    mem: MultiEntityModel,
    tem_config: TemConfig,
    train_config: TrainConfig,
    batch_size: int,
    *,
    freeze_mem: bool = True,
    checkpoint_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    evaluate: EvalFn | None = None,
) -> tuple[TargetEntityModel, TrainResult]:
    """TEM on the target entity's training rows, with ``mem`` frozen (by default)."""
    seed_torch(train_config.seed, "tem_init")
    tem = TargetEntityModel(tables.spec(), mem, tem_config, freeze_mem=freeze_mem)
    tem.embedder.set_item_shared(torch.from_numpy(tables.item_shared))
    mem.embedder.set_item_shared(torch.from_numpy(tables.item_shared))
    result = train(
        tem,
        target_bce,
        shuffled_batches(tables.tensors("train", tables.mapping.target_entity), batch_size),
        train_config,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        on_progress=on_progress,
        evaluate=evaluate,
    )
    return tem, result


def validation_gauc(tables: FeatureTables, entity: str) -> EvalFn:
    """An ``evaluate`` for the training loop on ``entity``'s valid rows: GAUC, AUC and the
    mean log loss (a smoother stopping signal than a ranking metric on few rows)."""
    tensors = tables.tensors("valid", entity)
    rows = tables.rows("valid", entity)
    users = rows.get_column("user_id").to_numpy()
    labels = rows.get_column("label").to_numpy()
    if len(labels) == 0:
        raise ValueError(
            f"no 'valid' rows of {entity!r}: split them off with FeatureTables.with_validation"
        )
    if labels.min() == labels.max():
        raise ValueError(f"the valid split of {entity!r} needs both labels to select on")

    def evaluate(model: nn.Module) -> dict[str, float]:
        scores = predict_scores(model, tensors)
        p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
        log_loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p))
        return {
            "valid_gauc": float(gauc(users, labels, scores).value),
            "valid_auc": auc(labels, scores),
            "valid_loss": float(log_loss),
        }

    return evaluate
