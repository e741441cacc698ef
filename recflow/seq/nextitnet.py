"""NextItNet: a stack of dilated causal 1-D convolutions over item embeddings.

Yuan et al., "A Simple Convolutional Generative Network for Next Item Recommendation"
(WSDM 2019), the backbone that PeterRec (Yuan et al., SIGIR 2020) pretrains and patches.

Tensors run as (batch, seq, channels) from the embedding to the head. A causal
convolution left-pads by (kernel − 1)·dilation, so the output at position t sees inputs
at t, t − d, ..., t − (k−1)·d and never a later one; it runs as one matrix product of the
k shifted copies of the input, side by side, with the weight laid out to match. That is
the same function as ``Conv1d`` on (batch, channels, seq) with the same parameters (and
checkpoints), without the transposes that layer norm over channels would need around
every convolution (a fine_all step on 2 CPU threads: 0.267 s → 0.185 s; the Conv1d form
is kept as ``encode_with_conv1d``, the reference). A residual block (the paper's Fig. 3b)
is: dilated conv (d) → layer norm → ReLU → dilated conv (2d) → layer norm → ReLU, plus the
input. Positions holding PAD are zeroed after every activation, so how much left padding
a sequence has does not change the output at its real positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recflow.seq.sequences import PAD


@dataclass(frozen=True)
class NextItNetConfig:
    """Shape of the network (stored beside every checkpoint)."""

    n_tokens: int  # vocabulary: items + PAD + CLS
    channels: int = 64
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    n_stacks: int = 2  # the dilations are repeated this many times
    dropout: float = 0.0

    @property
    def block_dilations(self) -> list[int]:
        return list(self.dilations) * self.n_stacks

    @property
    def receptive_field(self) -> int:
        """How many past positions the last output can see (itself included)."""
        return 1 + sum(3 * d * (self.kernel_size - 1) for d in self.block_dilations)


class CausalConv1d(nn.Module):
    """A dilated convolution on (B, T, C) whose output at t depends only on inputs at ≤ t.

    The parameters live in a ``Conv1d`` (weight (C_out, C_in, k)) so that checkpoints
    keep their layout; ``forward`` computes y_t = Σ_j W[:, :, j] · x_{t − (k−1−j)·d} + b
    (zeros before the start) as one product: (B·T, k·C_in) shifted taps × (k·C_in, C_out).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, c_in = x.shape
        k, d = self.conv.kernel_size[0], self.conv.dilation[0]
        padded = F.pad(x, (0, 0, self.left_pad, 0))  # (B, pad + T, C_in)
        taps = torch.cat([padded[:, j * d : j * d + length] for j in range(k)], dim=-1)
        weight = self.conv.weight.permute(2, 1, 0).reshape(k * c_in, -1)  # row j·C_in + c
        out = torch.addmm(self.conv.bias, taps.view(batch * length, k * c_in), weight)
        return out.view(batch, length, -1)  # (B, T, C_out)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels of a (B, T, C) tensor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)  # (B, T, C)


class ResidualBlock(nn.Module):
    """x + ReLU(LN(conv_2d(ReLU(LN(conv_d(x))))))."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv1: nn.Module = CausalConv1d(channels, kernel_size, dilation)
        self.norm1 = ChannelLayerNorm(channels)
        self.conv2: nn.Module = CausalConv1d(channels, kernel_size, 2 * dilation)
        self.norm2 = ChannelLayerNorm(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        # x: (B, T, C); keep: (B, T, 1), 1 at real positions and 0 at PAD
        h = F.relu(self.norm1(self.conv1(x))) * keep
        h = F.relu(self.norm2(self.conv2(h))) * keep
        return x + self.dropout(h)


class NextItNetEncoder(nn.Module):
    """Item embedding + residual blocks: tokens (B, T) → hidden states (B, T, C)."""

    def __init__(self, config: NextItNetConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.n_tokens, config.channels, padding_idx=PAD)
        self.blocks = nn.ModuleList(
            ResidualBlock(config.channels, config.kernel_size, d, config.dropout)
            for d in config.block_dilations
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        keep = (tokens != PAD).unsqueeze(-1).to(self.embedding.weight.dtype)  # (B, T, 1)
        x = self.embedding(tokens)  # (B, T, C)
        for block in self.blocks:
            x = block(x, keep)
        return x


class NextItNet(nn.Module):
    """Encoder + a softmax head over the vocabulary: logit of token v at t = h_t · W_v + b_v."""

    def __init__(self, config: NextItNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = NextItNetEncoder(config)
        self.head = nn.Linear(config.channels, config.n_tokens)
        init_weights(self)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(tokens))  # (B, T, n_tokens)


def init_weights(module: nn.Module) -> None:
    """Embeddings N(0, 0.02) with a zero PAD row; conv and linear weights Xavier-uniform,
    biases 0; layer norms weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.Conv1d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def encode_with_conv1d(encoder: NextItNetEncoder, tokens: torch.Tensor) -> torch.Tensor:
    """``encoder(tokens)`` computed the way the paper's code runs it: ``F.conv1d`` on
    (B, C, T) with transposes around every layer norm, patches as 1×1 convolutions.

    The reference that the (B, T, C) matrix-product form is tested equal to
    (``tests/seq/test_seq_nextitnet.py``) and timed against (``bench/bench_seq.py``);
    it reads the same parameters, patched or not. Returns (B, T, C)."""
    keep = (tokens != PAD).unsqueeze(1).to(encoder.embedding.weight.dtype)  # (B, 1, T)

    def conv(module: nn.Module, h: torch.Tensor) -> torch.Tensor:
        patch = getattr(module, "patch", None)  # a PatchedConv wraps the CausalConv1d
        c = module.conv.conv if patch is not None else module.conv
        pad = (c.kernel_size[0] - 1) * c.dilation[0]
        y = F.conv1d(F.pad(h, (pad, 0)), c.weight, c.bias, dilation=c.dilation)
        if patch is not None:
            src = y if module.insertion == "serial" else h
            z = F.relu(F.conv1d(src, patch.down.weight, patch.down.bias))
            y = y + F.conv1d(z, patch.up.weight, patch.up.bias)
        return y

    def norm(module: ChannelLayerNorm, h: torch.Tensor) -> torch.Tensor:
        n = module.norm
        return F.layer_norm(h.transpose(1, 2), n.normalized_shape, n.weight, n.bias).transpose(1, 2)

    x = encoder.embedding(tokens).transpose(1, 2)  # (B, C, T)
    for block in encoder.blocks:
        h = F.relu(norm(block.norm1, conv(block.conv1, x))) * keep
        h = F.relu(norm(block.norm2, conv(block.conv2, h))) * keep
        x = x + h
    return x.transpose(1, 2)
