"""Tiles of an image grid, the input of the relative-position and jigsaw pretext tasks.

The tile tasks leave a random gap between tiles (a random crop inside each grid cell) and normalise each tile, so
the network cannot solve them from edge continuity or brightness alone, the low-level shortcuts both papers warn about.
"""

from __future__ import annotations

import torch

from cvkit.data.augment import check_image_batch


def grid_tiles(
    images: torch.Tensor,
    grid: int = 3,
    tile: int | None = None,
    generator: torch.Generator | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Cut each image into ``grid x grid`` cells and take a random ``tile x tile`` crop inside each cell.

    The random offset leaves a gap of up to ``cell - tile`` pixels between neighbouring tiles.

    Args:
        images: (B, C, H, W) float.
        grid: cells per side.
        tile: tile side in pixels (default: 80% of the cell side, as 64 of Noroozi's 85-pixel cells).
        generator: random offsets (``None``: the global generator).
        normalize: subtract each tile's mean and divide by its standard deviation (per channel).

    Returns:
        (B, grid * grid, C, tile, tile), cells in row-major order.

    Raises:
        ValueError: ``tile`` larger than a cell or images too small for the grid.
    """
    check_image_batch(images)
    b, c, h, w = images.shape
    cell = min(h, w) // grid
    tile = tile or max(1, int(round(0.8 * cell)))
    if cell < 1 or not 1 <= tile <= cell:
        raise ValueError(f"tile must be between 1 and the cell side {cell} (images {h}x{w}, grid {grid}), got {tile}")
    n = grid * grid
    dev = images.device
    oy = torch.randint(0, cell - tile + 1, (b, n), generator=generator, device=dev)  # (B, n) offsets inside each cell
    ox = torch.randint(0, cell - tile + 1, (b, n), generator=generator, device=dev)
    cells = torch.arange(n, device=dev)
    top = (cells // grid) * cell + oy  # (B, n)
    left = (cells % grid) * cell + ox
    ar = torch.arange(tile, device=dev)
    rows = (top[..., None] + ar)[:, :, None, :, None]  # (B, n, 1, t, 1)
    cols = (left[..., None] + ar)[:, :, None, None, :]  # (B, n, 1, 1, t)
    bi = torch.arange(b, device=dev)[:, None, None, None, None]  # (B, 1, 1, 1, 1)
    ci = torch.arange(c, device=dev)[None, None, :, None, None]  # (1, 1, C, 1, 1)
    tiles = images[bi, ci, rows, cols]  # (B, n, C, t, t)
    if normalize:
        mean = tiles.mean(dim=(-2, -1), keepdim=True)
        std = tiles.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
        tiles = (tiles - mean) / std
    return tiles
