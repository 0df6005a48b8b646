r"""MaxViT's block and grid attention (Tu et al. 2022, "MaxViT: Multi-Axis Vision Transformer", section 3.2).

Two reshapes of the same (H, W, C) feature map, each followed by attention over its P^2 (or G^2) axis:

.. math::
    \text{block:}\; (H, W, C) \rightarrow (\tfrac{H}{P} \times P, \tfrac{W}{P} \times P, C) \rightarrow (\tfrac{HW}{P^2}, P^2, C)

    \text{grid:}\; (H, W, C) \rightarrow (G \times \tfrac{H}{G}, G \times \tfrac{W}{G}, C) \rightarrow (G^2, \tfrac{HW}{G^2}, C)

Block attention mixes P x P neighbours (local, like Swin's windows). Grid attention lays a fixed G x G
grid over the whole image: its G^2 axis holds tokens H/G apart, so attending along it mixes the image
globally but sparsely (a dilated pattern). The kit returns both as token sequences with the groups
in the batch axis: block (B * HW/P^2, P^2, C), grid (B * HW/G^2, G^2, C), i.e. the paper's grid
tensor transposed so that attention runs over its first axis.

A MaxViT block is MBConv -> block attention -> grid attention; :class:`BlockGridAttention` is its
attention part (the MBConv is a convolution block from EfficientNet).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
from torchvision.ops import StochasticDepth

from cvkit.layers.transformer import FeedForward
from cvkit.layers.window import (
    WindowAttention,
    _check_grid,
    _check_groups,
    grid_to_tokens,
    tokens_to_grid,
    window_partition,
    window_reverse,
)

Partition = Literal["block", "grid"]
PARTITIONS = ("block", "grid")


def block_partition(grid: torch.Tensor, block_size: int) -> torch.Tensor:
    """MaxViT's block partition: non-overlapping P x P blocks (the same cut as Swin's windows).

    Args:
        grid: (B, H, W, C), H and W divisible by P.
        block_size: P.

    Returns:
        (B * HW/P^2, P^2, C): each row is one block's tokens in row-major order.

    Raises:
        ValueError: not 4-D or not divisible.
    """
    return window_partition(grid, block_size)


def block_reverse(blocks: torch.Tensor, block_size: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`block_partition`: (B * HW/P^2, P^2, C) -> (B, H, W, C)."""
    return window_reverse(blocks, block_size, grid_size)


def grid_partition(grid: torch.Tensor, grid_cells: int) -> torch.Tensor:
    """MaxViT's grid partition: a fixed G x G grid; each group holds one token from every cell.

    Group (a, b), for a < H/G and b < W/G, holds the G^2 tokens at rows a + i * H/G and columns
    b + j * W/G (i, j < G), in row-major (i, j) order: tokens H/G apart, spread over the whole image.

    Args:
        grid: (B, H, W, C), H and W divisible by G.
        grid_cells: G.

    Returns:
        (B * HW/G^2, G^2, C), groups in row-major (a, b) order.

    Raises:
        ValueError: not 4-D or not divisible.
    """
    b, h, w, c = _check_grid(grid, grid_cells, "grid_cells")
    g = grid_cells
    x = grid.reshape(b, g, h // g, g, w // g, c)  # (B, G, H/G, G, W/G, C): the lecture's (G x H/G, G x W/G, C)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/G, W/G, G, G, C)
    return x.reshape(b * (h // g) * (w // g), g * g, c)  # (B * HW/G^2, G^2, C)


def grid_reverse(groups: torch.Tensor, grid_cells: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`grid_partition`: (B * HW/G^2, G^2, C) -> (B, H, W, C).

    Raises:
        ValueError: the shapes do not fit ``grid_size`` and G.
    """
    h, w = grid_size
    g = grid_cells
    b, c = _check_groups(groups, g, grid_size, "groups", "grid_cells")
    x = groups.reshape(b, h // g, w // g, g, g, c)  # (B, H/G, W/G, G, G, C)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, G, H/G, G, W/G, C)
    return x.reshape(b, h, w, c)  # (B, H, W, C)


class PartitionAttention(nn.Module):
    """Pre-norm attention + MLP over block or grid partitions, with relative position bias (MaxViT).

    Args:
        dim: C.
        num_heads: h.
        input_resolution: (H, W) of the token grid.
        partition: ``"block"`` (P x P neighbours) or ``"grid"`` (G x G dilated grid).
        size: P for blocks, G for grids (7 in MaxViT).
        mlp_ratio, qkv_bias, drop, attn_drop, drop_path, norm_eps: as in :class:`cvkit.layers.TransformerBlock`.

    Shapes:
        (B, H*W, C) -> (B, H*W, C).

    Raises:
        ValueError: unknown partition, or H, W not divisible by ``size``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        input_resolution: tuple[int, int],
        partition: Partition = "block",
        size: int = 7,
        mlp_ratio: float = 4.0,
        *,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
        h, w = input_resolution
        if h % size or w % size:
            raise ValueError(f"input_resolution {input_resolution} must be divisible by the {partition} size {size}")
        self.input_resolution, self.partition, self.size = (h, w), partition, size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        # both partitions give size x size token groups laid out on a 2-D lattice: the same relative bias applies
        self.attn = WindowAttention(dim, size, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = StochasticDepth(drop_path, mode="row")
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), "gelu", drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = tokens_to_grid(self.norm1(x), self.input_resolution)  # (B, H, W, C)
        if self.partition == "block":
            out = block_reverse(self.attn(block_partition(grid, self.size)), self.size, self.input_resolution)
        else:
            out = grid_reverse(self.attn(grid_partition(grid, self.size)), self.size, self.input_resolution)
        x = x + self.drop_path(grid_to_tokens(out))  # (B, H*W, C)
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"partition={self.partition!r}, size={self.size}, input_resolution={self.input_resolution}"


class BlockGridAttention(nn.Module):
    """The attention half of a MaxViT block: block attention (local) then grid attention (global, dilated).

    Args:
        dim, num_heads, input_resolution: as in :class:`PartitionAttention`.
        size: P = G (MaxViT uses 7 for both).
        **kwargs: passed to both :class:`PartitionAttention` layers.

    Shapes:
        (B, H*W, C) -> (B, H*W, C).
    """

    def __init__(self, dim: int, num_heads: int, input_resolution: tuple[int, int], size: int = 7, **kwargs) -> None:
        super().__init__()
        self.block = PartitionAttention(dim, num_heads, input_resolution, "block", size, **kwargs)
        self.grid = PartitionAttention(dim, num_heads, input_resolution, "grid", size, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.grid(self.block(x))
