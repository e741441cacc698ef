"""The seeding helper: reproducible, and distinct streams per seed and salt."""

import torch

from recflow.seeding import derive_seed, generator, seed_torch


def test_same_seed_and_salt_same_stream() -> None:
    a = torch.randn(5, generator=generator(3, "init"))
    b = torch.randn(5, generator=generator(3, "init"))
    assert torch.equal(a, b)
    seed_torch(3, "init")
    c = torch.randn(5)
    seed_torch(3, "init")
    assert torch.equal(c, torch.randn(5))


def test_streams_differ_by_seed_and_salt() -> None:
    seeds = {derive_seed(s, *salt) for s in range(50) for salt in [(), ("init",), ("epoch", 1)]}
    assert len(seeds) == 150
    assert all(0 <= s < 2**63 for s in seeds)
    # the salt is not concatenated ambiguously: (1, 23) and (12, 3) differ
    assert derive_seed(1, 23) != derive_seed(12, 3)
