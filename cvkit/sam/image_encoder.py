"""The image encoder: an image becomes a (D, h, w) grid of embeddings, computed once per image.

SAM uses an MAE-pretrained ViT-H at 1024x1024 (a 64x64 grid of 256-d embeddings) because it runs
once per image while the light prompt encoder and mask decoder run once per click. Ours keeps the
same contract at toy scale: a small CNN (conv-GroupNorm-GELU stages with residual blocks) that
turns a 64x64 image into a 16x16 grid, then a 1x1 "neck" to width D, like SAM's neck.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class _ResidualConv(nn.Module):
    """x + Conv-GN-GELU-Conv-GN(x); shapes (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            nn.GroupNorm(8, c),
            nn.GELU(),
            nn.Conv2d(c, c, 3, padding=1),
            nn.GroupNorm(8, c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x + self.body(x))


class SamImageEncoder(nn.Module):
    """(B, 3, H, W) images in [0, 1] -> (B, D, H / 4, W / 4) embeddings.

    Args:
        embed_dim: D. width: channels of the first stage (the second has twice as many).
        blocks: residual blocks at the final resolution (more: larger receptive field).

    Raises:
        ValueError: an input that is not (B, 3, H, W) with H and W divisible by 4.
    """

    stride = 4

    def __init__(self, embed_dim: int = 64, width: int = 32, blocks: int = 3) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
        )  # (1, 3, 1, 1): centres [0, 1] pixels
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.GroupNorm(8, width),
            nn.GELU(),  # H/2
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.GroupNorm(8, 2 * width),
            nn.GELU(),  # H/4
        )
        # dilated blocks grow the receptive field without more downsampling: the whole 64x64 image
        self.blocks = nn.Sequential(*[_ResidualConv(2 * width) for _ in range(blocks)])
        self.context = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, 3, padding=2, dilation=2),
            nn.GroupNorm(8, 2 * width),
            nn.GELU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=4, dilation=4),
            nn.GroupNorm(8, 2 * width),
            nn.GELU(),
        )
        self.neck = nn.Sequential(nn.Conv2d(2 * width, embed_dim, 1), nn.GroupNorm(8, embed_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] % 4 or images.shape[3] % 4:
            raise ValueError(f"images must be (B, 3, H, W) with H, W divisible by 4, got {tuple(images.shape)}")
        x = self.stem(images - self.mean)
        x = self.blocks(x)
        return self.neck(x + self.context(x))
