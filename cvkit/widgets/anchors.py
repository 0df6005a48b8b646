"""An anchor explorer: how stride, anchor sizes and aspect ratios tile an image (lecture 08).

Headless (papermill, CI) it draws the default setting once; in a live notebook, sliders.
"""

from __future__ import annotations

import torch

from cvkit.widgets.explorer import Choice, Slider, explore

RATIO_SETS = {"1": (1.0,), "0.5, 1, 2": (0.5, 1.0, 2.0), "0.25 ... 4": (0.25, 0.5, 1.0, 2.0, 4.0)}


def explore_anchors(image: torch.Tensor, *, static: bool | None = None):
    """Anchors of the cell under a point, on a feature grid of adjustable stride.

    Controls: ``stride`` (cell size in pixels), ``size`` (smallest anchor size), ``scales``
    (1 to 3 sizes, each double the previous), ``ratios`` (aspect-ratio sets), and ``x``, ``y``
    (a point in the image; its cell's anchors are drawn).

    Args:
        image: (3, H, W) float in [0, 1].
        static: as in :func:`cvkit.widgets.explore` (``None``: decide from the environment).

    Returns:
        the live widget, or the Figure drawn with the defaults when headless.
    """
    from cvkit.viz.detection import plot_anchors

    h, w = image.shape[-2:]

    def draw(stride: int, size: int, scales: int, ratios: str, x: int, y: int):
        stride = int(stride)
        sizes = tuple(int(size) * 2**i for i in range(int(scales)))
        row = min(int(y) // stride, h // stride - 1)
        col = min(int(x) // stride, w // stride - 1)
        return plot_anchors(image, stride, sizes, RATIO_SETS[ratios], cell=(row, col))

    controls = {
        "stride": Slider(4, 32, 4, default=8),
        "size": Slider(4, 64, 4, default=12),
        "scales": Slider(1, 3, 1, default=2),
        "ratios": Choice(list(RATIO_SETS), default="0.5, 1, 2"),
        "x": Slider(0, w - 1, 1, default=w // 2),
        "y": Slider(0, h - 1, 1, default=h // 2),
    }
    return explore(draw, controls, static=static)
