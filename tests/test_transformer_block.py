"""The pre-norm transformer block against PyTorch's encoder and decoder layers with copied weights."""

import pytest
import torch
import torch.nn as nn

from cvkit.layers import FeedForward, TransformerBlock


def _copy_ffn(block: TransformerBlock, layer) -> None:
    block.mlp.fc1.load_state_dict(layer.linear1.state_dict())
    block.mlp.fc2.load_state_dict(layer.linear2.state_dict())


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_matches_torch_encoder_layer(activation):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation=activation, batch_first=True, norm_first=True, layer_norm_eps=1e-6
    ).eval()
    ours = TransformerBlock(32, 4, mlp_ratio=2, activation=activation).eval()
    ours.attn.load_from_torch(ref.self_attn)
    _copy_ffn(ours, ref)
    with torch.no_grad():
        for n in (ref.norm1, ref.norm2):  # non-trivial affine parameters
            n.weight.normal_(), n.bias.normal_()
    ours.norm1.load_state_dict(ref.norm1.state_dict())
    ours.norm2.load_state_dict(ref.norm2.state_dict())
    x = torch.randn(3, 7, 32)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[2, 5:] = True
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=pad)
        got = ours(x, key_padding_mask=pad)
    # torch's fast path may return zeros for padded positions: compare the real tokens
    assert torch.allclose(got[~pad], expected[~pad], atol=1e-5)


def test_cross_attention_block_matches_torch_decoder_layer():
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(
        32, 4, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True, layer_norm_eps=1e-6
    ).eval()
    ours = TransformerBlock(32, 4, cross_attention=True).eval()
    ours.attn.load_from_torch(ref.self_attn)
    ours.cross_attn.load_from_torch(ref.multihead_attn)
    _copy_ffn(ours, ref)
    ours.norm1.load_state_dict(ref.norm1.state_dict())
    ours.norm_cross.load_state_dict(ref.norm2.state_dict())
    ours.norm2.load_state_dict(ref.norm3.state_dict())
    tgt, memory = torch.randn(2, 5, 32), torch.randn(2, 9, 32)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        expected = ref(tgt, memory, tgt_mask=causal, tgt_is_causal=True)
        got = ours(tgt, memory, is_causal=True)
    assert torch.allclose(got, expected, atol=1e-5)


def test_block_is_residual_and_drop_path_works():
    torch.manual_seed(0)
    block = TransformerBlock(16, 2, drop_path=1.0)
    x = torch.randn(4, 3, 16)
    assert torch.equal(block.train()(x), x)  # every residual branch dropped
    assert not torch.equal(block.eval()(x), x)


def test_context_errors():
    with pytest.raises(ValueError, match="cross_attention=True"):
        TransformerBlock(16, 2)(torch.randn(1, 3, 16), torch.randn(1, 2, 16))
    with pytest.raises(ValueError, match="pass context"):
        TransformerBlock(16, 2, cross_attention=True)(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="activation"):
        FeedForward(4, 8, "swish")
