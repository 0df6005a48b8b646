"""Drawing ground truth and predictions on images: boxes (xyxy pixels), masks and captions."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.images import to_display


def draw_boxes(
    ax,
    boxes: torch.Tensor,
    labels: torch.Tensor | None = None,
    scores: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    colour: str | None = None,
    linestyle: str = "-",
    linewidth: float = 1.5,
) -> None:
    """Draw boxes on a matplotlib axis that already shows the image.

    Args:
        ax: the matplotlib axis.
        boxes: (K, 4) float, ``xyxy`` in pixels.
        labels: (K,) int64 class indices (colour and name per class).
        scores: (K,) float in [0, 1], written after the name.
        class_names: names indexed by label.
        colour: one colour for all boxes (default: a colour per class).
        linestyle: ``"-"`` for ground truth, ``"--"`` for predictions by convention here.

    Raises:
        ValueError: ``boxes`` is not (K, 4), or labels/scores have another length.
    """
    from matplotlib.patches import Rectangle

    boxes = torch.as_tensor(boxes).detach().float().cpu().reshape(-1, 4) if len(boxes) else torch.zeros(0, 4)
    k = boxes.shape[0]
    for name, t in (("labels", labels), ("scores", scores)):
        if t is not None and len(t) != k:
            raise ValueError(f"{name} has {len(t)} entries for {k} boxes")
    for i in range(k):
        x1, y1, x2, y2 = boxes[i].tolist()
        lab = int(labels[i]) if labels is not None else None
        c = colour or (PALETTE[lab % len(PALETTE)] if lab is not None else PALETTE[0])
        ax.add_patch(
            Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=linewidth, linestyle=linestyle)
        )
        text = []
        if lab is not None:
            text.append(class_names[lab] if class_names is not None and 0 <= lab < len(class_names) else str(lab))
        if scores is not None:
            text.append(f"{float(scores[i]):.2f}")
        if text:
            ax.text(
                x1,
                y1,
                " ".join(text),
                fontsize=7,
                color="white",
                va="bottom",
                bbox=dict(facecolor=c, alpha=0.8, pad=1, edgecolor="none"),
            )


def overlay_mask(
    image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5, num_classes: int | None = None
) -> np.ndarray:
    """Blend a semantic mask (class per pixel) over an image.

    Args:
        image: (3, H, W) float in [0, 1].
        mask: (H, W) int64, 0 = background (left unpainted), c > 0 painted with ``PALETTE[c - 1]``.
        alpha: opacity of the colours.
        num_classes: unused except for validation (labels must be below it).

    Returns:
        (H, W, 3) float array in [0, 1].

    Raises:
        ValueError: the mask's size differs from the image's, or labels exceed ``num_classes``.
    """
    base = to_display(image)
    if base.ndim == 2:
        base = np.repeat(base[..., None], 3, axis=2)
    m = torch.as_tensor(mask).cpu().numpy().astype(np.int64)
    if m.shape != base.shape[:2]:
        raise ValueError(f"mask is {m.shape}, image is {base.shape[:2]}: they must match")
    if num_classes is not None and m.max(initial=0) >= num_classes:
        raise ValueError(f"mask has label {m.max()} but num_classes={num_classes}")
    colours = PALETTE[(np.maximum(m, 1) - 1) % len(PALETTE)]
    painted = m > 0
    out = base.copy()
    out[painted] = (1 - alpha) * base[painted] + alpha * colours[painted]
    return out


def show_sample(sample, ax=None, class_names: Sequence[str] | None = None, what: Sequence[str] = ("boxes", "caption")):
    """Draw a :class:`cvkit.data.ShapesSample` with its annotations.

    Args:
        sample: the sample (image, boxes, labels, masks, semantic, caption).
        ax: axis to draw on (``None``: a new 3x3-inch figure).
        what: any of ``"boxes"``, ``"masks"`` (instance outlines), ``"semantic"`` (colour overlay), ``"caption"``.

    Returns:
        the matplotlib axis.
    """
    import matplotlib.pyplot as plt

    from cvkit.data.shapes import SHAPE_CLASSES

    names = class_names or SHAPE_CLASSES
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    picture = overlay_mask(sample.image, sample.semantic) if "semantic" in what else to_display(sample.image)
    ax.imshow(picture)
    if "masks" in what:
        for i, m in enumerate(sample.masks):
            ax.contour(
                m.numpy().astype(float),
                levels=[0.5],
                colors=[PALETTE[int(sample.labels[i]) % len(PALETTE)]],
                linewidths=1.5,
            )
    if "boxes" in what:
        draw_boxes(ax, sample.boxes, sample.labels, class_names=names)
    if "caption" in what:
        ax.set_title(sample.caption, fontsize=8, wrap=True)
    ax.axis("off")
    return ax
