"""Non-maximum suppression: keep the best box of every cluster of overlapping detections.

A detector fires many boxes around each object (neighbouring sliding windows, anchors or
proposals). Greedy NMS, as used since the deformable-parts-model detectors and in R-CNN
(Girshick et al. 2014, Sec. 2.2), keeps the highest-scoring box, drops every remaining box
that overlaps it with IoU above a threshold, and repeats on what is left.

:func:`batched_nms` runs NMS per class (or per image) at once by shifting each group's
boxes so far apart that boxes of different groups can never overlap, the same trick as
``torchvision.ops.batched_nms``.
"""

from __future__ import annotations

import torch

from cvkit.detection.boxes import box_iou, check_boxes


def _check_scores(boxes: torch.Tensor, scores: object, iou_threshold: float) -> torch.Tensor:
    check_boxes(boxes)
    if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f"scores must be a ({boxes.shape[0]},) tensor, one score per box; got {got}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    return scores


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    Args:
        boxes: (N, 4) float, xyxy pixels.
        scores: (N,) float, higher is better.
        iou_threshold: drop a box whose IoU with an already kept box is **greater than** this (0 to 1).

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score; boxes with equal scores keep
        their input order. Equals ``torchvision.ops.nms`` (empty input gives an empty result).

    Raises:
        TypeError, ValueError: malformed boxes, scores of another length, threshold outside [0, 1].
    """
    _check_scores(boxes, scores, iou_threshold)
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,) best first; ties by index
    iou = box_iou(boxes[order], boxes[order])  # (N, N), rows and columns in score order
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold  # everything that overlaps the kept box too much
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each group (class or image) independently; boxes of different groups never suppress each other.

    Args:
        boxes: (N, 4) float, xyxy pixels.
        scores: (N,) float.
        groups: (N,) int64 group of each box (e.g. the predicted class).
        iou_threshold: as in :func:`nms`.

    Returns:
        (K,) int64 indices of the kept boxes, by decreasing score. Equals ``torchvision.ops.batched_nms``.

    Raises:
        TypeError, ValueError: as :func:`nms`, or ``groups`` not an (N,) integer tensor.
    """
    _check_scores(boxes, scores, iou_threshold)
    if not isinstance(groups, torch.Tensor) or groups.shape != scores.shape or groups.is_floating_point():
        got = (tuple(groups.shape), groups.dtype) if isinstance(groups, torch.Tensor) else type(groups).__name__
        raise ValueError(f"groups must be an ({scores.shape[0]},) integer tensor, got {got}")
    if boxes.shape[0] == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    # shift each group by a multiple of (largest coordinate + 1): groups end up disjoint
    offsets = groups.to(boxes) * (boxes.max() + 1)  # (N,)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
