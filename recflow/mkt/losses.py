"""The binary cross-entropy losses of the MKT models and baselines."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def per_entity_bce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    entity: torch.Tensor,
    n_entities: int = 2,
    *,
    weighting: str,
) -> torch.Tensor:
    """BCE_source + BCE_target over a mixed batch; each model states its ``weighting``
    (MEM: ``MemConfig.loss_weighting``; the joint baselines: "entity").

    ``weighting="entity"``: Σ_k mean_{i∈k} BCE_i, each entity weighs the same whatever its
    volume. ``"volume"``: Σ_k Σ_{i∈k} BCE_i / B, each sample weighs the same (the plain
    batch mean), so the scarce target rows are not revisited at a higher weight.
    ``logits``, ``labels``, ``entity``: (B,). Entities absent from the batch add nothing.
    """
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
    if weighting == "volume":
        return losses.mean()
    if weighting != "entity":
        raise ValueError(f"weighting must be 'entity' or 'volume', got {weighting!r}")
    total = losses.new_zeros(())
    for k in range(n_entities):
        mine = entity == k
        if bool(mine.any()):
            total = total + losses[mine].mean()
    return total


def target_bce(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean BCE of a single-entity model (TEM, single-domain MLP, Finetune)."""
    return F.binary_cross_entropy_with_logits(model(batch).float(), batch["label"].float())


def joint_bce(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """BCE_source + BCE_target of a joint model whose forward picks each sample's tower,
    each entity weighing the same (the paper's sum of per-entity losses)."""
    return per_entity_bce(model(batch), batch["label"], batch["entity"], weighting="entity")
