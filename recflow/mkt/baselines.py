"""The baselines of MKT's experiments (section 4.1.3), on the same tables and inputs.

- ``SingleTowerModel``: embeddings → MLP → logit. On target rows with the target's own
  specific features it is the single-domain MLP; with every entity's specific slots,
  pretrained on source rows then fine-tuned on target rows, it is "Finetune".
- ``JointModel``: both entities trained together, a shared-bottom MLP or an MMoE under
  one tower per entity (loss BCE_source + BCE_target).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from recflow.mkt.embedder import FeatureEmbedder
from recflow.mkt.layers import Mlp, MultiGateMixtureOfExperts
from recflow.mkt.tables import FeatureSpec

N_ENTITIES = 2


@dataclass(frozen=True)
class BaselineConfig:
    """Sizes shared by the baselines (kept equal to MEM/TEM's for a fair comparison)."""

    dim: int = 16
    hidden_sizes: tuple[int, ...] = (128, 64)
    tower_sizes: tuple[int, ...] = (64,)
    n_experts: int = 4

    def to_json(self) -> dict:
        return asdict(self)


def _input_dim(e: FeatureEmbedder) -> int:
    return e.user_dim + e.sequence_dim + e.shared_dim + len(e.specific_columns) * e.dim


def _flat_inputs(e: FeatureEmbedder, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    x = e(batch)
    return torch.cat([x.user, x.sequences, x.shared, x.specific.flatten(1)], dim=-1)


class SingleTowerModel(nn.Module):
    """Embeddings of the chosen specific columns (None = all) → MLP → logit (B,)."""

    def __init__(
        self,
        spec: FeatureSpec,
        config: BaselineConfig = BaselineConfig(),
        specific_columns: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.embedder = FeatureEmbedder(spec, config.dim, specific_columns)
        self.net = Mlp(
            _input_dim(self.embedder), (*config.hidden_sizes, *config.tower_sizes, 1), True
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(_flat_inputs(self.embedder, batch)).squeeze(-1)


class JointModel(nn.Module):
    """Shared bottom (``bottom="shared"``) or MMoE (``bottom="mmoe"``) + a tower per entity."""

    def __init__(
        self, spec: FeatureSpec, config: BaselineConfig = BaselineConfig(), bottom: str = "shared"
    ) -> None:
        super().__init__()
        if bottom not in ("shared", "mmoe"):
            raise ValueError(f"bottom must be 'shared' or 'mmoe', got {bottom!r}")
        self.embedder = FeatureEmbedder(spec, config.dim)
        in_dim = _input_dim(self.embedder)
        self.bottom_kind = bottom
        if bottom == "shared":
            self.bottom: nn.Module = Mlp(in_dim, config.hidden_sizes)
            out = self.bottom.out_dim
        else:
            self.bottom = MultiGateMixtureOfExperts(
                in_dim, config.hidden_sizes, config.n_experts, N_ENTITIES
            )
            out = self.bottom.out_dim
        self.towers = nn.ModuleList(
            Mlp(out, (*config.tower_sizes, 1), last_linear=True) for _ in range(N_ENTITIES)
        )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = _flat_inputs(self.embedder, batch)
        entity = batch["entity"]
        if self.bottom_kind == "shared":
            h = self.bottom(x)  # (B, h)
            logits = torch.cat([t(h) for t in self.towers], dim=-1)  # (B, 2)
        else:
            h = self.bottom(x)  # (B, 2, h)
            logits = torch.cat([t(h[:, k]) for k, t in enumerate(self.towers)], dim=-1)
        return logits.gather(1, entity.view(-1, 1)).squeeze(1)
