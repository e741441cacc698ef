"""The polarized distribution loss on hand-made vectors and against a plain reference."""

from __future__ import annotations

import torch

from recflow.mkt.pdl import polarized_distribution_loss, polarized_distribution_loss_reference


def test_pdl_on_hand_made_vectors() -> None:
    common = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    independent = torch.tensor([[0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]])
    # cosines: 0 (orthogonal), 1 (parallel), -1 (opposite)
    same_entity = polarized_distribution_loss(common, independent, torch.tensor([0, 0, 0]))
    torch.testing.assert_close(same_entity, torch.tensor(0.0))  # mean(0, 1, -1)
    split = polarized_distribution_loss(common, independent, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(split, torch.tensor(0.5 - 1.0))  # mean(0, 1) + mean(-1)
    only_target = polarized_distribution_loss(common[2:], independent[2:], torch.tensor([1]))
    torch.testing.assert_close(only_target, torch.tensor(-1.0))


def test_pdl_matches_the_reference_on_random_vectors() -> None:
    g = torch.Generator().manual_seed(0)
    c, s = torch.randn(40, 6, generator=g), torch.randn(40, 6, generator=g)
    e = torch.randint(0, 2, (40,), generator=g)
    want = polarized_distribution_loss_reference(c.tolist(), s.tolist(), e.tolist())
    got = polarized_distribution_loss(c, s, e)
    assert abs(float(got) - want) < 1e-5


def test_pdl_gradient_pushes_the_two_vectors_apart() -> None:
    c = torch.tensor([[1.0, 0.2]], requires_grad=True)
    s = torch.tensor([[1.0, 0.0]])
    before = float(polarized_distribution_loss(c, s, torch.tensor([1])).detach())
    polarized_distribution_loss(c, s, torch.tensor([1])).backward()
    with torch.no_grad():
        c -= 0.5 * c.grad
    assert float(polarized_distribution_loss(c, s, torch.tensor([1])).detach()) < before
