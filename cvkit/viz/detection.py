"""Pictures for object detection (lecture 08): IoU, anchors, matches, NMS, proposals, RoI grids, detections, DETR matches, PR curves.

Conventions: boxes are ``xyxy`` pixels; ground truth is drawn with solid lines, predictions
dashed; a class keeps its colour ``PALETTE[label]`` everywhere (as in :func:`cvkit.viz.draw_boxes`).
Every function draws on ``ax`` when given (and returns it) or makes and returns a new Figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.annotations import draw_boxes
from cvkit.viz.images import to_display


# bright colours that stand out on the shapes and photos: one per ground-truth object in match pictures
MATCH_COLOURS = ("yellow", "cyan", "magenta", "lime", "orange", "white")


def _axes(ax, figsize=(3.2, 3.2)):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _rect(ax, box, **style):
    from matplotlib.patches import Rectangle

    x1, y1, x2, y2 = [float(v) for v in box]
    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, **{"fill": False, **style}))


def _show(ax, image, title=None):
    ax.imshow(to_display(image))
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_iou(box_a: Sequence[float], box_b: Sequence[float], ax=None, extent: float | None = None):
    """Two boxes, their intersection (filled), union and smallest enclosing box C, titled with IoU and GIoU.

    Args:
        box_a, box_b: ``(x1, y1, x2, y2)`` pixels.
        ax: axis to draw on (default: a new figure).
        extent: size of the square canvas (default: fits both boxes).

    Returns:
        the matplotlib Figure.
    """
    from matplotlib.patches import Rectangle

    from cvkit.detection.boxes import box_iou, generalized_box_iou

    a, b = torch.tensor([list(map(float, box_a))]), torch.tensor([list(map(float, box_b))])
    iou, giou = float(box_iou(a, b)), float(generalized_box_iou(a, b))
    fig, ax = _axes(ax)
    c = torch.cat([torch.minimum(a[0, :2], b[0, :2]), torch.maximum(a[0, 2:], b[0, 2:])])
    _rect(ax, c, edgecolor="0.5", linestyle=":", linewidth=1.2, label="enclosing box C")
    _rect(ax, a[0], edgecolor=PALETTE[0], linewidth=2, label="A")
    _rect(ax, b[0], edgecolor=PALETTE[1], linewidth=2, label="B")
    lo, hi = torch.maximum(a[0, :2], b[0, :2]), torch.minimum(a[0, 2:], b[0, 2:])
    if bool((hi > lo).all()):
        ax.add_patch(Rectangle(lo.tolist(), *(hi - lo).tolist(), facecolor=PALETTE[2], alpha=0.5, label="A ∩ B"))
    top = float(c.max()) * 1.1 if extent is None else extent
    ax.set_xlim(min(0, float(c[0])) - 1, top)
    ax.set_ylim(top, min(0, float(c[1])) - 1)  # image coordinates: y grows downwards
    ax.set_aspect("equal")
    ax.set_title(f"IoU {iou:.2f}   GIoU {giou:.2f}", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    return fig


def plot_detections(
    image: torch.Tensor,
    target: Mapping[str, torch.Tensor] | None = None,
    prediction: Mapping[str, torch.Tensor] | None = None,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    label_offset: int = 0,
    ax=None,
    title: str | None = None,
):
    """Ground truth (solid) and predictions (dashed, with scores) on one image.

    Args:
        image: (3, H, W) float in [0, 1].
        target: dict with ``boxes`` (K, 4) xyxy pixels and ``labels`` (K,) int64.
        prediction: dict with ``boxes``, ``labels`` and ``scores`` (a detector's output).
        class_names: names of the classes (indexed by ``label - label_offset``).
        score_threshold: predictions scoring below it are not drawn.
        label_offset: subtracted from labels before looking up names and colours (1 for
            torchvision detectors, whose label 0 is background).
        ax: axis to draw on.
        title: axis title.

    Returns:
        the axis.
    """
    _, ax = _axes(ax)
    _show(ax, image, title)
    if target is not None:
        draw_boxes(ax, target["boxes"], target["labels"] - label_offset, class_names=class_names, linewidth=1.2)
    if prediction is not None:
        keep = prediction["scores"] >= score_threshold
        draw_boxes(
            ax,
            prediction["boxes"][keep],
            prediction["labels"][keep] - label_offset,
            prediction["scores"][keep],
            class_names=class_names,
            linestyle="--",
            linewidth=1.5,
        )
    return ax


def plot_detection_grid(
    images: torch.Tensor,
    targets: Sequence[Mapping[str, torch.Tensor]],
    predictions: Sequence[Mapping[str, torch.Tensor]] | None = None,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    label_offset: int = 0,
    ncols: int = 4,
    size: float = 2.6,
    suptitle: str | None = None,
):
    """:func:`plot_detections` for a batch of images in a grid; returns the Figure."""
    import matplotlib.pyplot as plt

    n = len(targets)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            plot_detections(
                images[i],
                targets[i],
                predictions[i] if predictions is not None else None,
                class_names,
                score_threshold,
                label_offset,
                ax=ax,
            )
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_anchors(
    image: torch.Tensor,
    stride: int,
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    cell: tuple[int, int] | None = None,
    ax=None,
    title: str | None = None,
):
    """Anchors on a feature-map grid over an image: the cell grid, every cell's centre, and the K anchors of one cell.

    Args:
        image: (3, H, W) float in [0, 1].
        stride: feature-map stride in pixels (cell size).
        sizes, aspect_ratios: anchor sizes (pixels) and ratios (height / width).
        cell: ``(row, col)`` whose anchors are drawn (default: the centre cell).
        ax: axis to draw on.
        title: axis title (default: a summary with K and the anchor count).

    Returns:
        the Figure.
    """
    from cvkit.detection.anchors import grid_anchors

    fig, ax = _axes(ax, (3.6, 3.6))
    h, w = image.shape[-2:]
    rows, cols = h // stride, w // stride
    row, col = cell if cell is not None else (rows // 2, cols // 2)
    _show(ax, image)
    for x in range(0, cols * stride + 1, stride):
        ax.axvline(x - 0.5, color="white", linewidth=0.4, alpha=0.6)
    for y in range(0, rows * stride + 1, stride):
        ax.axhline(y - 0.5, color="white", linewidth=0.4, alpha=0.6)
    # anchors centred in their cells (offset stride / 2) for the picture
    anchors = grid_anchors((rows, cols), stride, sizes, aspect_ratios, offset=stride / 2)  # (rows*cols*K, 4)
    k = len(sizes) * len(aspect_ratios)
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2)[::k]  # (rows*cols, 2)
    ax.scatter(centres[:, 0] - 0.5, centres[:, 1] - 0.5, s=4, color="white", alpha=0.8)
    start = (row * cols + col) * k
    for j, box in enumerate(anchors[start : start + k]):
        ratio_i, size_i = divmod(j, len(sizes))  # ratio-major order
        _rect(
            ax,
            box - 0.5,
            edgecolor=PALETTE[ratio_i % len(PALETTE)],
            linewidth=1.4,
            linestyle=["-", "--", ":"][size_i % 3],
        )
    _rect(
        ax,
        torch.tensor([col * stride, row * stride, (col + 1) * stride, (row + 1) * stride]) - 0.5,
        facecolor="yellow",
        alpha=0.35,
        fill=True,
    )
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(title or f"stride {stride}: {rows}x{cols} cells x K={k} = {len(anchors)} anchors", fontsize=8)
    return fig


def plot_anchor_matches(
    image: torch.Tensor,
    anchors: torch.Tensor,
    gt_boxes: torch.Tensor,
    matches: torch.Tensor,
    ax=None,
    title: str | None = None,
    max_negatives: int = 15,
):
    """Which anchors are positive (dashed, in the colour of their ground-truth box), ignored (light dotted) or background (dark, a sample).

    Args:
        image: (3, H, W) float.
        anchors: (N, 4) xyxy pixels.
        gt_boxes: (M, 4) xyxy pixels.
        matches: (N,) int64 from :func:`cvkit.detection.match_anchors` (box index, -1 background, -2 ignore).
        ax: axis to draw on.
        title: axis title (default: the counts).
        max_negatives: at most this many background anchors are drawn (faintly; there are thousands).

    Returns:
        the Figure.
    """
    fig, ax = _axes(ax, (3.6, 3.6))
    _show(ax, image)
    negatives = torch.where(matches == -1)[0]
    for i in negatives[torch.randperm(len(negatives), generator=torch.Generator().manual_seed(0))[:max_negatives]]:
        _rect(ax, anchors[i], edgecolor="0.2", linewidth=0.4, alpha=0.5)
    for i in torch.where(matches == -2)[0]:
        _rect(ax, anchors[i], edgecolor="0.85", linewidth=0.6, linestyle=":")
    for j, box in enumerate(gt_boxes):
        _rect(ax, box, edgecolor="black", linewidth=3.5)
        _rect(ax, box, edgecolor=MATCH_COLOURS[j % len(MATCH_COLOURS)], linewidth=2)
    for i in torch.where(matches >= 0)[0]:
        _rect(
            ax, anchors[i], edgecolor=MATCH_COLOURS[int(matches[i]) % len(MATCH_COLOURS)], linewidth=1.0, linestyle="--"
        )
    h, w = image.shape[-2:]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    counts = f"{int((matches >= 0).sum())} positive, {int((matches == -2).sum())} ignored, {len(negatives)} background"
    ax.set_title(title or counts, fontsize=8)
    return fig


def plot_nms(
    image: torch.Tensor,
    boxes: torch.Tensor,
    scores: torch.Tensor,
    keep: torch.Tensor,
    labels: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
    axes=None,
):
    """Detections before and after non-maximum suppression, side by side.

    Args:
        image: (3, H, W) float.
        boxes: (N, 4) xyxy pixels; scores: (N,) float; keep: (K,) int64 indices kept by NMS.
        labels: (N,) int64 class per box (colour); default one colour.
        class_names: names for the labels.
        axes: two axes to draw on.

    Returns:
        the Figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    else:
        fig = axes[0].figure
    order = scores.argsort()  # draw the weak ones first, the strong on top
    _show(axes[0], image, f"before NMS: {len(boxes)} boxes")
    for i in order:
        c = PALETTE[int(labels[i]) % len(PALETTE)] if labels is not None else "yellow"
        _rect(
            axes[0],
            boxes[i],
            edgecolor=c,
            linewidth=0.8,
            alpha=float(0.25 + 0.75 * scores[i] / scores.max().clamp(min=1e-9)),
        )
    _show(axes[1], image, f"after NMS: {len(keep)} boxes")
    draw_boxes(
        axes[1],
        boxes[keep],
        labels[keep] if labels is not None else None,
        scores[keep],
        class_names=class_names,
        colour=None if labels is not None else "yellow",
        linestyle="--",
    )
    fig.tight_layout()
    return fig


def plot_proposals(
    image: torch.Tensor,
    proposals: torch.Tensor,
    scores: torch.Tensor | None = None,
    top_k: int = 30,
    ax=None,
    title: str | None = None,
):
    """Region proposals (selective search, an RPN): the ``top_k`` first, brighter when scored higher.

    Args:
        image: (3, H, W) float.
        proposals: (P, 4) xyxy pixels, best first when ``scores`` is None (as an RPN returns them).
        scores: (P,) objectness, used for the colour (viridis) when given.
        top_k: how many to draw.
        ax: axis; title: axis title.

    Returns:
        the Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = _axes(ax)
    _show(ax, image, title or f"top {min(top_k, len(proposals))} of {len(proposals)} proposals")
    if scores is not None:
        order = scores.argsort(descending=True)[:top_k]
        values = scores[order]
        norm = (values - values.min()) / (values.max() - values.min()).clamp(min=1e-9)
    else:
        order = torch.arange(min(top_k, len(proposals)))
        norm = 1 - order.float() / max(len(order) - 1, 1)
    cmap = plt.get_cmap("viridis")
    for i, v in zip(order.flip(0), norm.flip(0)):  # best drawn last, on top
        _rect(ax, proposals[i], edgecolor=cmap(float(v)), linewidth=0.6 + 1.2 * float(v))
    return fig


def plot_roi_bins(
    image: torch.Tensor,
    box: Sequence[float],
    stride: int,
    output_size: int = 2,
    mode: str = "align",
    sampling_ratio: int = 2,
    ax=None,
):
    """How RoI pooling and RoIAlign read a region off a stride-``stride`` feature map.

    ``mode="pool"`` snaps the box to whole feature cells and splits it into ``output_size`` x
    ``output_size`` integer bins (Fast R-CNN); ``mode="align"`` keeps the exact box and shows the
    bilinear sampling points of every bin (Mask R-CNN, ``aligned=True``).

    Returns:
        the Figure.

    Raises:
        ValueError: unknown mode.
    """
    import math

    if mode not in ("pool", "align"):
        raise ValueError(f"mode must be one of 'pool', 'align', got {mode!r}")
    fig, ax = _axes(ax, (3.4, 3.4))
    h, w = image.shape[-2:]
    _show(ax, image, "RoI pooling: snapped to cells" if mode == "pool" else "RoIAlign: exact box, bilinear samples")
    for x in range(0, w + 1, stride):
        ax.axvline(x - 0.5, color="white", linewidth=0.5, alpha=0.7)
    for y in range(0, h + 1, stride):
        ax.axhline(y - 0.5, color="white", linewidth=0.5, alpha=0.7)
    x1, y1, x2, y2 = [float(v) for v in box]
    if mode == "pool":
        # torchvision's rounding: start and end cells rounded, end inclusive
        cx1, cy1 = round(x1 / stride), round(y1 / stride)
        cx2, cy2 = round(x2 / stride), round(y2 / stride)
        rw, rh = max(cx2 - cx1 + 1, 1), max(cy2 - cy1 + 1, 1)
        for i in range(output_size):
            for j in range(output_size):
                ys = (math.floor(i * rh / output_size) + cy1, math.ceil((i + 1) * rh / output_size) + cy1)
                xs = (math.floor(j * rw / output_size) + cx1, math.ceil((j + 1) * rw / output_size) + cx1)
                _rect(
                    ax,
                    torch.tensor([xs[0], ys[0], xs[1], ys[1]], dtype=torch.float32) * stride - 0.5,
                    edgecolor="cyan",
                    linewidth=1.5,
                    linestyle="--",
                )
    else:
        bw, bh = (x2 - x1) / output_size, (y2 - y1) / output_size
        for i in range(output_size):
            for j in range(output_size):
                _rect(
                    ax,
                    torch.tensor([x1 + j * bw, y1 + i * bh, x1 + (j + 1) * bw, y1 + (i + 1) * bh]) - 0.5,
                    edgecolor="cyan",
                    linewidth=1,
                    linestyle="--",
                )
                for a in range(sampling_ratio):
                    for b in range(sampling_ratio):
                        ax.plot(
                            x1 + (j + (b + 0.5) / sampling_ratio) * bw - 0.5,
                            y1 + (i + (a + 0.5) / sampling_ratio) * bh - 0.5,
                            "o",
                            color="yellow",
                            markersize=3,
                            markeredgecolor="black",
                            markeredgewidth=0.5,
                        )
    _rect(ax, torch.tensor([x1, y1, x2, y2]) - 0.5, edgecolor="black", linewidth=3)
    _rect(ax, torch.tensor([x1, y1, x2, y2]) - 0.5, edgecolor="orange", linewidth=1.5)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return fig


def plot_detr_matches(
    image: torch.Tensor,
    pred_boxes: torch.Tensor,
    gt_boxes: torch.Tensor,
    pred_idx: torch.Tensor,
    gt_idx: torch.Tensor,
    scores: torch.Tensor | None = None,
    ax=None,
    title: str | None = None,
):
    """DETR's bipartite matching: each object (solid) joined to the query (dashed, numbered) assigned to it.

    Unmatched queries, which learn "no object", are drawn faint and dotted.

    Args:
        image: (3, H, W) float.
        pred_boxes: (N, 4) every query's box, xyxy pixels.
        gt_boxes: (M, 4) xyxy pixels.
        pred_idx, gt_idx: the matching, from :func:`cvkit.detection.match_predictions`.
        scores: (N,) object probability per query (written next to matched queries).
        ax: axis; title: axis title.

    Returns:
        the Figure.
    """
    fig, ax = _axes(ax, (3.6, 3.6))
    _show(ax, image, title or f"{len(pred_boxes)} queries, {len(gt_boxes)} objects")
    matched = set(pred_idx.tolist())
    for q in range(len(pred_boxes)):
        if q not in matched:
            _rect(ax, pred_boxes[q], edgecolor="0.8", linewidth=0.6, linestyle=":")
    for q, g in zip(pred_idx.tolist(), gt_idx.tolist()):
        colour = MATCH_COLOURS[g % len(MATCH_COLOURS)]
        _rect(ax, gt_boxes[g], edgecolor="black", linewidth=3.5)
        _rect(ax, gt_boxes[g], edgecolor=colour, linewidth=2.2)
        _rect(ax, pred_boxes[q], edgecolor=colour, linewidth=1.4, linestyle="--")
        pc = (pred_boxes[q, :2] + pred_boxes[q, 2:]) / 2
        gc = (gt_boxes[g, :2] + gt_boxes[g, 2:]) / 2
        ax.plot([float(pc[0]), float(gc[0])], [float(pc[1]), float(gc[1])], color=colour, linewidth=1)
        label = f"q{q}" + (f" {float(scores[q]):.2f}" if scores is not None else "")
        ax.text(
            float(pred_boxes[q, 0]),
            float(pred_boxes[q, 1]),
            label,
            fontsize=6,
            color="black",
            va="bottom",
            bbox=dict(facecolor=colour, alpha=0.8, pad=1, edgecolor="none"),
        )
    h, w = image.shape[-2:]
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return fig


def plot_precision_recall(
    result: Mapping[str, torch.Tensor],
    class_names: Sequence[str] | None = None,
    iou_thresholds: Sequence[float] = (0.5, 0.75),
    label_offset: int = 0,
    ax=None,
):
    """Interpolated precision-recall curves from :func:`cvkit.detection.mean_average_precision`, per class, at some IoU thresholds.

    Args:
        result: its output (``precision`` (T, 101, K), ``classes`` (K,)).
        class_names: names indexed by class id.
        iou_thresholds: which thresholds to draw (solid for the first, dashed for the next).
        label_offset: subtracted from class ids for names and colours (1 for torchvision detectors).
        ax: axis to draw on.

    Returns:
        the Figure.
    """
    from cvkit.detection.metrics import COCO_IOU_THRESHOLDS, COCO_RECALL_LEVELS

    fig, ax = _axes(ax, (4.2, 3.2))
    precision = result["precision"].numpy()
    for style, t in zip(["-", "--", ":"], iou_thresholds):
        ti = int(np.argmin(np.abs(COCO_IOU_THRESHOLDS - t)))
        for k, c in enumerate(result["classes"].tolist()):
            p = precision[ti, :, k]
            if (p < 0).all():
                continue
            c -= label_offset
            name = class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)
            ax.plot(
                COCO_RECALL_LEVELS,
                p,
                style,
                color=PALETTE[c % len(PALETTE)],
                label=f"{name} @IoU {t:.2f}: AP {p.mean():.2f}",
            )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6)
    return fig
