"""Small building blocks of the MKT networks: MLP, DCN cross network, attention pooling,
MMoE and the GLU-style gate. Each is the textbook form, with its equation beside the code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class Mlp(nn.Module):
    """Linear → ReLU blocks; the last layer is linear (no activation) when ``last_linear``."""

    def __init__(self, in_dim: int, sizes: Sequence[int], last_linear: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for i, h in enumerate(sizes):
            layers.append(nn.Linear(d, h))
            if not (last_linear and i == len(sizes) - 1):
                layers.append(nn.ReLU())
            d = h
        self.net = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossNetwork(nn.Module):
    """DCN's explicit feature cross (Wang et al. 2017), ``layers`` deep."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(layers, dim) * dim**-0.5)
        self.b = nn.Parameter(torch.zeros(layers, dim))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (batch, dim)
        for w, b in zip(self.w, self.b, strict=True):
            # x_{l+1} = x_0 · (x_l^T w_l) + b_l + x_l
            x = x0 * (x @ w).unsqueeze(-1) + b + x
        return x


class AttentionPooling(nn.Module):
    """Target-aware attention pooling of a behaviour sequence, as in DIN (Zhou et al. 2018).

    a_j = MLP([q, k_j, q⊙k_j, q−k_j]); output Σ_j a_j k_j over the non-padded positions.
    Like DIN, the weights are not softmax-normalised, so how many relevant items the user
    clicked (the intensity of an interest) survives the pooling; an empty sequence → zeros.

    The MLP's first layer W = [W_q | W_k | W_p | W_d] is applied without building the
    (B, L, 4d) input: W [q; k; q⊙k; q−k] + b = (W_q + W_d) q + b + (W_k − W_d + W_p diag(q)) k,
    one (d → hidden) matrix per sample, so the keys go through one batched product
    (``pooling_reference`` is the concatenated form; they are tested equal).
    """

    def __init__(self, dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.score = Mlp(4 * dim, (hidden, 1), last_linear=True)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query (B, d); keys (B, ..., L, d) with mask (B, ..., L) True where a real item
        → (B, ..., d): every sequence of a sample is pooled with that sample's query."""
        first, _, last = self.score.net
        d = query.shape[-1]
        w_q, w_k, w_p, w_d = first.weight.split(d, dim=1)  # each (hidden, d)
        const = F.linear(query, w_q + w_d, first.bias)  # (B, hidden)
        per_sample = (w_k - w_d) + w_p * query.unsqueeze(1)  # (B, hidden, d)
        flat = keys.reshape(keys.shape[0], -1, d)  # (B, N, d)
        hidden = torch.baddbmm(const.unsqueeze(1), flat, per_sample.transpose(1, 2))
        a = F.linear(torch.relu(hidden), last.weight, last.bias).reshape(mask.shape)
        a = a * mask.to(a.dtype)
        return (a.unsqueeze(-2) @ keys).squeeze(-2)


def pooling_reference(
    pool: AttentionPooling, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``AttentionPooling`` as DIN writes it, MLP([q, k, q⊙k, q−k]) on the concatenation,
    for keys (B, L, d): the reference its factored form is tested against."""
    q = query.unsqueeze(1).expand_as(keys)
    a = pool.score(torch.cat([q, keys, q * keys, q - keys], dim=-1)).squeeze(-1)  # (B, L)
    a = a * mask.to(a.dtype)
    return (a.unsqueeze(-1) * keys).sum(dim=1)


class MultiGateMixtureOfExperts(nn.Module):
    """MMoE (Ma et al. 2018): shared experts, one softmax gate per task.

    h_k = Σ_e softmax(W_k x)_e · f_e(x)
    """

    def __init__(
        self, in_dim: int, expert_sizes: Sequence[int], n_experts: int, n_tasks: int
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(Mlp(in_dim, expert_sizes) for _ in range(n_experts))
        self.gates = nn.ModuleList(nn.Linear(in_dim, n_experts) for _ in range(n_tasks))
        self.out_dim = self.experts[0].out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        experts = torch.stack([f(x) for f in self.experts], dim=1)  # (B, E, h)
        gates = torch.stack([torch.softmax(g(x), dim=-1) for g in self.gates], dim=1)  # (B, T, E)
        return gates @ experts  # (B, T, h)


class GluGate(nn.Module):
    """Merges a frozen model's vector into the fine-tuned model's (GLU-style).

    v' = v + σ(W_g [v; m] + b_g) ⊙ (W_m m + b_m): the gate decides, per unit, how much of
    the projected MEM knowledge m enters the TEM vector v.
    """

    def __init__(self, dim: int, knowledge_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(knowledge_dim, dim)
        self.gate = nn.Linear(dim + knowledge_dim, dim)

    def forward(self, v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(torch.cat([v, m], dim=-1)))  # (B, dim)
        return v + g * self.project(m)
