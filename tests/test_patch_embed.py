"""Patch embedding: the convolution and the reshape-plus-matrix forms agree; patchify round trips."""

import pytest
import torch
import torch.nn.functional as F

from cvkit.layers import PatchEmbed, patchify, unpatchify


def test_patchify_hand_case():
    # a 1-channel 4x4 image with values 0..15 and P = 2: the first patch is pixels (0,0),(0,1),(1,0),(1,1)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    p = patchify(x, 2)
    assert p.shape == (1, 4, 4)
    assert p[0, 0].tolist() == [0, 1, 4, 5]
    assert p[0, 1].tolist() == [2, 3, 6, 7]
    assert p[0, 3].tolist() == [10, 11, 14, 15]


def test_patchify_matches_unfold_and_round_trips():
    x = torch.randn(2, 3, 12, 8)
    p = patchify(x, 4)
    ref = F.unfold(x, kernel_size=4, stride=4).transpose(1, 2)  # (B, N, C*P*P) in (C, P, P) order
    assert torch.equal(p, ref)
    assert torch.equal(unpatchify(p, 4, (12, 8), 3), x)


@pytest.mark.parametrize("size,patch,chans", [(28, 7, 1), (32, 4, 3), ((16, 24), 8, 3)])
def test_conv_and_linear_forms_agree(size, patch, chans):
    torch.manual_seed(0)
    embed = PatchEmbed(size, patch, chans, 24)
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, chans, h, w)
    conv = embed(x)
    embed.mode = "linear"
    linear = embed(x)
    assert conv.shape == (2, (h // patch) * (w // patch), 24)
    assert torch.allclose(conv, linear, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        PatchEmbed(30, 4)
    with pytest.raises(ValueError, match="mode"):
        PatchEmbed(32, 4, mode="fold")
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        PatchEmbed(32, 4, 3, 8)(torch.randn(1, 3, 28, 28))
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.randn(1, 1, 10, 10), 3)
    with pytest.raises(ValueError, match="expected patches"):
        unpatchify(torch.randn(1, 5, 4), 2, (4, 4), 1)
