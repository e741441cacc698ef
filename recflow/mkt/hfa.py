"""Heterogeneous feature alignment (HFA; MKT section 3.2.2).

The entity-specific features of the source and the target entity occupy different slots
(a product row has price/brand and an empty style slot, a post the reverse). HFA scales
them by a learned, sample-dependent importance and maps them to one common-size vector:

    x_0 = flatten(e_1..e_n)                         (B, n·d)
    c = CrossNet(x_0), h = MLP(x_0)                 explicit and implicit crosses
    w = 2·σ(FC([c; h]))                             (B, n), importance in (0, 2)
    a = MLP(flatten(w_i · e_i))                     (B, out_dim)

2·σ lets a feature be amplified (w > 1) as well as suppressed (w < 1), centred on 1.
"""

from __future__ import annotations

import torch
from torch import nn

from recflow.mkt.layers import CrossNetwork, Mlp


class HeterogeneousFeatureAlignment(nn.Module):
    """Entity-specific field embeddings (B, n, d) → aligned vector (B, out_dim)."""

    def __init__(
        self, n_fields: int, dim: int, out_dim: int, cross_layers: int = 2, hidden: int = 64
    ) -> None:
        super().__init__()
        flat = n_fields * dim
        self.cross = CrossNetwork(flat, cross_layers)
        self.deep = Mlp(flat, (hidden,))
        self.importance = nn.Linear(flat + hidden, n_fields)
        self.align = Mlp(flat, (hidden, out_dim))
        self.out_dim = out_dim

    def importance_weights(self, fields: torch.Tensor) -> torch.Tensor:
        """w = 2·σ(FC([CrossNet(x_0); MLP(x_0)])), shape (B, n), values in (0, 2)."""
        x0 = fields.flatten(1)  # (B, n·d)
        return 2.0 * torch.sigmoid(self.importance(torch.cat([self.cross(x0), self.deep(x0)], -1)))

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        w = self.importance_weights(fields)  # (B, n)
        return self.align((fields * w.unsqueeze(-1)).flatten(1))  # (B, out_dim)
