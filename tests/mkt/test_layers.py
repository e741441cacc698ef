"""HFA, the DCN cross, attention pooling, MMoE and the gate on hand-computed cases."""

from __future__ import annotations

import torch

from recflow.mkt.hfa import HeterogeneousFeatureAlignment
from recflow.mkt.layers import (
    AttentionPooling,
    CrossNetwork,
    GluGate,
    MultiGateMixtureOfExperts,
    pooling_reference,
)


def _fields(batch: int = 5, n: int = 3, d: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, n, d, generator=torch.Generator().manual_seed(seed))


def test_hfa_output_shape_and_importance_range() -> None:
    torch.manual_seed(0)
    hfa = HeterogeneousFeatureAlignment(n_fields=3, dim=4, out_dim=7)
    x = _fields() * 3.0
    assert hfa(x).shape == (5, 7)
    w = hfa.importance_weights(x).detach()
    assert w.shape == (5, 3)
    assert bool((w > 0).all()) and bool((w < 2).all())
    assert float(w.max() - w.min()) > 0.01  # sample- and field-dependent, not a constant


def test_hfa_importance_is_two_sigmoid_of_the_fc_output() -> None:
    torch.manual_seed(0)
    hfa = HeterogeneousFeatureAlignment(n_fields=3, dim=4, out_dim=7)
    with torch.no_grad():
        hfa.importance.weight.zero_()
        hfa.importance.bias.copy_(torch.tensor([0.0, 100.0, -100.0]))
    w = hfa.importance_weights(_fields())
    torch.testing.assert_close(w, torch.tensor([[1.0, 2.0, 0.0]]).expand(5, 3))
    # w = 1 everywhere → the aligned vector is the MLP of the unweighted flattened fields
    with torch.no_grad():
        hfa.importance.bias.zero_()
    x = _fields()
    torch.testing.assert_close(hfa(x), hfa.align(x.flatten(1)))


def test_cross_network_matches_hand_computation() -> None:
    cross = CrossNetwork(dim=2, layers=1)
    with torch.no_grad():
        cross.w.copy_(torch.tensor([[0.5, 1.0]]))
        cross.b.copy_(torch.tensor([[0.1, 0.2]]))
    # x1 = x0 · (x0ᵀw) + b + x0 = [1, 2] · 2.5 + [0.1, 0.2] + [1, 2]
    got = cross(torch.tensor([[1.0, 2.0]]))
    torch.testing.assert_close(got, torch.tensor([[3.6, 7.2]]))


def test_attention_pooling_ignores_padding() -> None:
    torch.manual_seed(0)
    pool = AttentionPooling(dim=3)
    keys = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    query = torch.randn(2, 3, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[False, False, True, False], [False, False, False, False]])
    out = pool(query, keys, mask)
    # one real item: its key scaled by its un-normalised weight a = MLP([q, k, q⊙k, q−k])
    q, k = query[0], keys[0, 2]
    a = pool.score(torch.cat([q, k, q * k, q - k]))
    torch.testing.assert_close(out[0], a * k)
    torch.testing.assert_close(out[1], torch.zeros(3))  # empty sequence → zeros
    changed = keys.clone()
    changed[0, [0, 1, 3]] = 99.0  # padded positions do not matter
    torch.testing.assert_close(pool(query, changed, mask), out)


def test_attention_pooling_equals_concatenated_reference_values_and_gradients() -> None:
    """The factored first layer is DIN's MLP([q, k, q⊙k, q−k]) to float64 rounding, for
    one sequence (B, L, d) and for several sequences per sample (B, E, L, d), each pooled
    with that sample's query, in values and in every gradient (parameters, query, keys)."""
    torch.manual_seed(0)
    pool = AttentionPooling(dim=5, hidden=7).double()
    g = torch.Generator().manual_seed(4)
    query = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(6, 3, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(6, 3, 4, generator=g) > 0.3
    mask[0] = False  # a sample with no history at all

    def grads(out: torch.Tensor) -> list[torch.Tensor]:
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(5), dtype=out.dtype)
        inputs = [query, keys, *pool.parameters()]
        return list(torch.autograd.grad((out * weight).sum(), inputs))

    got = pool(query, keys, mask)  # (6, 3, 5)
    ref = torch.stack(
        [pooling_reference(pool, query, keys[:, e], mask[:, e]) for e in range(3)], dim=1
    )
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    for a, b in zip(grads(got), grads(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    one = pool(query, keys[:, 1], mask[:, 1])  # (B, L, d) → (B, d)
    torch.testing.assert_close(one, ref[:, 1], rtol=0, atol=1e-12)
    assert torch.all(got[0] == 0)


def test_mmoe_gates_mix_experts_convexly() -> None:
    torch.manual_seed(0)
    mmoe = MultiGateMixtureOfExperts(in_dim=4, expert_sizes=(6,), n_experts=3, n_tasks=2)
    for f in mmoe.experts[1:]:
        f.load_state_dict(mmoe.experts[0].state_dict())  # identical experts
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(3))
    out = mmoe(x)
    assert out.shape == (5, 2, 6)
    expert = mmoe.experts[0](x)
    torch.testing.assert_close(out[:, 0], expert)  # softmax weights sum to 1
    torch.testing.assert_close(out[:, 1], expert)


def test_glu_gate_matches_hand_computation() -> None:
    gate = GluGate(dim=2, knowledge_dim=1)
    with torch.no_grad():
        gate.project.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        gate.project.bias.zero_()
        gate.gate.weight.zero_()
        gate.gate.bias.copy_(torch.tensor([0.0, 100.0]))
    v, m = torch.tensor([[1.0, 1.0]]), torch.tensor([[3.0]])
    # v + σ([0, 100]) ⊙ (W m) = [1, 1] + [0.5, 1] ⊙ [6, -3]
    torch.testing.assert_close(gate(v, m), torch.tensor([[4.0, -2.0]]))
