r"""Transposed convolution: learnable upsampling, understood through the convolution matrix.

A convolution of an (H, W) input with a k x k kernel is a linear map, so it is a matrix
multiplication :math:`y = C x` with x and y flattened: C has one row per output pixel
holding the kernel at that pixel's window, zeros elsewhere (:func:`cvkit.conv.ops.conv_matrix`). Lecture
001's example: a 3 x 3 kernel on a 4 x 4 input gives C of shape 4 x 16.

The **transposed convolution** multiplies by :math:`C^T` instead (16 x 4): it maps 4 values
back to 16, each input value spreading a scaled copy of the kernel onto the output (one
value connects to 9 outputs; overlapping copies add). It has the *shape* of an inverse of
the convolution, not its values, and its kernel is learned: it is the upsampling layer of
FCN, U-Net and DCGAN. "Deconvolution" is a misnomer for it.

:func:`conv_transpose2d` implements it directly (scatter-add the kernel, scaled by each
input value, at stride s; then crop ``padding``), and is tested against
``torch.nn.functional.conv_transpose2d``. :func:`bilinear_kernel` gives the fixed kernel
with which a transposed convolution performs bilinear upsampling, FCN's initialisation.
"""

from __future__ import annotations

from typing import Sequence

import torch

from cvkit.conv.ops import conv_matrix

# lecture 001: the 3x3 kernel whose 4x16 convolution matrix C (on a 4x4 input) transposes to the printed 16x4 C^T
SEED_KERNEL = torch.tensor([[1.0, 4, 1], [1, 4, 3], [3, 3, 1]])
SEED_CT = torch.tensor(
    [
        [1.0, 0, 0, 0],
        [4, 1, 0, 0],
        [1, 4, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 1, 0],
        [4, 1, 4, 1],
        [3, 4, 1, 4],
        [0, 3, 0, 1],
        [3, 0, 1, 0],
        [3, 3, 4, 1],
        [1, 3, 3, 4],
        [0, 1, 0, 3],
        [0, 0, 3, 0],
        [0, 0, 3, 3],
        [0, 0, 1, 3],
        [0, 0, 0, 1],
    ]
)  # (16, 4), exactly as printed in the lecture


def conv_transpose2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
) -> torch.Tensor:
    """Transposed convolution by scatter-add: every input value adds value x kernel to the output.

    Args:
        x: (N, C_in, H, W) float.
        weight: (C_in, C_out, kh, kw) float (the layout of ``nn.ConvTranspose2d.weight``).
        bias: (C_out,) float or ``None``.
        stride: spacing of the kernel copies in the output (the upsampling factor).
        padding: rows/columns cropped from each border of the full result.
        output_padding: extra rows/columns kept at the bottom/right (to reach an exact size).

    Returns:
        (N, C_out, (H - 1) s - 2 p + kh + output_padding, (W - 1) s - 2 p + kw + output_padding).
        Equals ``F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)``.

    Raises:
        ValueError: shapes that do not fit together.
    """
    if x.dim() != 4 or weight.dim() != 4 or weight.shape[0] != x.shape[1]:
        raise ValueError(
            f"need x (N, C_in, H, W) and weight (C_in, C_out, kh, kw), got {tuple(x.shape)} and {tuple(weight.shape)}"
        )
    if output_padding < 0 or (output_padding > 0 and output_padding >= stride):
        raise ValueError(f"output_padding must be smaller than stride, got {output_padding} and {stride}")
    n, _, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    full_h, full_w = (h - 1) * stride + kh + output_padding, (w - 1) * stride + kw + output_padding
    out = x.new_zeros(n, c_out, full_h, full_w)
    for a in range(kh):
        for b in range(kw):
            # kernel tap (a, b) of every input pixel (i, j) lands on output (i*s + a, j*s + b)
            contribution = torch.einsum("nchw,cd->ndhw", x, weight[:, :, a, b])  # (N, C_out, H, W)
            out[:, :, a : a + (h - 1) * stride + 1 : stride, b : b + (w - 1) * stride + 1 : stride] += contribution
    out = out[:, :, padding : full_h - padding, padding : full_w - padding]
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def conv_transpose_via_matrix(
    y: torch.Tensor, kernel: torch.Tensor, input_size: Sequence[int], stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """Upsample a single-channel map by multiplying with :math:`C^T`.

    Args:
        y: (H_out, W_out) float, a map the size of the convolution's output.
        kernel: (kh, kw) float.
        input_size: ``(H, W)``, the size of the convolution's input (the result's size).
        stride, padding: of the convolution whose matrix is transposed.

    Returns:
        (H, W) float: ``(conv_matrix(input_size, kernel, stride, padding).T @ y.flatten()).reshape(H, W)``,
        equal to ``F.conv_transpose2d`` with the same kernel, stride and padding (when the sizes are consistent).
    """
    c = conv_matrix(tuple(input_size), kernel, stride, padding)  # (H_out * W_out, H * W)
    if y.numel() != c.shape[0]:
        raise ValueError(f"y has {y.numel()} values but the convolution has {c.shape[0]} outputs")
    return (c.T @ y.reshape(-1)).reshape(tuple(input_size))  # (H * W,) -> (H, W)


def bilinear_kernel(factor: int, channels: int = 1) -> torch.Tensor:
    """The transposed-convolution weight that upsamples bilinearly by ``factor`` (FCN's initialisation).

    Use it in an ``nn.ConvTranspose2d(C, C, **bilinear_upsample_args(factor))``.

    Args:
        factor: upsampling factor f >= 1.
        channels: C; each channel is upsampled on its own (the weight is diagonal in channels).

    Returns:
        (C, C, k, k) float32 with k = 2 f - f mod 2.

    Raises:
        ValueError: ``factor < 1``.
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    k = 2 * factor - factor % 2
    centre = factor - 1 if k % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(k, dtype=torch.float32) - centre).abs() / factor  # (k,) a tent
    tent = ramp[:, None] * ramp[None, :]  # (k, k)
    weight = torch.zeros(channels, channels, k, k)
    weight[range(channels), range(channels)] = tent
    return weight


def bilinear_upsample_args(factor: int) -> dict[str, int]:
    """``kernel_size``, ``stride`` and ``padding`` of an ``nn.ConvTranspose2d`` that maps H to ``factor * H`` with :func:`bilinear_kernel`."""
    k = 2 * factor - factor % 2
    return {"kernel_size": k, "stride": factor, "padding": (k - factor + 1) // 2}
