"""PeterRec model patches (Yuan et al., SIGIR 2020, Section 3.3).

A model patch is a 1×1 bottleneck convolution with a residual connection:
``MP(x) = x + W_up · act(W_down · x)`` with W_down: C → C/r and W_up: C/r → C (r = 4 in
the paper). W_up starts at zero, so a freshly patched network computes exactly what the
pretrained one did; fine-tuning then moves only the patches (plus layer norms and the new
head), a few percent of the parameters.

Two insertions into every residual block of NextItNet:
- serial: the patch follows each dilated convolution,
  ``y = MP(conv(x)) = conv(x) + W_up·act(W_down·conv(x))``;
- parallel: the patch runs beside each dilated convolution on the same input,
  ``y = conv(x) + W_up·act(W_down·x)``.
"""

from __future__ import annotations

from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import nn

from recflow.seeding import generator
from recflow.seq.nextitnet import NextItNetEncoder


class Insertion(StrEnum):
    SERIAL = "serial"
    PARALLEL = "parallel"


class ModelPatch(nn.Module):
    """The bottleneck branch W_up · act(W_down · x) on (B, T, C); zero at initialisation.

    Its weights live in 1×1 ``Conv1d`` modules (checkpoint layout) and run as per-position
    linear maps on the (B, T, C) layout of the encoder.

    W_down is Xavier-uniform from the stream ("patch", ``index``) of the run's ``seed``, so
    every patch of a network gets its own draw and the global RNG plays no part."""

    def __init__(self, channels: int, reduction: int = 4, seed: int = 0, index: int = 0) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f"channels {channels} not divisible by reduction {reduction}")
        hidden = channels // reduction
        self.down = nn.Conv1d(channels, hidden, kernel_size=1)
        self.up = nn.Conv1d(hidden, channels, kernel_size=1)
        g = generator(seed, "patch", index)  # the index-th patch of a run seeded with seed
        with torch.no_grad():
            bound = (6.0 / (channels + hidden)) ** 0.5  # Xavier-uniform, from a seeded generator
            self.down.weight.copy_(
                torch.rand(self.down.weight.shape, generator=g) * 2 * bound - bound
            )
            self.down.bias.zero_()
            self.up.weight.zero_()
            self.up.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(F.linear(x, self.down.weight[:, :, 0], self.down.bias))  # (B, T, C/r)
        return F.linear(hidden, self.up.weight[:, :, 0], self.up.bias)  # (B, T, C)


class PatchedConv(nn.Module):
    """A dilated causal convolution with a model patch inserted serially or in parallel."""

    def __init__(self, conv: nn.Module, patch: ModelPatch, insertion: Insertion) -> None:
        super().__init__()
        self.conv = conv
        self.patch = patch
        self.insertion = Insertion(insertion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # (B, T, C)
        if self.insertion is Insertion.SERIAL:
            return y + self.patch(y)  # MP(conv(x))
        return y + self.patch(x)  # conv(x) + patch branch(x)


def insert_patches(
    encoder: NextItNetEncoder, insertion: Insertion | str, reduction: int = 4, seed: int = 0
) -> list[ModelPatch]:
    """Wrap both dilated convolutions of every block in place; return the new patches."""
    insertion = Insertion(insertion)
    channels = encoder.config.channels
    patches: list[ModelPatch] = []
    for i, block in enumerate(encoder.blocks):
        for name in ("conv1", "conv2"):
            conv = getattr(block, name)
            if isinstance(conv, PatchedConv):
                raise ValueError(f"block {i}.{name} is already patched")
            patch = ModelPatch(channels, reduction, seed=seed, index=len(patches))
            setattr(block, name, PatchedConv(conv, patch, insertion))
            patches.append(patch)
    return patches


def patch_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Every parameter that belongs to a model patch."""
    return [p for m in module.modules() if isinstance(m, ModelPatch) for p in m.parameters()]
