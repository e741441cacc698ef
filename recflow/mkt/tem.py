"""The target entity model (TEM; MKT section 3.3), fine-tuned on target impressions only.

TEM has its own embeddings (user profile, sequences, entity-shared, the target's specific
features), its own bottom MLP and tower. The pretrained MEM runs frozen beside it and its
vectors enter TEM through GLU-style gates, group by group:

    u' = G_u(u, u_MEM)   q' = G_q(q, q_MEM)   e' = G_e(e, e_MEM)      (embedding level)
    h  = MLP([u'; q'; e'; target-specific])
    h' = G_c(h, c_MEM,target)                                          (knowledge level)
    ŷ  = σ(tower(h'))

``freeze_mem=False`` trains MEM together with TEM (the "without MEM pretraining" ablation
passes an untrained MEM this way); ``use_gates=False`` drops every gate (TEM alone).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from recflow.mkt.embedder import FeatureEmbedder
from recflow.mkt.layers import GluGate, Mlp
from recflow.mkt.mem import MultiEntityModel
from recflow.mkt.tables import FeatureSpec

TARGET = 1


@dataclass(frozen=True)
class TemConfig:
    """TEM architecture."""

    dim: int = 16
    hidden_sizes: tuple[int, ...] = (128, 64)
    tower_sizes: tuple[int, ...] = (64,)
    use_gates: bool = True
    init_embeddings_from_mem: bool = True  # start TEM's own embeddings as a copy of MEM's

    def to_json(self) -> dict:
        return asdict(self)


def target_specific_columns(spec: FeatureSpec) -> list[int]:
    """Indices of the target entity's specific columns."""
    return [i for i, e in enumerate(spec.specific_entity) if e == TARGET]


class TargetEntityModel(nn.Module):
    """TEM with a (by default frozen) MEM; ``forward(batch)`` → logits (B,)."""

    def __init__(
        self,
        spec: FeatureSpec,
        mem: MultiEntityModel,
        config: TemConfig = TemConfig(),
        freeze_mem: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.mem = mem
        self.freeze_mem = freeze_mem
        if freeze_mem:
            for p in self.mem.parameters():
                p.requires_grad_(False)
        self.embedder = FeatureEmbedder(spec, config.dim, target_specific_columns(spec))
        if config.init_embeddings_from_mem:
            self._copy_embeddings(mem.embedder)
        e, me = self.embedder, mem.embedder
        if config.use_gates:
            self.gate_user = GluGate(e.user_dim, me.user_dim)
            self.gate_sequences = GluGate(e.sequence_dim, me.sequence_dim)
            self.gate_shared = GluGate(e.shared_dim, me.shared_dim)
        n_spec = len(e.specific_columns) * config.dim
        self.bottom = Mlp(e.user_dim + e.sequence_dim + e.shared_dim + n_spec, config.hidden_sizes)
        if config.use_gates:
            self.gate_common = GluGate(self.bottom.out_dim, mem.common_dim)
        self.tower = Mlp(self.bottom.out_dim, (*config.tower_sizes, 1), last_linear=True)

    def _copy_embeddings(self, source: FeatureEmbedder) -> None:
        """Copy every embedding (and the pooling) of MEM whose name and shape match."""
        if source.dim != self.embedder.dim:
            raise ValueError(f"TEM dim {self.embedder.dim} != MEM dim {source.dim}: cannot copy")
        mine = self.embedder.state_dict()
        theirs = source.state_dict()
        for i, col in enumerate(self.embedder.specific_columns):  # TEM keeps a subset
            theirs[f"specific.{i}.weight"] = source.specific[col].weight
        self.embedder.load_state_dict(
            {k: theirs[k].detach().clone() if k in theirs else v for k, v in mine.items()}
        )

    def train(self, mode: bool = True) -> TargetEntityModel:
        """A frozen MEM stays in eval mode while TEM trains."""
        super().train(mode)
        if self.freeze_mem:
            self.mem.eval()
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.embedder(batch)
        u, q, s = x.user, x.sequences, x.shared
        if self.config.use_gates:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_mem):
                k = self.mem.knowledge(batch)
            u = self.gate_user(u, k.inputs.user)
            q = self.gate_sequences(q, k.inputs.sequences)
            s = self.gate_shared(s, k.inputs.shared)
        h = self.bottom(torch.cat([u, q, s, x.specific.flatten(1)], dim=-1))  # (B, hidden)
        if self.config.use_gates:
            h = self.gate_common(h, k.common[:, TARGET])
        return self.tower(h).squeeze(-1)
