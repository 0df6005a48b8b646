"""Pictures for segmentation (lecture 09): numeric grids, semantic masks with a colour legend, instance masks.

Classes keep the kit's colours (:func:`cvkit.segmentation.label_colormap`, ``"kit"`` palette):
class c >= 1 of a semantic mask has the colour of shape label c - 1 in box pictures.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.annotations import overlay_mask
from cvkit.viz.images import to_display


def show_matrices(
    matrices: Sequence[torch.Tensor],
    titles: Sequence[str] | None = None,
    size: float = 0.45,
    fmt: str = "{:g}",
    cmap: str = "Blues",
    suptitle: str | None = None,
):
    """Small matrices side by side as annotated grids (unpooling grids, a convolution matrix C^T).

    Args:
        matrices: 2-D tensors (or arrays), drawn left to right.
        titles: one title each.
        size: inches per cell.
        fmt: format of the numbers written in the cells.
        cmap: colour map of the cell shading.
        suptitle: figure title.

    Returns:
        the Figure.

    Raises:
        ValueError: a matrix that is not 2-D, or titles of the wrong length.
    """
    import matplotlib.pyplot as plt

    mats = [np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=float) for m in matrices]
    if any(m.ndim != 2 for m in mats):
        raise ValueError(f"every matrix must be 2-D, got shapes {[m.shape for m in mats]}")
    if titles is not None and len(titles) != len(mats):
        raise ValueError(f"got {len(titles)} titles for {len(mats)} matrices")
    widths = [m.shape[1] for m in mats]
    height = max(m.shape[0] for m in mats)
    fig, axes = plt.subplots(
        1,
        len(mats),
        figsize=(size * (sum(widths) + len(mats)), size * height + 0.8),
        gridspec_kw={"width_ratios": widths},
        squeeze=False,
    )
    for i, (ax, m) in enumerate(zip(axes[0], mats)):
        ax.imshow(m, cmap=cmap, vmin=min(0.0, m.min()), vmax=max(m.max(), 1e-9))
        for (r, c), v in np.ndenumerate(m):
            ax.text(
                c,
                r,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v > 0.6 * max(m.max(), 1e-9) else "black",
            )
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def add_class_legend(ax, class_names: Sequence[str], include_background: bool = True) -> None:
    """A legend of class colours: ``class_names[0]`` is the background (black), then ``PALETTE[c - 1]``."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="black", label=class_names[0])] if include_background else []
    handles += [
        Patch(facecolor=PALETTE[(c - 1) % len(PALETTE)], label=name) for c, name in enumerate(class_names) if c > 0
    ]
    ax.legend(handles=handles, fontsize=6, loc="lower right", framealpha=0.8)


def plot_segmentation(
    images: torch.Tensor,
    targets: torch.Tensor,
    predictions: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    size: float = 2.0,
    suptitle: str | None = None,
):
    """Rows of image | ground truth | prediction | errors, for a few images.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        targets: (N, H, W) int64 class per pixel (0 background).
        predictions: (N, H, W) int64 (``logits.argmax(1)``), or ``None`` to show the ground truth only.
        class_names: names of classes 0..K-1 (background first) for the legend.
        size: inches per panel.
        suptitle: figure title.

    Returns:
        the Figure.
    """
    import matplotlib.pyplot as plt

    from cvkit.segmentation.colormap import colorize

    k = int(max(int(targets.max()), int(predictions.max()) if predictions is not None else 0)) + 1
    k = max(k, len(class_names) if class_names else 0)
    cols = 2 if predictions is None else 4
    fig, axes = plt.subplots(len(images), cols, figsize=(size * cols, size * len(images)), squeeze=False)
    for i in range(len(images)):
        panels = [(to_display(images[i]), "image"), (colorize(targets[i], k), "ground truth")]
        if predictions is not None:
            wrong = (predictions[i] != targets[i]).cpu().numpy()
            panels += [
                (colorize(predictions[i], k), "prediction"),
                (wrong.astype(float), f"errors ({wrong.mean():.1%})"),
            ]
        for ax, (picture, title) in zip(axes[i], panels):
            ax.imshow(picture, cmap="Reds" if picture.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
    if class_names:
        add_class_legend(axes[0, 1], class_names)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_instances(
    image: torch.Tensor,
    masks: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor | None = None,
    boxes: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    label_offset: int = 0,
    ax=None,
    title: str | None = None,
):
    """Instance masks: each object filled translucently and outlined in its class colour, with its box and score.

    Args:
        image: (3, H, W) float in [0, 1].
        masks: (K, H, W) bool/uint8, or (K, 1, H, W) float probabilities (Mask R-CNN's output).
        labels: (K,) int64 classes.
        scores: (K,) float; instances below ``score_threshold`` are skipped.
        boxes: (K, 4) xyxy pixels, drawn dashed when given.
        class_names: names indexed by ``label - label_offset``.
        mask_threshold: probability above which a pixel belongs to the mask.
        label_offset: 1 for torchvision outputs (label 0 is background).
        ax: axis; title: axis title.

    Returns:
        the axis.
    """
    import matplotlib.pyplot as plt

    from cvkit.viz.annotations import draw_boxes

    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    m = masks[:, 0] if masks.dim() == 4 else masks
    m = (m.float() > mask_threshold).cpu()
    keep = torch.ones(len(m), dtype=torch.bool) if scores is None else scores.cpu() >= score_threshold
    semantic = torch.zeros(image.shape[-2:], dtype=torch.int64)
    cls = labels.cpu() - label_offset
    for i in torch.where(keep)[0].flip(0):  # the best-scoring instance painted last (on top)
        semantic[m[i]] = int(cls[i]) + 1
    ax.imshow(overlay_mask(image, semantic, alpha=0.45))
    for i in torch.where(keep)[0]:
        if m[i].any():
            ax.contour(
                m[i].numpy().astype(float), levels=[0.5], colors=[PALETTE[int(cls[i]) % len(PALETTE)]], linewidths=1.4
            )
    if boxes is not None:
        draw_boxes(
            ax,
            boxes[keep].cpu(),
            cls[keep],
            scores[keep].cpu() if scores is not None else None,
            class_names=class_names,
            linestyle="--",
            linewidth=1.0,
        )
    h, w = image.shape[-2:]
    ax.set_xlim(-0.5, w - 0.5)  # contours and boxes on the border must not widen the view
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax
