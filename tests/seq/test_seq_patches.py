"""PeterRec model patches: a zero-initialised patch leaves the pretrained function as is."""

import pytest
import torch

from recflow.seq.nextitnet import CausalConv1d, NextItNet, NextItNetConfig
from recflow.seq.patches import Insertion, ModelPatch, PatchedConv, insert_patches, patch_parameters


def _model() -> NextItNet:
    torch.manual_seed(0)
    return NextItNet(NextItNetConfig(n_tokens=40, channels=16, dilations=(1, 2), n_stacks=2)).eval()


def _tokens() -> torch.Tensor:
    return torch.randint(0, 40, (3, 12), generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("insertion", list(Insertion))
def test_zero_initialised_patches_leave_the_function_unchanged(insertion: Insertion) -> None:
    model = _model()
    x = _tokens()
    before = model(x)
    patches = insert_patches(model.encoder, insertion)
    assert len(patches) == 2 * len(model.encoder.blocks)
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    # a patch that has learned something does change the function
    with torch.no_grad():
        patches[0].up.weight.normal_(generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(model(x), before)


def test_serial_and_parallel_compute_their_formulas() -> None:
    torch.manual_seed(0)
    conv = CausalConv1d(8, 3, 2)
    patch = ModelPatch(8, reduction=4, seed=3)
    with torch.no_grad():
        patch.up.weight.normal_(generator=torch.Generator().manual_seed(2))
    x = torch.randn(2, 7, 8, generator=torch.Generator().manual_seed(4))  # (B, T, C)

    def branch(z: torch.Tensor) -> torch.Tensor:  # W_up · ReLU(W_down · z + b_down) + b_up
        w_d, b_d = patch.down.weight[:, :, 0], patch.down.bias
        w_u, b_u = patch.up.weight[:, :, 0], patch.up.bias
        h = torch.relu(torch.einsum("hc,btc->bth", w_d, z) + b_d)
        return torch.einsum("ch,bth->btc", w_u, h) + b_u

    y = conv(x)
    serial = PatchedConv(conv, patch, Insertion.SERIAL)(x)
    parallel = PatchedConv(conv, patch, Insertion.PARALLEL)(x)
    torch.testing.assert_close(serial, y + branch(y))
    torch.testing.assert_close(parallel, y + branch(x))


def test_patch_size_and_double_patching() -> None:
    model = _model()
    insert_patches(model.encoder, "serial")
    c, h = 16, 4  # down C→C/4 and up C/4→C, with biases
    per_patch = c * h + h + h * c + c
    assert sum(p.numel() for p in patch_parameters(model)) == 8 * per_patch
    with pytest.raises(ValueError, match="already patched"):
        insert_patches(model.encoder, "parallel")
    with pytest.raises(ValueError, match="not divisible"):
        ModelPatch(10, reduction=4)
