"""Polarized distribution loss (PDL; MKT section 3.2.3).

The common knowledge extractor should hold what the entities share and each independent
extractor what only its entity has, so their outputs for one sample are pushed apart:

    L_PDL = Σ_k mean_{i ∈ entity k} cos(c_i, s_i)

with c_i the common knowledge of sample i (its entity's MMoE gate) and s_i its entity's
independent knowledge. The MEM loss adds γ·L_PDL (γ = 0.01 in the paper).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def polarized_distribution_loss(
    common: torch.Tensor, independent: torch.Tensor, entity: torch.Tensor, n_entities: int = 2
) -> torch.Tensor:
    """Σ over entities present in the batch of the mean cosine similarity (common, independent).

    ``common``, ``independent``: (B, h); ``entity``: (B,) entity index in [0, n_entities).
    """
    cos = F.cosine_similarity(common.float(), independent.float(), dim=-1, eps=1e-8)  # (B,)
    total = cos.new_zeros(())
    for k in range(n_entities):
        mine = entity == k
        if bool(mine.any()):
            total = total + cos[mine].mean()
    return total


def polarized_distribution_loss_reference(
    common: list[list[float]], independent: list[list[float]], entity: list[int]
) -> float:
    """The same loss in plain Python, for tests: per entity, the mean of dot/(|c|·|s|)."""
    by_entity: dict[int, list[float]] = {}
    for c, s, k in zip(common, independent, entity, strict=True):
        dot = sum(a * b for a, b in zip(c, s, strict=True))
        norm = sum(a * a for a in c) ** 0.5 * sum(b * b for b in s) ** 0.5
        by_entity.setdefault(k, []).append(dot / norm)
    return sum(sum(v) / len(v) for v in by_entity.values())
