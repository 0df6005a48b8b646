"""Position embeddings: the sinusoid formulas, the offset property, the modules."""

import pytest
import torch

from cvkit.layers import (
    LearnedPositionEmbedding,
    SinCosPositionEmbedding2d,
    sincos_position_embedding_1d,
    sincos_position_embedding_2d,
)


def test_sincos_1d_formula():
    pe = sincos_position_embedding_1d(5, 6)
    pos, i = 3, 2  # channel pair i=2: sin/cos(pos / 10000^(4/6))
    assert torch.allclose(pe[pos, 2 * i], torch.tensor(torch.sin(torch.tensor(pos / 10000 ** (4 / 6))).item()))
    assert torch.allclose(pe[pos, 2 * i + 1], torch.tensor(torch.cos(torch.tensor(pos / 10000 ** (4 / 6))).item()))
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0] * 3))


def test_sincos_2d_dot_product_depends_only_on_offset():
    pe = sincos_position_embedding_2d((6, 6), 32).view(6, 6, 32)
    # sin(a)sin(b) + cos(a)cos(b) = cos(a - b): the similarity of two positions is a function of their offset
    a = pe[1, 1] @ pe[3, 4]
    b = pe[2, 0] @ pe[4, 3]
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(pe[2, 5, :16], sincos_position_embedding_1d(6, 16)[2])  # rows in the first half
    assert torch.allclose(pe[2, 5, 16:], sincos_position_embedding_1d(6, 16)[5])  # columns in the second half
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_position_embedding_2d(4, 6)


def test_position_modules():
    learned = LearnedPositionEmbedding(5, 8)
    assert learned.weight.abs().max() <= 0.04 + 1e-6 and learned.weight.std() > 0
    x = torch.randn(2, 5, 8)
    assert torch.allclose(learned(x) - x, learned.weight.expand(2, -1, -1), atol=1e-6)
    fixed = SinCosPositionEmbedding2d(2, 8, num_prefix_tokens=1)
    assert torch.equal(fixed(x)[:, 0], x[:, 0])  # the class token gets no position
    assert not list(fixed.parameters())
    with pytest.raises(ValueError, match="position embedding"):
        learned(torch.randn(2, 6, 8))
