"""Colour maps for label images: one fixed colour per class, so masks can be read at a glance.

Two palettes:

* ``"kit"``: background black, class c >= 1 the kit's Tableau colour ``PALETTE[c - 1]`` (the
  colour :func:`cvkit.viz.draw_boxes` gives label c - 1, and :func:`cvkit.viz.overlay_mask` paints
  class c), so a shape's box, outline and mask share one colour across the kit;
* ``"voc"``: the PASCAL VOC palette (background black, then colours built by spreading the
  bits of the class index over the R, G and B channels), the convention of most
  segmentation datasets and code.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

# the kit's qualitative palette (Tableau 10), (10, 3) float32 RGB in [0, 1]: class i gets PALETTE[i % 10] everywhere
# (boxes in cvkit.viz, masks here)
PALETTE = (
    np.array(
        [
            [31, 119, 180],
            [255, 127, 14],
            [44, 160, 44],
            [214, 39, 40],
            [148, 103, 189],
            [140, 86, 75],
            [227, 119, 194],
            [127, 127, 127],
            [188, 189, 34],
            [23, 190, 207],
        ],
        dtype=np.float32,
    )
    / 255
)


def label_colormap(num_classes: int, kind: Literal["kit", "voc"] = "kit") -> np.ndarray:
    """Colours of classes 0 .. K-1 (0 = background).

    Args:
        num_classes: K, including background.
        kind: ``"kit"`` or ``"voc"`` (see the module docstring).

    Returns:
        (K, 3) float32 RGB in [0, 1].

    Raises:
        ValueError: ``num_classes < 1`` or an unknown ``kind``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if kind == "kit":
        colours = np.zeros((num_classes, 3), dtype=np.float32)
        for c in range(1, num_classes):
            colours[c] = PALETTE[(c - 1) % len(PALETTE)]
        return colours
    if kind == "voc":
        colours = np.zeros((num_classes, 3), dtype=np.int64)
        for c in range(num_classes):
            r = g = b = 0
            label = c
            for shift in range(7, -1, -1):  # the label's bits, three at a time, fill R, G, B from the top bit down
                r |= ((label >> 0) & 1) << shift
                g |= ((label >> 1) & 1) << shift
                b |= ((label >> 2) & 1) << shift
                label >>= 3
            colours[c] = (r, g, b)
        return (colours / 255).astype(np.float32)
    raise ValueError(f"kind must be one of 'kit', 'voc', got {kind!r}")


def colorize(
    mask: torch.Tensor | np.ndarray, num_classes: int | None = None, kind: Literal["kit", "voc"] = "kit"
) -> np.ndarray:
    """Paint a label image with :func:`label_colormap`.

    Args:
        mask: (H, W) integer class per pixel in [0, K).
        num_classes: K (default: ``mask.max() + 1``).
        kind: palette, as in :func:`label_colormap`.

    Returns:
        (H, W, 3) float32 RGB in [0, 1], ready for ``plt.imshow``.

    Raises:
        ValueError: not 2-D, or labels outside [0, K).
    """
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if m.ndim != 2 or np.issubdtype(m.dtype, np.floating):
        raise ValueError(f"mask must be an (H, W) integer label image, got shape {m.shape} and dtype {m.dtype}")
    k = int(m.max(initial=0)) + 1 if num_classes is None else num_classes
    if m.size and (m.min() < 0 or m.max() >= k):
        raise ValueError(f"mask labels must be in [0, {k}), got min {m.min()} and max {m.max()}")
    return label_colormap(k, kind)[m]
