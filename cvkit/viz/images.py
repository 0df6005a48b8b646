"""Showing images: tensors in the kit's layout (C, H, W) or (B, C, H, W), float in [0, 1]."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def to_display(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Convert one image to what ``plt.imshow`` wants.

    Args:
        image: (C, H, W) or (H, W) tensor (float in [0, 1] or uint8), or an (H, W[, C]) NumPy array.

    Returns:
        (H, W, 3) or (H, W) float array in [0, 1].

    Raises:
        ValueError: not 2-D or 3-D, or a channel count other than 1 or 3.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.float().div(255) if image.dtype == torch.uint8 else image.float()
        if image.dim() == 3:
            if image.shape[0] not in (1, 3):
                raise ValueError(f"expected (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
            image = image.permute(1, 2, 0)  # (C, H, W) -> (H, W, C)
        elif image.dim() != 2:
            raise ValueError(f"expected a (C, H, W) or (H, W) image, got shape {tuple(image.shape)}")
        array = image.numpy()
    else:
        array = np.asarray(image)
        array = array.astype(np.float32) / 255 if array.dtype == np.uint8 else array.astype(np.float32)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    return np.clip(array, 0, 1)


def show_images(
    images: torch.Tensor | Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    size: float = 2.0,
    cmap: str = "gray",
    suptitle: str | None = None,
    axes=None,
):
    """Draw images in a grid.

    Args:
        images: a (B, C, H, W) tensor or a sequence of (C, H, W) / (H, W) tensors, values in [0, 1].
        titles: one title per image.
        ncols: columns (default: up to 8).
        size: inches per image.
        cmap: colour map for one-channel images.
        suptitle: figure title.
        axes: existing axes to draw into (flattened; at least as many as images).

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: wrong number of titles, or no images.
    """
    import matplotlib.pyplot as plt

    items = list(images) if not isinstance(images, torch.Tensor) or images.dim() == 4 else [images]
    if not items:
        raise ValueError("no images to show")
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"got {len(titles)} titles for {len(items)} images")
    ncols = ncols or min(len(items), 8)
    nrows = math.ceil(len(items) / ncols)
    if axes is None:
        title_room = 0.3 * nrows if titles is not None else 0.0  # inches per row for the titles above the images
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(size * ncols, size * nrows + title_room + (0.4 if suptitle else 0)), squeeze=False
        )
    else:
        fig = np.asarray(axes).flat[0].figure
    flat = np.asarray(axes).ravel()
    for i, ax in enumerate(flat):
        ax.axis("off")
        if i < len(items):
            ax.imshow(to_display(items[i]), cmap=cmap, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def normalize_for_display(x: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """Rescale any real tensor to [0, 1] (min-max) for display, e.g. a feature map or a filter.

    Args:
        x: (..., H, W) tensor.
        per_channel: rescale each (H, W) slice on its own.
    """
    x = x.detach().float()
    if per_channel:
        lo = x.amin(dim=(-2, -1), keepdim=True)
        hi = x.amax(dim=(-2, -1), keepdim=True)
    else:
        lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp_min(1e-8)
