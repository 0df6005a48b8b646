"""Scaled dot-product and multi-head attention against torch's own implementations."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers import MultiHeadAttention, scaled_dot_product_attention


def _qkv(b=2, h=3, nq=5, nk=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, h, nq, d, generator=g),
        torch.randn(b, h, nk, d, generator=g),
        torch.randn(b, h, nk, d, generator=g),
    )


def test_hand_computed_case():
    # one query, two keys: logits (1*1 + 0*0)/sqrt(2) and (0*1 + 1*0)/sqrt(2)
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    p = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    assert torch.allclose(w, torch.tensor([[p, 1 - p]]))
    assert torch.allclose(out, torch.tensor([[10 * p + 20 * (1 - p)]]))


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "causal", "causal+bool"])
def test_matches_torch_sdpa(mask_kind):
    q, k, v = _qkv(nq=6, nk=6)
    g = torch.Generator().manual_seed(1)
    mask, causal = None, False
    if mask_kind in ("bool", "causal+bool"):
        mask = torch.rand(2, 1, 6, 6, generator=g) > 0.3
        mask[..., 0] = True  # every query keeps one key
    elif mask_kind == "float":
        mask = torch.randn(2, 3, 6, 6, generator=g)
    if mask_kind.startswith("causal"):
        causal = True
    out, w = scaled_dot_product_attention(q, k, v, mask, is_causal=causal)
    if mask_kind == "causal+bool":  # torch refuses both; build the combined mask for the oracle
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask & torch.ones(6, 6, dtype=torch.bool).tril())
    else:
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 6))
    if causal:
        assert (w.triu(1) == 0).all()


def test_custom_scale_and_fully_masked_rows():
    q, k, v = _qkv()
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False  # query 2 may attend nowhere
    out, w = scaled_dot_product_attention(q, k, v, mask, scale=0.3)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
    assert torch.allclose(out, ref, atol=1e-5)
    assert (w[:, :, 2] == 0).all() and (out[:, :, 2] == 0).all()


def test_gradients_match_torch():
    q, k, v = (t.requires_grad_() for t in _qkv())
    out, _ = scaled_dot_product_attention(q, k, v)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, atol=1e-4)


def test_bad_inputs():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="same feature size"):
        scaled_dot_product_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="same length"):
        scaled_dot_product_attention(q, k, v[..., :3, :])
    with pytest.raises(ValueError, match="bool"):
        scaled_dot_product_attention(q, k, v, torch.ones(5, 7, dtype=torch.long))


def _pair(dim=16, heads=4, kdim=None, bias=True):
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(dim, heads, batch_first=True, kdim=kdim, vdim=kdim, bias=bias)
    nn.init.normal_(ref.out_proj.bias)  # torch zero-initialises biases: make them count
    if bias:
        nn.init.normal_(ref.in_proj_bias)
    ours = MultiHeadAttention(dim, heads, kv_dim=kdim, qkv_bias=bias).load_from_torch(ref)
    return ours, ref


def test_a_refused_load_from_torch_changes_nothing():
    """Every check comes before the first copy: a module refused for its biases (or shapes) keeps its weights."""
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4, qkv_bias=True)
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    for ref in (
        nn.MultiheadAttention(16, 4, batch_first=True, bias=False),  # no q/k/v biases
        nn.MultiheadAttention(16, 4, batch_first=True, kdim=12, vdim=12),
    ):  # keys of another width
        with pytest.raises(ValueError):
            ours.load_from_torch(ref)
        assert all(torch.equal(before[k], v) for k, v in ours.state_dict().items())


@pytest.mark.parametrize("fused", [True, False])
def test_self_attention_matches_nn_multihead_attention(fused):
    ours, ref = _pair()
    ours.fused = fused
    x = torch.randn(3, 10, 16)
    out, w = ours(x, return_attention=True)
    ref_out, ref_w = ref(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(w, ref_w, atol=1e-6)
    assert torch.allclose(ours(x), ref_out, atol=1e-5)  # the path without weights (fused kernel when fused=True)


def test_cross_attention_with_other_width_and_padding():
    ours, ref = _pair(dim=16, heads=2, kdim=12)
    x, ctx = torch.randn(2, 4, 16), torch.randn(2, 9, 12)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[1, 6:] = True
    ref_out, _ = ref(x, ctx, ctx, key_padding_mask=pad)
    for fused in (True, False):
        ours.fused = fused
        assert torch.allclose(ours(x, ctx, key_padding_mask=pad), ref_out, atol=1e-5)
    _, w = ours(x, ctx, key_padding_mask=pad, return_attention=True)
    assert (w[1, :, :, 6:] == 0).all()


def test_causal_and_mask_conventions_match_torch():
    # torch's nn.MultiheadAttention: bool attn_mask True = NOT allowed; ours (like F.sdpa): True = allowed
    ours, ref = _pair()
    x = torch.randn(2, 6, 16)
    forbidden = torch.ones(6, 6, dtype=torch.bool).triu(1)
    ref_out, _ = ref(x, x, x, attn_mask=forbidden)
    for fused in (True, False):
        ours.fused = fused
        assert torch.allclose(ours(x, is_causal=True), ref_out, atol=1e-5)
        assert torch.allclose(ours(x, attn_mask=~forbidden), ref_out, atol=1e-5)
        pad = torch.zeros(2, 6, dtype=torch.bool)
        both = ours(x, is_causal=True, key_padding_mask=pad)
        assert torch.allclose(both, ref_out, atol=1e-5)


def test_keys_and_values_may_differ():
    ours, ref = _pair()
    q, k, v = torch.randn(2, 3, 16), torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    assert torch.allclose(ours(q, k, v), ref(q, k, v)[0], atol=1e-5)


def test_keep_attention_records_weights():
    ours, _ = _pair()
    ours.keep_attention = True
    ours(torch.randn(2, 5, 16))
    assert ours.attention.shape == (2, 4, 5, 5)
    assert torch.allclose(ours.attention.sum(-1), torch.ones(2, 4, 5))


def test_bad_module_inputs():
    attn = MultiHeadAttention(16, 4)
    with pytest.raises(ValueError, match=r"\(B, N, 16\)"):
        attn(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="batch size"):
        attn(torch.randn(2, 3, 16), torch.randn(3, 3, 16))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="key_padding_mask"):
        attn(torch.randn(2, 3, 16), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))


def test_attention_inside_mask_hand_case():
    from cvkit.inspect import attention_inside_mask

    attention = torch.tensor([[[3.0, 1.0], [0.0, 0.0]]])  # (1, 2, 2): 3/4 of the mass on the top-left patch
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True  # the object fills the top-left patch
    mask[0, 0, 2] = True  # and a quarter of the top-right one
    inside, area = attention_inside_mask(attention, mask)
    assert inside.item() == pytest.approx((3 * 1 + 1 * 0.25) / 4) and area.item() == pytest.approx(5 / 16)
    uniform, _ = attention_inside_mask(torch.ones(1, 2, 2), mask)
    assert uniform.item() == pytest.approx(area.item()), "uniform attention scores the object's area"
    with pytest.raises(ValueError, match="tile"):
        attention_inside_mask(attention, torch.zeros(1, 5, 5))
