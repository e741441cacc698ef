"""BCE_source + BCE_target: per-entity means or the plain batch mean."""

from __future__ import annotations

import math

import pytest
import torch

from recflow.mkt.losses import per_entity_bce


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_per_entity_bce_on_hand_computed_values() -> None:
    probs = [0.8, 0.4, 0.3]
    logits = torch.logit(torch.tensor(probs))
    labels = torch.tensor([1.0, 0.0, 1.0])
    entity = torch.tensor([0, 0, 1])
    b = [_bce(p, y) for p, y in zip(probs, labels.tolist(), strict=True)]
    entity_mean = per_entity_bce(logits, labels, entity, weighting="entity")
    assert float(entity_mean) == pytest.approx((b[0] + b[1]) / 2 + b[2], rel=1e-5)
    volume = per_entity_bce(logits, labels, entity, weighting="volume")
    assert float(volume) == pytest.approx(sum(b) / 3, rel=1e-5)
    only_source = per_entity_bce(logits[:2], labels[:2], entity[:2], weighting="entity")
    assert float(only_source) == pytest.approx((b[0] + b[1]) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="weighting"):
        per_entity_bce(logits, labels, entity, weighting="focal")
