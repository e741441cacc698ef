"""One place that turns a run's seed into the seeds of its random streams.

Every random stream in recflow (initial weights, batch order, dropout, negative samples)
is seeded from the run's ``seed`` and a *salt* naming the stream (``"init"``,
``("epoch", 3)``), so streams are independent of each other and of the order in which
they are created, and two runs with the same seed match bit for bit on the CPU.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *salt: int | str) -> int:
    """A 63-bit seed for the stream ``salt`` of a run seeded with ``seed`` (BLAKE2b of
    both, so nearby seeds and salts give unrelated streams)."""
    text = "/".join([str(int(seed)), *(str(s) for s in salt)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def generator(seed: int, *salt: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for the stream ``salt`` (pass it to ``randperm``, ``randn``…)."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *salt))


def seed_torch(seed: int, *salt: int | str) -> None:
    """Seed torch's global generator for the stream ``salt`` (for code that draws from it,
    such as ``nn.Module`` initialisers and dropout)."""
    torch.manual_seed(derive_seed(seed, *salt))
