"""Relative position / context prediction (Doersch, Gupta & Efros, ICCV 2015).

Given the centre tile of a 3x3 grid and one of its 8 neighbours, predict where the neighbour is.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.pretext.tiles import grid_tiles


# relative position labels: the 8 neighbours of the centre cell of a 3x3 grid, row-major
NEIGHBOURS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
NEIGHBOUR_NAMES: tuple[str, ...] = (
    "top-left",
    "top",
    "top-right",
    "left",
    "right",
    "bottom-left",
    "bottom",
    "bottom-right",
)


def relative_position_batch(
    images: torch.Tensor, tile: int | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs for context prediction (Doersch et al. 2015): the centre tile and a random one of its 8 neighbours.

    Args:
        images: (B, C, H, W) float.
        tile: tile side (see :func:`grid_tiles`).
        generator: random offsets and neighbour choice.

    Returns:
        centre (B, C, t, t), neighbour (B, C, t, t), labels (B,) int64 in [0, 8) indexing :data:`NEIGHBOUR_NAMES`.
    """
    tiles = grid_tiles(images, 3, tile, generator)  # (B, 9, C, t, t)
    b = tiles.shape[0]
    labels = torch.randint(0, 8, (b,), generator=generator, device=images.device)
    cell_of_label = torch.tensor([r * 3 + c for r, c in NEIGHBOURS], device=images.device)  # (8,) cell index
    neighbour = tiles[torch.arange(b, device=images.device), cell_of_label[labels]]
    return tiles[:, 4], neighbour, labels


class RelativePosition(nn.Module):
    """Siamese encoder on the centre and neighbour tiles, an MLP on the two features concatenated, 8 classes.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar cross-entropy.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module, hidden_dim: int = 256, tile: int | None = None) -> None:
        super().__init__()
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.head = mlp_head(2 * dim, hidden_dim, 8)
        self.tile = tile

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        centre, neighbour, labels = relative_position_batch(images, self.tile, generator)
        f = self.encoder(torch.cat([centre, neighbour]))  # (2B, D): one pass, shared weights
        fc, fn = f.chunk(2)
        return F.cross_entropy(self.head(torch.cat([fc, fn], dim=1)), labels)
