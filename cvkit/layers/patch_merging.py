r"""Patch merging: Swin's downsampling between stages (Liu et al. 2021, section 3.1).

Each 2 x 2 group of neighbouring tokens is concatenated (4C features), normalised and linearly
projected to 2C: the grid halves in each direction and the width doubles, as a stride-2 stage
of a CNN does. This is what makes Swin hierarchical (feature maps at 1/4, 1/8, 1/16, 1/32).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.window import grid_to_tokens, tokens_to_grid


class PatchMerging(nn.Module):
    """Merge 2 x 2 neighbouring tokens: (B, H*W, C) -> (B, H/2 * W/2, 2C).

    The four neighbours are concatenated in the order of the paper's code and torchvision:
    (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col);
    then LayerNorm(4C) and Linear(4C, 2C, bias=False).

    Args:
        dim: C.
        input_resolution: (H, W), both even.
        norm_eps: LayerNorm epsilon (Swin: 1e-5).

    Raises:
        ValueError: odd H or W, or (in forward) tokens that do not match (H*W, C).
    """

    def __init__(self, dim: int, input_resolution: tuple[int, int], norm_eps: float = 1e-5) -> None:
        super().__init__()
        h, w = input_resolution
        if h % 2 or w % 2:
            raise ValueError(f"patch merging needs an even grid, got {input_resolution}")
        self.input_resolution = (h, w)
        self.norm = nn.LayerNorm(4 * dim, eps=norm_eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    @property
    def output_resolution(self) -> tuple[int, int]:
        """(H/2, W/2)."""
        return self.input_resolution[0] // 2, self.input_resolution[1] // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = tokens_to_grid(x, self.input_resolution)  # (B, H, W, C)
        merged = torch.cat(
            [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]], dim=-1
        )  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(grid_to_tokens(merged)))  # (B, H/2*W/2, 2C)

    def extra_repr(self) -> str:
        return f"input_resolution={self.input_resolution} -> {self.output_resolution}"
