"""The teaching convolution against F.conv2d, and the lecture's worked examples."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.conv import (
    conv2d_im2col,
    conv2d_loops,
    conv_matrix,
    conv_output_size,
    conv_parameter_count,
    efficiency_table,
    receptive_field_chain,
)

SETTINGS = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2)),
    dict(dilation=2, padding=2),
    dict(stride=3, padding=1, dilation=(1, 2)),
]


@pytest.mark.parametrize("kwargs", SETTINGS)
@pytest.mark.parametrize("conv", [conv2d_loops, conv2d_im2col])
def test_matches_torch(conv, kwargs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 11, 9, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 2, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(conv(x, w, b, **kwargs), F.conv2d(x, w, b, **kwargs))


def test_lecture_example_4_3_4():
    # seeds 004 and 000: the 5x5 binary image and the 3x3 "X" kernel; the first row of the output is 4 3 4
    image = torch.tensor(
        [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.float32
    )
    kernel = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.float32)
    out = conv2d_loops(image[None, None], kernel[None, None])[0, 0]
    assert out.tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]


def test_lecture_example_12_12_17():
    # seeds 000: "Convolution, Padding, Stride", the unpadded stride-1 frame
    x = torch.tensor(
        [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], dtype=torch.float32
    )
    k = torch.tensor([[0, 1, 2], [2, 2, 0], [0, 1, 2]], dtype=torch.float32)
    assert conv2d_loops(x[None, None], k[None, None])[0, 0].tolist() == [[12, 12, 17], [10, 17, 19], [9, 6, 14]]


@pytest.mark.parametrize("size", [5, 7, 32])
@pytest.mark.parametrize(
    "k,s,p,d", [(3, 1, 0, 1), (3, 2, 1, 1), (5, 2, 2, 1), (3, 1, 2, 2), (1, 1, 0, 1), (2, 3, 0, 1)]
)
def test_output_size_formula_matches_nn_conv2d(size, k, s, p, d):
    out = nn.Conv2d(1, 1, k, s, p, d)(torch.zeros(1, 1, size, size))
    assert out.shape[-1] == conv_output_size(size, k, s, p, d)


def test_output_size_errors():
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(3, 3, dilation=2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(TypeError):
        conv_output_size(5.0, 3)


@pytest.mark.parametrize(
    "cin,cout,k,groups,bias", [(3, 64, 3, 1, True), (64, 128, 1, 1, False), (32, 32, 3, 32, True), (3, 96, 11, 1, True)]
)
def test_parameter_count_matches_nn_conv2d(cin, cout, k, groups, bias):
    layer = nn.Conv2d(cin, cout, k, groups=groups, bias=bias)
    assert conv_parameter_count(cin, cout, k, bias, groups) == sum(p.numel() for p in layer.parameters())


def test_conv_matrix_and_its_transpose():
    g = torch.Generator().manual_seed(1)
    kernel = torch.randn(3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(4, 4, generator=g, dtype=torch.float64)
    c = conv_matrix(4, kernel)
    assert c.shape == (4, 16)  # the lecture's 4x16 matrix for a 3x3 kernel on a 4x4 input
    torch.testing.assert_close((c @ x.flatten()).view(2, 2), F.conv2d(x[None, None], kernel[None, None])[0, 0])
    y = torch.randn(2, 2, generator=g, dtype=torch.float64)
    # C^T (16x4) is the transposed convolution: 2x2 -> 4x4
    torch.testing.assert_close(
        (c.T @ y.flatten()).view(4, 4), F.conv_transpose2d(y[None, None], kernel[None, None])[0, 0]
    )
    c2 = conv_matrix(5, kernel, stride=2, padding=1)
    torch.testing.assert_close(
        (c2 @ torch.arange(25.0, dtype=torch.float64)).view(3, 3),
        F.conv2d(torch.arange(25.0, dtype=torch.float64).view(1, 1, 5, 5), kernel[None, None], stride=2, padding=1)[
            0, 0
        ],
    )


def test_efficiency_table_reproduces_the_lecture():
    full, sparse, conv = efficiency_table(280, 320, 1, 2)  # 320x280 input, 2x1 kernel, 319x280 output
    assert full.parameters == 319 * 280 * 320 * 280 and full.parameters > 8e9 and full.flops > 8e9
    assert sparse.parameters == 178_640 and sparse.flops == 267_960
    assert conv.parameters == 2 and conv.flops == 267_960


def test_receptive_field_chain():
    # three 3x3 stride-1 convs see 7x7 (VGG's argument); a stride-2 layer doubles the jump
    assert [r["size"] for r in receptive_field_chain([(3, 1)] * 3)] == [3, 5, 7]
    rows = receptive_field_chain([(7, 2), (3, 2), (3, 1)])  # ResNet stem: conv7/2, maxpool3/2, conv3
    assert [(r["size"], r["jump"]) for r in rows] == [(7, 2), (11, 4), (19, 4)]
    assert receptive_field_chain([(3, 1, 2)])[0]["size"] == 5  # dilation 2
