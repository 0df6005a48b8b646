"""Rotation prediction (Gidaris, Singh & Komodakis, ICLR 2018): rotate by 0, 90, 180 or 270 degrees, predict which."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data.augment import check_image_batch, rotate90
from cvkit.layers.heads import feature_dim_of


def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, with their labels (Gidaris et al. 2018 train on all four at once).

    Args:
        images: (B, C, S, S) float, square.

    Returns:
        rotated (4B, C, S, S): the batch rotated by 0, 90, 180, 270 degrees counter-clockwise, in that order;
        labels (4B,) int64 in {0, 1, 2, 3} (rotation / 90 degrees).

    Raises:
        ValueError: not a batch of square images.
    """
    check_image_batch(images)
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotation needs square images, got {tuple(images.shape[-2:])}")
    b = images.shape[0]
    k = torch.arange(4, device=images.device).repeat_interleave(b)  # (4B,) 0 0 .. 1 1 .. 2 2 .. 3 3
    return rotate90(images.repeat(4, 1, 1, 1), k), k


class RotationPrediction(nn.Module):
    """Encoder plus a linear 4-way classifier of the rotation angle.

    Shapes:
        ``forward(images)``: (B, C, S, S) -> scalar cross-entropy over the 4B rotated copies.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(feature_dim_of(encoder), 4)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 4) rotation scores of already rotated images."""
        return self.head(self.encoder(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rotated, labels = rotation_batch(images)
        return F.cross_entropy(self.logits(rotated), labels)
