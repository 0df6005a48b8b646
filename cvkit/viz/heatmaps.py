"""Heatmaps over images: saliency maps, Grad-CAM, effective receptive fields."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from cvkit.viz.images import to_display


def overlay_heatmap(image: torch.Tensor, heatmap: torch.Tensor, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a heatmap, coloured with ``cmap``, over an image.

    Args:
        image: (C, H, W) float in [0, 1] (C = 1 or 3) or (H, W).
        heatmap: (H, W) non-negative (any scale: min-max normalized here); a smaller map is upsampled bilinearly.
        alpha: weight of the heatmap, in [0, 1].
        cmap: a matplotlib colour map name.

    Returns:
        (H, W, 3) float array in [0, 1], ready for ``plt.imshow``.

    Raises:
        ValueError: ``alpha`` outside [0, 1] or a heatmap that is not 2-D.
    """
    import matplotlib

    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    heat = torch.as_tensor(heatmap).detach().float().cpu()
    if heat.dim() != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {tuple(heat.shape)}")
    base = to_display(image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    h, w = base.shape[:2]
    if heat.shape != (h, w):
        heat = torch.nn.functional.interpolate(heat[None, None], size=(h, w), mode="bilinear", align_corners=False)[
            0, 0
        ]
    heat = (heat - heat.min()) / (heat.max() - heat.min()).clamp_min(1e-12)
    coloured = matplotlib.colormaps[cmap](heat.numpy())[..., :3]
    return np.clip((1 - alpha) * base + alpha * coloured, 0, 1)


def show_heatmaps(
    image: torch.Tensor,
    heatmaps: Mapping[str, torch.Tensor],
    alpha: float = 0.5,
    cmap: str = "jet",
    size: float = 3.0,
    suptitle: str | None = None,
):
    """The image, then one overlay per named heatmap, in a row.

    Args:
        image: (C, H, W) float in [0, 1].
        heatmaps: ``{"saliency": (H, W), "Grad-CAM": (H, W), ...}``.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(heatmaps) + 1, figsize=(size * (len(heatmaps) + 1), size + (0.3 if suptitle else 0)), squeeze=False
    )
    axes = axes[0]
    axes[0].imshow(to_display(image), cmap="gray")
    axes[0].set_title("image", fontsize=9)
    for ax, (title, heat) in zip(axes[1:], heatmaps.items()):
        ax.imshow(overlay_heatmap(image, heat, alpha, cmap))
        ax.set_title(title, fontsize=9)
    for ax in axes:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
