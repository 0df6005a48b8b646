"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016).

Shuffle the 9 tiles of a 3x3 grid with one permutation out of a fixed set chosen for maximal Hamming distance, and
predict the permutation's index.
"""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.pretext.tiles import grid_tiles


def jigsaw_permutations(num_permutations: int = 64, grid: int = 3, seed: int = 0) -> torch.Tensor:
    """A permutation set of maximal average Hamming distance (Noroozi & Favaro 2016, Algorithm 1).

    Start from one random permutation; repeatedly add the permutation whose summed Hamming
    distance to those already chosen is largest. Distant permutations are easy to tell apart
    from each other and force the network to look at every tile.

    Args:
        num_permutations: P, the number of classes of the puzzle (the paper settles on 1000; 64 or 100 here).
        grid: tiles per side (9 tiles for 3).
        seed: chooses the first permutation.

    Returns:
        (P, grid * grid) int64; row p lists, for each position of the shuffled puzzle, which cell it shows.

    Raises:
        ValueError: ``num_permutations`` outside [1, (grid^2)!] or ``grid`` other than 2 or 3.
    """
    if grid not in (2, 3):
        raise ValueError(f"grid must be 2 or 3 (all permutations are enumerated), got {grid}")
    everything = _all_permutations(grid * grid)  # (n!, n)
    if not 1 <= num_permutations <= everything.shape[0]:
        raise ValueError(f"num_permutations must be in [1, {everything.shape[0]}], got {num_permutations}")
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(0, everything.shape[0], (1,), generator=g))]
    total = torch.zeros(everything.shape[0], dtype=torch.int32)  # summed distance to the chosen set
    for _ in range(num_permutations - 1):
        total += (everything != everything[chosen[-1]]).sum(dim=1, dtype=torch.int32)
        total[chosen[-1]] = -1  # never pick twice
        chosen.append(int(total.argmax()))
    return everything[chosen].long()


@functools.lru_cache(maxsize=2)
def _all_permutations(n: int) -> torch.Tensor:
    """Every permutation of range(n) as an (n!, n) int8 tensor (362,880 rows for 9 tiles; built once)."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int8)


def jigsaw_batch(
    images: torch.Tensor, permutations: torch.Tensor, tile: int | None = None, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled 3x3 puzzles and the index of the permutation that shuffled each.

    Args:
        images: (B, C, H, W) float.
        permutations: (P, 9) int64 from :func:`jigsaw_permutations`.
        tile: tile side (see :func:`grid_tiles`).

    Returns:
        tiles (B, 9, C, t, t) where position j shows cell ``permutations[label, j]``; labels (B,) int64 in [0, P).
    """
    if permutations.dim() != 2 or permutations.shape[1] != 9:
        raise ValueError(f"permutations must be (P, 9), got {tuple(permutations.shape)}")
    tiles = grid_tiles(images, 3, tile, generator)  # (B, 9, C, t, t)
    b = tiles.shape[0]
    labels = torch.randint(0, permutations.shape[0], (b,), generator=generator, device=images.device)
    order = permutations.to(images.device)[labels]  # (B, 9)
    return tiles[torch.arange(b, device=images.device)[:, None], order], labels


class JigsawPuzzle(nn.Module):
    """Noroozi's context-free network: a shared encoder per tile, features concatenated, an MLP over P permutations.

    Args:
        encoder: backbone (B, C, t, t) -> (B, D) with ``feature_dim``.
        num_permutations: P.
        hidden_dim: MLP width.
        tile: tile side (default: 80% of a cell).
        seed: seed of the permutation set.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar cross-entropy.
    """

    num_views = 1

    def __init__(
        self,
        encoder: nn.Module,
        num_permutations: int = 64,
        hidden_dim: int = 256,
        tile: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.head = mlp_head(9 * dim, hidden_dim, num_permutations)
        self.register_buffer("permutations", jigsaw_permutations(num_permutations, 3, seed))
        self.tile = tile

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        tiles, labels = jigsaw_batch(images, self.permutations, self.tile, generator)  # (B, 9, C, t, t)
        b = tiles.shape[0]
        f = self.encoder(tiles.flatten(0, 1))  # (9B, D)
        return F.cross_entropy(self.head(f.view(b, -1)), labels)  # (B, 9D) -> (B, P)
