r"""Boxes: format conversion, area, IoU and generalized IoU.

The kit's box layout is ``xyxy`` in pixels: ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and
``y1 <= y2``, x to the right and y down, the same as ``torchvision.ops``. Other layouts
(``xywh`` as in COCO files, ``cxcywh`` as DETR predicts) are converted only through
:func:`box_convert`, and DETR's coordinates normalised to [0, 1] through
:func:`normalize_boxes` / :func:`denormalize_boxes`.

Intersection over union (Jaccard index) of boxes A and B:

.. math::  \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}

Generalized IoU (Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019,
Algorithm 1) subtracts the part of the smallest enclosing box C that neither box covers,
so it still has a gradient when the boxes do not overlap:

.. math::  \mathrm{GIoU}(A, B) = \mathrm{IoU}(A, B) - \frac{|C \setminus (A \cup B)|}{|C|} \in [-1, 1]

Each function here is tested against its twin in ``torchvision.ops``.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(boxes: object, name: str = "boxes", *, ordered: bool = True) -> torch.Tensor:
    """Validate a box tensor at a public boundary and return it.

    Args:
        boxes: the value to check; must be a floating (N, 4) tensor.
        name: what to call it in the error message.
        ordered: also require ``x1 <= x2`` and ``y1 <= y2`` (true for ``xyxy`` boxes).

    Returns:
        the same tensor.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: not of shape (N, 4), or (with ``ordered``) some box has x2 < x1 or y2 < y1.
    """
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, 4), got {type(boxes).__name__}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name} must be floating point (xyxy pixels), got {boxes.dtype}; convert with .float()")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4), got {tuple(boxes.shape)}")
    if ordered and boxes.numel() and bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
        bad = int(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).nonzero()[0])
        raise ValueError(
            f"{name}[{bad}] = {boxes[bad].tolist()} has x2 < x1 or y2 < y1; boxes must be xyxy "
            "(convert (x, y, w, h) or (cx, cy, w, h) boxes with box_convert)"
        )
    return boxes


def box_convert(boxes: torch.Tensor, in_fmt: BoxFormat, out_fmt: BoxFormat) -> torch.Tensor:
    """Convert boxes between ``"xyxy"``, ``"xywh"`` (top-left corner, size) and ``"cxcywh"`` (centre, size).

    Args:
        boxes: (N, 4) float tensor in ``in_fmt``.
        in_fmt, out_fmt: one of ``"xyxy"``, ``"xywh"``, ``"cxcywh"``.

    Returns:
        (N, 4) tensor in ``out_fmt``, same dtype and device. Same as ``torchvision.ops.box_convert``.

    Raises:
        ValueError: an unknown format, or boxes not of shape (N, 4).
        TypeError: boxes not a floating tensor.
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"box format must be one of {BOX_FORMATS}, got {fmt!r}")
    check_boxes(boxes, ordered=False)
    if in_fmt == out_fmt:
        return boxes.clone()
    a, b, c, d = boxes.unbind(-1)
    # first to xyxy ...
    if in_fmt == "xywh":
        a, b, c, d = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        a, b, c, d = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    # ... then to the requested format
    if out_fmt == "xywh":
        a, b, c, d = a, b, c - a, d - b
    elif out_fmt == "cxcywh":
        a, b, c, d = (a + c) / 2, (b + d) / 2, c - a, d - b
    return torch.stack((a, b, c, d), dim=-1)


def normalize_boxes(boxes: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
    """Divide ``xyxy`` pixel boxes by the image size, giving coordinates in [0, 1] (DETR's units).

    Args:
        boxes: (N, 4) float, xyxy pixels.
        image_size: ``(height, width)`` in pixels.

    Returns:
        (N, 4) float, xyxy as fractions of the width (x) and height (y).

    Raises:
        ValueError: ``image_size`` is not two positive numbers.
    """
    h, w = _size(image_size)
    return boxes / boxes.new_tensor([w, h, w, h])


def denormalize_boxes(boxes: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`normalize_boxes`: (N, 4) xyxy in [0, 1] to xyxy pixels of an image ``(height, width)``."""
    h, w = _size(image_size)
    return boxes * boxes.new_tensor([w, h, w, h])


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of ``xyxy`` boxes.

    Args:
        boxes: (N, 4) float, xyxy pixels.

    Returns:
        (N,) float, ``(x2 - x1) * (y2 - y1)`` in square pixels (0 for a degenerate box).
    """
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _intersection_union(boxes1: torch.Tensor, boxes2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairwise intersection and union areas, both (N, M)."""
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)  # (N, M, 2): no overlap gives 0, not a negative area
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter, union


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union of two sets of ``xyxy`` boxes.

    Args:
        boxes1: (N, 4) float, xyxy pixels.
        boxes2: (M, 4) float, xyxy pixels.

    Returns:
        (N, M) float in [0, 1]. Equals ``torchvision.ops.box_iou``, except that two boxes whose
        union has zero area (both degenerate, e.g. two identical points) get IoU 0 here where
        torchvision returns NaN (0 / 0). Empty inputs give an empty (N, M) matrix.

    Raises:
        TypeError, ValueError: see :func:`check_boxes`.
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    inter, union = _intersection_union(boxes1, boxes2)
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(union.dtype).tiny), torch.zeros_like(inter))


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    r"""Pairwise generalized IoU (Rezatofighi et al. 2019, Algorithm 1).

    :math:`\mathrm{GIoU} = \mathrm{IoU} - |C \setminus (A \cup B)| / |C|` with C the smallest
    box enclosing A and B.

    Args:
        boxes1: (N, 4) float, xyxy pixels.
        boxes2: (M, 4) float, xyxy pixels.

    Returns:
        (N, M) float in [-1, 1]. Equals ``torchvision.ops.generalized_box_iou`` wherever the
        enclosing box has positive area; where it has none (two identical degenerate boxes)
        the value is 0 here and NaN in torchvision.

    Raises:
        TypeError, ValueError: see :func:`check_boxes`.
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    inter, union = _intersection_union(boxes1, boxes2)
    tiny = torch.finfo(union.dtype).tiny
    iou = torch.where(union > 0, inter / union.clamp(min=tiny), torch.zeros_like(inter))
    top_left = torch.minimum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2) enclosing box C
    bottom_right = torch.maximum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)
    enclosing = wh[..., 0] * wh[..., 1]
    penalty = torch.where(enclosing > 0, (enclosing - union) / enclosing.clamp(min=tiny), torch.zeros_like(inter))
    return iou - penalty


def elementwise_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, generalized: bool = False) -> torch.Tensor:
    """IoU (or GIoU) of matched pairs: ``boxes1[i]`` with ``boxes2[i]``.

    The diagonal of :func:`box_iou` / :func:`generalized_box_iou` without building the
    (N, N) matrix; what a loss on matched boxes needs.

    Args:
        boxes1, boxes2: (N, 4) float, xyxy pixels.
        generalized: GIoU instead of IoU.

    Returns:
        (N,) float.

    Raises:
        ValueError: the two sets have different lengths.
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    if boxes1.shape != boxes2.shape:
        raise ValueError(
            f"elementwise IoU needs boxes of equal count, got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    tiny = torch.finfo(boxes1.dtype).tiny
    wh = (torch.minimum(boxes1[:, 2:], boxes2[:, 2:]) - torch.maximum(boxes1[:, :2], boxes2[:, :2])).clamp(
        min=0
    )  # (N, 2)
    inter = wh[:, 0] * wh[:, 1]
    union = box_area(boxes1) + box_area(boxes2) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=tiny), torch.zeros_like(inter))
    if not generalized:
        return iou
    wh = (torch.maximum(boxes1[:, 2:], boxes2[:, 2:]) - torch.minimum(boxes1[:, :2], boxes2[:, :2])).clamp(
        min=0
    )  # (N, 2)
    enclosing = wh[:, 0] * wh[:, 1]
    return iou - torch.where(enclosing > 0, (enclosing - union) / enclosing.clamp(min=tiny), torch.zeros_like(inter))


def generalized_box_iou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: Literal["none", "mean", "sum"] = "none"
) -> torch.Tensor:
    r"""The GIoU loss :math:`1 - \mathrm{GIoU}` of matched pairs (Rezatofighi et al. 2019, Algorithm 2).

    Args:
        boxes1: (N, 4) float, predicted xyxy boxes.
        boxes2: (N, 4) float, target xyxy boxes.
        reduction: ``"none"`` ((N,) losses), ``"mean"`` or ``"sum"``.

    Returns:
        (N,) or scalar float in [0, 2]. Matches ``torchvision.ops.generalized_box_iou_loss``.

    Raises:
        ValueError: unknown reduction or mismatched shapes.
    """
    loss = 1 - elementwise_box_iou(boxes1, boxes2, generalized=True)
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum() * 0.0
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be one of 'none', 'mean', 'sum', got {reduction!r}")


def clip_boxes(boxes: torch.Tensor, image_size: Sequence[int]) -> torch.Tensor:
    """Clip ``xyxy`` boxes to an image of ``(height, width)`` pixels (as ``torchvision.ops.clip_boxes_to_image``).

    Returns:
        (N, 4) float: x in [0, width], y in [0, height].
    """
    h, w = _size(image_size)
    x = boxes[:, 0::2].clamp(0, w)  # (N, 2): x1, x2
    y = boxes[:, 1::2].clamp(0, h)  # (N, 2): y1, y2
    return torch.stack((x[:, 0], y[:, 0], x[:, 1], y[:, 1]), dim=1)


def _size(image_size: Sequence[int]) -> tuple[float, float]:
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (height, width) in pixels, both positive; got {tuple(image_size)}")
    return float(image_size[0]), float(image_size[1])
