"""In-network upsampling without parameters: nearest-neighbour, "bed of nails" and max unpooling.

A fully convolutional segmenter downsamples (pooling, strided convolution) to see context
cheaply, then must upsample back to one prediction per pixel (Long et al., "Fully
Convolutional Networks", CVPR 2015; Noh et al., "Learning Deconvolution Network", ICCV 2015):

* **nearest neighbour** copies every value into an s x s block;
* **bed of nails** puts every value in the top-left corner of its block and zeros elsewhere;
* **max unpooling** puts every value where the maximum came from in the matching max-pooling
  layer ("remember which element was max"), zeros elsewhere, so fine positions survive the
  round trip through the bottleneck.

The worked example of lecture 001 (a 4 x 4 input max-pooled to [[5, 6], [7, 8]], whose
positions then place [[1, 2], [3, 4]]) is :data:`SEED_POOL_INPUT` and :data:`SEED_UNPOOL_INPUT`.
"""

from __future__ import annotations

import torch

# lecture 001, "In-network upsampling: max unpooling"
SEED_POOL_INPUT = torch.tensor(
    [[1.0, 2, 6, 3], [3, 5, 2, 1], [1, 2, 2, 1], [7, 3, 4, 8]]
)  # max-pools to [[5, 6], [7, 8]]
SEED_UNPOOL_INPUT = torch.tensor([[1.0, 2], [3, 4]])  # placed at the maxima: [[0,0,2,0],[0,1,0,0],[0,0,0,0],[3,0,0,4]]


def _check(x: torch.Tensor, scale: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(
            f"x must be (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}; add axes with x[None, None]"
        )
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")


def nearest_unpool(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling: each value fills a ``scale`` x ``scale`` block.

    Args:
        x: (N, C, H, W) float.
        scale: upsampling factor s.

    Returns:
        (N, C, s H, s W). Equals ``F.interpolate(x, scale_factor=s, mode="nearest")``.

    Raises:
        ValueError: ``x`` not 4-D or a bad scale.
    """
    _check(x, scale)
    return x.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


def bed_of_nails_unpool(x: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ "Bed of nails" upsampling: each value at the top-left of its block, zeros elsewhere.

    Args:
        x: (N, C, H, W) float.
        scale: upsampling factor s.

    Returns:
        (N, C, s H, s W); equals a stride-s transposed convolution with a kernel that is 1 at
        its top-left and 0 elsewhere.

    Raises:
        ValueError: ``x`` not 4-D or a bad scale.
    """
    _check(x, scale)
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * scale, w * scale)
    out[:, :, ::scale, ::scale] = x
    return out


def max_unpool(x: torch.Tensor, indices: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
    """Max unpooling: put each value back where its max-pooling maximum was found.

    Args:
        x: (N, C, h, w) float values to place.
        indices: (N, C, h, w) int64 from ``F.max_pool2d(..., return_indices=True)``: for each
            pooled value, the flat index ``row * W + col`` of its maximum in the (H, W) input.
        output_size: ``(H, W)`` of the layer that was pooled.

    Returns:
        (N, C, H, W) float, zero except at the remembered positions. Equals ``F.max_unpool2d``.

    Raises:
        ValueError: shapes differ, or an index falls outside ``output_size``.
    """
    if (
        not isinstance(x, torch.Tensor)
        or x.dim() != 4
        or not isinstance(indices, torch.Tensor)
        or indices.shape != x.shape
    ):
        raise ValueError(
            f"x and indices must both be (N, C, h, w), got {getattr(x, 'shape', None)} and {getattr(indices, 'shape', None)}"
        )
    n, c, _, _ = x.shape
    height, width = output_size
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= height * width):
        raise ValueError(
            f"indices must be flat positions in [0, {height * width}) for output_size {tuple(output_size)}"
        )
    out = x.new_zeros(n, c, height * width)  # (N, C, H*W) flat, as the indices count
    out.scatter_(2, indices.reshape(n, c, -1), x.reshape(n, c, -1))
    return out.reshape(n, c, height, width)  # (N, C, H, W)
