r"""Box encoding: a box as a correction (dx, dy, dw, dh) of a reference box (an anchor or a proposal).

R-CNN (Girshick et al., CVPR 2014, Appendix C) regresses, from a proposal P to a ground
truth box G (centres x, y, widths w, heights h):

.. math::
    t_x = (G_x - P_x) / P_w, \quad t_y = (G_y - P_y) / P_h, \quad
    t_w = \log(G_w / P_w), \quad t_h = \log(G_h / P_h)

Offsets relative to the reference's size make the targets scale-invariant; the log keeps
widths positive when decoding with :math:`\exp`. Fast/Faster R-CNN multiply the targets by
weights (10, 10, 5, 5 in the box head, 1 in the RPN) so they have roughly unit variance.
Decoding is the inverse; like torchvision, ``dw`` and ``dh`` are clipped at
:math:`\log(1000 / 16)` first so one bad prediction cannot overflow ``exp``.

Centres and sizes use ``w = x2 - x1`` (no "+1" pixel convention), as torchvision's
``BoxCoder`` does; the functions here equal its ``encode_single`` / ``decode_single``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from cvkit.detection.boxes import check_boxes

BBOX_XFORM_CLIP = math.log(1000.0 / 16)  # the largest dw, dh decoded (a box at most 62.5x its reference)


def _weights(weights: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    if len(weights) != 4 or min(weights) <= 0:
        raise ValueError(f"weights must be four positive numbers (wx, wy, ww, wh), got {tuple(weights)}")
    return like.new_tensor(list(weights))


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode_boxes(
    boxes: torch.Tensor, reference: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)
) -> torch.Tensor:
    """Encode target boxes as corrections of reference boxes (R-CNN, Appendix C).

    Args:
        boxes: (N, 4) float, the targets (ground truth), xyxy pixels.
        reference: (N, 4) float, the anchors or proposals they are matched to, xyxy pixels,
            with positive width and height.
        weights: (wx, wy, ww, wh) multiplying (dx, dy, dw, dh).

    Returns:
        (N, 4) float deltas (dx, dy, dw, dh). Equals
        ``torchvision.models.detection._utils.BoxCoder(weights).encode_single(boxes, reference)``.

    Raises:
        ValueError: shapes differ, a reference box has zero width or height, bad weights.
    """
    check_boxes(boxes, "boxes")
    check_boxes(reference, "reference")
    if boxes.shape != reference.shape:
        raise ValueError(
            f"boxes and reference must pair up one to one, got {tuple(boxes.shape)} and {tuple(reference.shape)}"
        )
    wx, wy, ww, wh = _weights(weights, boxes).unbind()
    px, py, pw, ph = _centre_size(reference)
    if reference.numel() and bool(((pw <= 0) | (ph <= 0)).any()):
        raise ValueError("every reference box needs positive width and height (a zero-size anchor cannot be scaled)")
    gx, gy, gw, gh = _centre_size(boxes)
    dx = wx * (gx - px) / pw
    dy = wy * (gy - py) / ph
    dw = ww * torch.log(gw / pw)
    dh = wh * torch.log(gh / ph)
    return torch.stack((dx, dy, dw, dh), dim=1)


def decode_boxes(
    deltas: torch.Tensor, reference: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)
) -> torch.Tensor:
    """Apply corrections to reference boxes: the inverse of :func:`encode_boxes`.

    Args:
        deltas: (N, 4) float (dx, dy, dw, dh).
        reference: (N, 4) float, xyxy pixels.
        weights: the weights used to encode.

    Returns:
        (N, 4) float, xyxy pixels. Equals torchvision's ``BoxCoder(weights).decode_single(deltas, reference)``
        (which clips dw, dh at ``log(1000 / 16)`` before ``exp``).

    Raises:
        ValueError: shapes differ or bad weights.
    """
    if not isinstance(deltas, torch.Tensor) or deltas.dim() != 2 or deltas.shape[1] != 4:
        raise ValueError(
            f"deltas must be an (N, 4) tensor of (dx, dy, dw, dh), got {getattr(deltas, 'shape', type(deltas).__name__)}"
        )
    check_boxes(reference, "reference")
    if deltas.shape[0] != reference.shape[0]:
        raise ValueError(f"got {deltas.shape[0]} deltas for {reference.shape[0]} reference boxes")
    reference = reference.to(deltas.dtype)
    wx, wy, ww, wh = _weights(weights, deltas).unbind()
    px, py, pw, ph = _centre_size(reference)
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=BBOX_XFORM_CLIP)
    dh = (deltas[:, 3] / wh).clamp(max=BBOX_XFORM_CLIP)
    cx, cy = px + dx * pw, py + dy * ph
    w, h = pw * torch.exp(dw), ph * torch.exp(dh)
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=1)
