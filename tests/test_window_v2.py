"""Swin V2's cosine attention and block against torchvision (ShiftedWindowAttentionV2, SwinTransformerBlockV2), and
the paper's extrapolation numbers."""

import math

import pytest
import torch
from torchvision.models.swin_transformer import ShiftedWindowAttentionV2, SwinTransformerBlockV2

from cvkit.layers.window import SwinBlock
from cvkit.layers.window_v2 import (
    CosineWindowAttention,
    SwinV2Block,
    dot_product_logits,
    extrapolation_ratio,
    relative_coordinates_table,
)


def copy_attention(ours: CosineWindowAttention, tv: ShiftedWindowAttentionV2) -> None:
    with torch.no_grad():
        ours.qkv.load_state_dict(tv.qkv.state_dict())
        ours.proj.load_state_dict(tv.proj.state_dict())
        ours.logit_scale.copy_(tv.logit_scale)
        ours.position_bias.mlp.load_state_dict(tv.cpb_mlp.state_dict())


@pytest.mark.parametrize("shift", [0, 2])
def test_block_matches_torchvision(shift):
    torch.manual_seed(0)
    dim, heads, m, res = 16, 2, 4, (8, 8)
    tv = SwinTransformerBlockV2(dim, heads, [m, m], [shift, shift], mlp_ratio=2.0).eval()
    with torch.no_grad():
        tv.attn.qkv.bias.normal_()  # non-zero q and v biases (torchvision drops the key's at run time, as we do)
        tv.attn.logit_scale.uniform_(1.0, 3.0)
    ours = SwinV2Block(dim, heads, res, m, shift, mlp_ratio=2.0).eval()
    copy_attention(ours.attn, tv.attn)
    with torch.no_grad():
        for a, b in ((ours.norm1, tv.norm1), (ours.norm2, tv.norm2)):
            a.weight.normal_(), a.bias.normal_()
            b.load_state_dict(a.state_dict())
        ours.mlp.fc1.load_state_dict(tv.mlp[0].state_dict())
        ours.mlp.fc2.load_state_dict(tv.mlp[3].state_dict())
    x = torch.randn(2, 8, 8, dim)
    torch.testing.assert_close(ours(x.reshape(2, 64, dim)), tv(x).reshape(2, 64, dim), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(relative_coordinates_table(m), tv.attn.relative_coords_table.reshape(-1, 2))


def test_cosine_logits_are_bounded_dot_products_are_not():
    torch.manual_seed(0)
    cosine = CosineWindowAttention(16, 4, 2)
    x = torch.randn(3, 16, 16)
    for scale in (1.0, 100.0):
        logits, _ = cosine.logits(scale * x)
        assert logits.abs().max() <= 10.0 + 1e-4  # 1/tau = e^{log 10} at initialisation: |cos| <= 1
    v1 = SwinBlock(16, 2, (4, 4), 4).attn
    small, large = dot_product_logits(v1, x), dot_product_logits(v1, 10 * x)
    ratio = (large.abs().max() / small.abs().max()).item()
    assert 90 < ratio < 110, (
        ratio
    )  # a dot product of two linear maps of x grows with the square of x's scale (no biases matter much)


def test_the_papers_extrapolation_ratios():
    # Swin V2 sec. 3.3: 8x8 -> 16x16 windows: linear 1.14, log-spaced 0.33
    assert (
        abs(extrapolation_ratio(8, 16, log=False) - 15 / 7 + 1) < 1e-9
        and round(extrapolation_ratio(8, 16, log=False), 2) == 1.14
    )
    assert round(extrapolation_ratio(8, 16), 2) == 0.33
    assert abs(extrapolation_ratio(8, 16) - (math.log(16) / math.log(8) - 1)) < 1e-6


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        CosineWindowAttention(10, 4, 3)
    with pytest.raises(ValueError, match="windows"):
        CosineWindowAttention(8, 4, 2).logits(torch.zeros(1, 9, 8))
    with pytest.raises(ValueError, match="at least 2"):
        extrapolation_ratio(1, 8)


def test_window_attention_logits_on_v1_and_v2_models():
    from cvkit.inspect import window_attention_logits
    from cvkit.models import create_model

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    v1 = window_attention_logits(create_model("swin_tiny_patch4_32"), x)
    v2_model = create_model("swinv2_tiny_patch4_32")
    v2 = window_attention_logits(v2_model, x)
    assert (
        len(v1) == len(v2) == 4 and {r["kind"] for r in v1} == {"dot product"} and {r["kind"] for r in v2} == {"cosine"}
    )
    assert all(r["max_logit"] <= 10.0 + 1e-4 for r in v2)  # 1/tau starts at 10 and a cosine is at most 1
    # the hook computes what the block computes: the v2 block's logits by hand
    block = v2_model.stages[0][1]
    tokens = v2_model.patch_norm(v2_model.patch_embed(x))
    tokens = v2_model.stages[0][0](tokens)
    logits, _ = block.attn.logits(block.windows(tokens))
    assert abs(logits.abs().max().item() - v2[1]["max_logit"]) < 1e-5


def test_block_starts_as_the_identity():
    """Post-norms start at zero (the reference code's ``_init_respostnorm``): a new block returns its input exactly,
    whatever the input, and the post-norms get gradients, so training moves them off zero."""
    torch.manual_seed(0)
    block = SwinV2Block(16, 2, (8, 8), 4, 2, mlp_ratio=2.0)
    x = 5 * torch.randn(3, 64, 16)
    assert torch.equal(block(x), x)
    loss = block(x).square().mean()
    loss.backward()
    assert block.norm1.bias.grad.abs().sum() > 0 and block.norm2.weight.grad.abs().sum() > 0
