r"""Convolution written out, as lecture 02 teaches it, and checked against ``F.conv2d`` in the tests.

Deep-learning "convolution" is cross-correlation: the kernel is not flipped,

.. math::  y[b, k, i, j] = \beta_k + \sum_{c, u, v} w[k, c, u, v] \; x_{pad}[b, c, S i + D u, S j + D v]

for stride :math:`S` and dilation :math:`D`. Output size along one axis
(CS231n's formula with dilation; Dumoulin & Visin, "A guide to convolution arithmetic", 2016):

.. math::  W_2 = \left\lfloor \frac{W_1 + 2P - D (F - 1) - 1}{S} \right\rfloor + 1

which is :math:`(W_1 - F + 2P)/S + 1` for :math:`D = 1`. A layer with :math:`K` filters of
size :math:`F \times F` over :math:`D_1` channels has :math:`(F \cdot F \cdot D_1) \cdot K`
weights and :math:`K` biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if len(v) != 2 or not all(isinstance(a, int) for a in v):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return (int(v[0]), int(v[1]))


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    r"""Output length along one axis: :math:`\lfloor (W_1 + 2P - D(F-1) - 1) / S \rfloor + 1`.

    Args:
        size: input length :math:`W_1` in pixels.
        kernel_size: :math:`F`; stride: :math:`S \ge 1`; padding: :math:`P \ge 0`; dilation: :math:`D \ge 1`.

    Returns:
        int, the output length :math:`W_2` (the same as ``nn.Conv2d`` produces).

    Raises:
        ValueError: a non-positive size/kernel/stride/dilation, negative padding, or a kernel that
            does not fit in the padded input (the message gives the effective kernel size).
    """
    for name, value, low in (
        ("size", size, 1),
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
        ("padding", padding, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    effective = dilation * (kernel_size - 1) + 1
    if size + 2 * padding < effective:
        raise ValueError(
            f"the kernel (effective size {effective} with dilation {dilation}) does not fit in the padded input "
            f"({size} + 2*{padding} = {size + 2 * padding}); use more padding or a smaller kernel"
        )
    return (size + 2 * padding - effective) // stride + 1


def conv_parameter_count(
    in_channels: int, out_channels: int, kernel_size: int | Sequence[int], bias: bool = True, groups: int = 1
) -> int:
    r"""Parameters of a conv layer: :math:`(F_h F_w D_1 / g) K` weights, plus :math:`K` biases.

    Raises:
        ValueError: channels not divisible by ``groups``.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
        )
    return kh * kw * (in_channels // groups) * out_channels + (out_channels if bias else 0)


def _check_conv_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}; add a batch axis with x[None]")
    if weight.dim() != 4:
        raise ValueError(f"weight must be (K, C, F_h, F_w), got shape {tuple(weight.shape)}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight expects {weight.shape[1]} input channels, x has {x.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must be ({weight.shape[0]},), got {tuple(bias.shape)}")


def conv2d_loops(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> torch.Tensor:
    """2-D convolution as a sliding window: one dot product per output position (slow, for teaching).

    Args:
        x: (B, C, H, W) float.
        weight: (K, C, F_h, F_w) float, the K filters.
        bias: (K,) float or ``None``.
        stride, padding, dilation: ints or (height, width) pairs, as in ``F.conv2d``.

    Returns:
        (B, K, H_out, W_out), equal to ``F.conv2d(x, weight, bias, stride, padding, dilation)``.

    Raises:
        ValueError: shapes that do not fit together.
    """
    _check_conv_inputs(x, weight, bias)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    k, _, fh, fw = weight.shape
    out_h = conv_output_size(x.shape[2], fh, sh, ph, dh)
    out_w = conv_output_size(x.shape[3], fw, sw, pw, dw)
    xp = F.pad(x, (pw, pw, ph, ph))  # zero padding: (B, C, H + 2P, W + 2P)
    out = x.new_zeros(x.shape[0], k, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            # the receptive field of output (i, j): rows S*i + D*u, columns S*j + D*v
            window = xp[
                :, :, i * sh : i * sh + dh * (fh - 1) + 1 : dh, j * sw : j * sw + dw * (fw - 1) + 1 : dw
            ]  # (B, C, F_h, F_w)
            out[:, :, i, j] = torch.einsum("bcuv,kcuv->bk", window, weight)
    if bias is not None:
        out = out + bias.view(1, k, 1, 1)
    return out


def conv2d_im2col(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
) -> torch.Tensor:
    """2-D convolution as one matrix product (im2col): unfold every window into a column, multiply by the filters.

    Args and returns as :func:`conv2d_loops`; this is how cuDNN-era libraries first made convolutions fast
    (Chellapilla et al., 2006).
    """
    _check_conv_inputs(x, weight, bias)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    b, _, h, w = x.shape
    k, c, fh, fw = weight.shape
    out_h = conv_output_size(h, fh, sh, ph, dh)
    out_w = conv_output_size(w, fw, sw, pw, dw)
    cols = F.unfold(x, (fh, fw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))  # (B, C*F_h*F_w, L)
    out = weight.view(k, c * fh * fw) @ cols  # (K, C*F_h*F_w) @ (B, C*F_h*F_w, L) -> (B, K, L)
    if bias is not None:
        out = out + bias.view(1, k, 1)
    return out.view(b, k, out_h, out_w)  # (B, K, H_out, W_out)


def conv_matrix(
    input_size: int | Sequence[int], kernel: torch.Tensor, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    r"""The matrix :math:`C` with ``conv(x).flatten() == C @ x.flatten()`` for one channel and one filter.

    Each row of :math:`C` holds the kernel's weights at the input positions one output
    pixel reads. Its transpose :math:`C^T` maps outputs back to inputs: that is the
    transposed convolution (lecture 09; e.g. a 3x3 kernel on a 4x4 input gives a 4x16
    :math:`C` and a 16x4 :math:`C^T`).

    Args:
        input_size: H (square) or (H, W) of the input.
        kernel: (F_h, F_w) float.
        stride, padding: as in ``F.conv2d`` (zero padding).

    Returns:
        (H_out * W_out, H * W) tensor of ``kernel``'s dtype.

    Raises:
        ValueError: ``kernel`` is not 2-D.
    """
    if kernel.dim() != 2:
        raise ValueError(f"kernel must be (F_h, F_w), got shape {tuple(kernel.shape)}")
    h, w = _pair(input_size, "input_size")
    fh, fw = kernel.shape
    out_h, out_w = conv_output_size(h, fh, stride, padding), conv_output_size(w, fw, stride, padding)
    c = kernel.new_zeros(out_h * out_w, h * w)
    for i in range(out_h):
        for j in range(out_w):
            for u in range(fh):
                for v in range(fw):
                    r, s = i * stride + u - padding, j * stride + v - padding  # input pixel read by weight (u, v)
                    if 0 <= r < h and 0 <= s < w:
                        c[i * out_w + j, r * w + s] = kernel[u, v]
    return c


@dataclass(frozen=True)
class LayerCost:
    """Parameters and floating-point operations of one way to map an input image to an output image."""

    name: str
    parameters: int
    flops: int


def efficiency_table(height: int, width: int, kernel_height: int, kernel_width: int) -> list[LayerCost]:
    r"""Fully connected vs sparsely connected vs convolution, for one-channel images (the lecture's table).

    For an :math:`H \times W` input and an :math:`F_h \times F_w` kernel (valid convolution), the output is
    :math:`H_2 \times W_2`. A fully connected layer needs :math:`H_2 W_2 \cdot H W` weights and as
    many multiply-adds; a sparse (locally connected, unshared) layer :math:`F_h F_w` weights per output
    pixel; a convolution shares one :math:`F_h F_w` kernel. FLOPs count each multiply and add:
    :math:`F_h F_w` multiplies and :math:`F_h F_w - 1` adds per output pixel for the local layers (3 for the
    lecture's 2x1 edge kernel), :math:`2 H W - 1` per output pixel for the dense layer.

    Returns:
        three :class:`LayerCost` rows: full connection, sparse connection, convolution.
    """
    out_h = conv_output_size(height, kernel_height)
    out_w = conv_output_size(width, kernel_width)
    n_out, n_in, taps = out_h * out_w, height * width, kernel_height * kernel_width
    local_flops = n_out * (2 * taps - 1)
    return [
        LayerCost("full connection", n_out * n_in, n_out * (2 * n_in - 1)),
        LayerCost("sparse connection", n_out * taps, local_flops),
        LayerCost("convolution", taps, local_flops),
    ]
