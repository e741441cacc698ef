"""NextItNet: causality, the dilated convolution itself, padding, and the softmax losses."""

import pytest
import torch
import torch.nn.functional as F

from recflow.seq.nextitnet import CausalConv1d, NextItNet, NextItNetConfig, encode_with_conv1d
from recflow.seq.patches import insert_patches
from recflow.seq.pretrain import next_item_loss
from recflow.seq.sequences import PAD


def _model(seed: int = 0, **kw: object) -> NextItNet:
    torch.manual_seed(seed)
    cfg = NextItNetConfig(n_tokens=30, channels=8, dilations=(1, 2), n_stacks=1, **kw)
    return NextItNet(cfg).eval()


def _tokens(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 30, (batch, length), generator=g)


def test_output_at_t_never_depends_on_later_inputs() -> None:
    model = _model()
    x = _tokens(3, 24)
    base = model(x)
    for t in (0, 5, 17, 22):
        y = x.clone()
        y[:, t + 1 :] = _tokens(3, 24 - t - 1, seed=100 + t)
        out = model(y)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=0)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])  # later outputs do change


def test_receptive_field_is_what_the_config_says() -> None:
    model = _model()
    rf = model.config.receptive_field  # 1 + 2·3·(1 + 2) = 19
    assert rf == 19
    x = _tokens(1, 30)
    last = model(x)[:, -1]
    inside, outside = x.clone(), x.clone()
    inside[:, 30 - rf] = (x[:, 30 - rf] + 1 - 2) % 28 + 2
    outside[:, 30 - rf - 1] = (x[:, 30 - rf - 1] + 1 - 2) % 28 + 2
    assert not torch.allclose(model(inside)[:, -1], last)
    torch.testing.assert_close(model(outside)[:, -1], last, rtol=0, atol=0)


def test_causal_conv_matches_a_hand_computed_case() -> None:
    conv = CausalConv1d(channels=1, kernel_size=3, dilation=2)
    with torch.no_grad():
        conv.conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]))  # taps at t-4, t-2, t
        conv.conv.bias.fill_(0.5)
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0]]])  # (B, T, C) = (1, 5, 1)
    # y_t = 100·x_t + 10·x_{t-2} + 1·x_{t-4} + 0.5, zeros before the start
    want = [100.5, 200.5, 310.5, 420.5, 531.5]
    assert conv(x).flatten().tolist() == want


@pytest.mark.parametrize("patched", [None, "serial", "parallel"])
def test_encoder_equals_conv1d_reference_values_and_gradients(patched: str | None) -> None:
    """The (B, T, C) matrix-product form against ``F.conv1d`` on (B, C, T): same values and
    gradients for every parameter, plain and patched, with left padding."""
    torch.manual_seed(3)
    cfg = NextItNetConfig(n_tokens=50, channels=16, dilations=(1, 2, 4), n_stacks=2)
    model = NextItNet(cfg)
    if patched:
        for p in insert_patches(model.encoder, patched, seed=1):
            torch.nn.init.normal_(p.up.weight, std=0.1)  # non-zero: the branch counts
    model.double()  # float64: the two forms agree to rounding, ~1e-15
    tokens = torch.randint(2, 50, (4, 21), generator=torch.Generator().manual_seed(2))
    tokens[:2, :7] = PAD  # left padding on some rows
    ours = model.encoder(tokens)
    ref = encode_with_conv1d(model.encoder, tokens)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    gen = torch.Generator().manual_seed(4)
    weights = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((ours * weights).sum(), list(model.encoder.parameters()))
    want = torch.autograd.grad((ref * weights).sum(), list(model.encoder.parameters()))
    for g, w in zip(grads, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_left_padding_does_not_change_real_positions() -> None:
    model = _model()
    x = _tokens(2, 10)
    padded = torch.cat([torch.full((2, 6), PAD), x], dim=1)
    torch.testing.assert_close(model(padded)[:, 6:], model(x), rtol=1e-5, atol=1e-5)


def test_sampled_softmax_over_the_whole_vocabulary_equals_full_softmax() -> None:
    model = _model()
    x = _tokens(4, 9)
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:]}
    full = next_item_loss(model, batch)
    sampled = next_item_loss(model, {**batch, "negatives": torch.arange(30)})
    torch.testing.assert_close(sampled, full)
    # and the full loss is the plain mean cross-entropy over positions
    logits = model(batch["inputs"])
    want = F.cross_entropy(logits.reshape(-1, 30), batch["targets"].reshape(-1))
    torch.testing.assert_close(full, want)


def test_padded_targets_do_not_count() -> None:
    model = _model()
    x = _tokens(2, 9)
    batch = {"inputs": x[:, :-1], "targets": x[:, 1:].clone()}
    masked = {"inputs": batch["inputs"], "targets": batch["targets"].clone()}
    masked["targets"][1] = PAD
    logits = model(batch["inputs"])[0]
    torch.testing.assert_close(
        next_item_loss(model, masked), F.cross_entropy(logits, batch["targets"][0])
    )
