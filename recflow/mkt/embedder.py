"""Embeddings of the four MKT feature groups, and the behaviour-sequence encoder.

One embedding table per categorical column (code 0 = missing → the zero vector). An item
is represented by its id embedding plus the embeddings of its entity-shared features
(e.g. category), both for the item being scored and for every item of the behaviour
sequences; the sequences are pooled by one attention-pooling module shared across entity
types, with the scored item as the query (MKT section 3.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from recflow.mkt.layers import AttentionPooling
from recflow.mkt.tables import FeatureSpec

EMBEDDING_INIT_STD = 0.05


def _embedding(vocab: int, dim: int) -> nn.Embedding:
    e = nn.Embedding(vocab, dim, padding_idx=0)
    nn.init.normal_(e.weight, std=EMBEDDING_INIT_STD)
    with torch.no_grad():
        e.weight[0].zero_()
    return e


@dataclass
class EmbeddedInputs:
    """The per-group vectors of a batch."""

    user: torch.Tensor  # (B, user features · d)
    sequences: torch.Tensor  # (B, sequence entities · d)
    shared: torch.Tensor  # (B, (1 + shared features) · d): item id and shared features
    specific: torch.Tensor  # (B, selected specific features, d)


class FeatureEmbedder(nn.Module):
    """Batch dict (see ``FeatureTables.tensors``) → ``EmbeddedInputs``.

    ``specific_columns`` selects which entity-specific columns to embed (indices into the
    spec's specific columns); None = all of them.
    """

    def __init__(
        self, spec: FeatureSpec, dim: int, specific_columns: Sequence[int] | None = None
    ) -> None:
        super().__init__()
        self.dim = dim
        self.user = nn.ModuleList(_embedding(v, dim) for v in spec.user_vocab)
        self.item = _embedding(spec.item_vocab, dim)
        self.shared = nn.ModuleList(_embedding(v, dim) for v in spec.shared_vocab)
        cols = (
            list(range(len(spec.specific_vocab)))
            if specific_columns is None
            else list(specific_columns)
        )
        self.specific_columns = cols
        self.specific = nn.ModuleList(_embedding(spec.specific_vocab[i], dim) for i in cols)
        self.pool = AttentionPooling(dim)
        # The entity-shared codes of every item code (filled from the tables, or a checkpoint).
        self.register_buffer(
            "item_shared", torch.zeros(spec.item_vocab, len(spec.shared_vocab), dtype=torch.long)
        )
        self.n_user = len(spec.user_vocab)
        self.n_shared = 1 + len(spec.shared_vocab)
        self.n_sequences = spec.n_sequences

    def set_item_shared(self, table: torch.Tensor) -> None:
        """Install the (item codes, shared features) table built with the feature tables."""
        if tuple(table.shape) != tuple(self.item_shared.shape):
            raise ValueError(
                f"item_shared table has shape {tuple(table.shape)}, "
                f"expected {tuple(self.item_shared.shape)}"
            )
        self.item_shared.copy_(table.to(self.item_shared.device, torch.long))

    @property
    def user_dim(self) -> int:
        return self.n_user * self.dim

    @property
    def sequence_dim(self) -> int:
        return self.n_sequences * self.dim

    @property
    def shared_dim(self) -> int:
        return self.n_shared * self.dim

    def _item_vector(self, items: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        # e_item + Σ_j e_shared_j; items (...), shared (..., n_shared) → (..., d)
        v = self.item(items)
        for j, emb in enumerate(self.shared):
            v = v + emb(shared[..., j])
        return v

    def forward(self, batch: dict[str, torch.Tensor]) -> EmbeddedInputs:
        user = torch.cat([emb(batch["user"][:, j]) for j, emb in enumerate(self.user)], dim=-1)
        item, shared = batch["item"], batch["shared"]  # (B,), (B, n_sh)
        query = self._item_vector(item, shared)  # (B, d)
        seq = batch["seq"]  # (B, entities, L): every entity's sequence pooled at once
        keys = self._item_vector(seq, self.item_shared[seq])  # (B, entities, L, d)
        pooled = self.pool(query, keys, seq > 0)  # (B, entities, d)
        shared_vec = torch.cat(
            [self.item(item), *(emb(shared[:, j]) for j, emb in enumerate(self.shared))], dim=-1
        )
        spec_codes = batch["specific"]
        if self.specific_columns:
            specific = torch.stack(
                [
                    emb(spec_codes[:, i])
                    for i, emb in zip(self.specific_columns, self.specific, strict=True)
                ],
                dim=1,
            )
        else:
            specific = user.new_zeros((user.shape[0], 0, self.dim))
        return EmbeddedInputs(
            user=user,
            sequences=pooled.flatten(1),
            shared=shared_vec,
            specific=specific,
        )
