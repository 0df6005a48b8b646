r"""Which prediction learns from which ground-truth box: anchor matching and Hungarian matching.

**Anchor matching** (Faster R-CNN, Ren et al. 2015, Sec. 3.1.2): an anchor is positive for
the ground-truth box it overlaps most when that IoU is at least ``high`` (0.7 in the RPN),
negative (background) when its best IoU is below ``low`` (0.3), and ignored in between. So
that no ground-truth box is left without an anchor, the anchor(s) with the highest IoU for
each box are made positive too, however low that IoU ("low-quality matches"). The result
is encoded as in ``torchvision.models.detection._utils.Matcher`` (whose names these are): the matched box index,
:data:`BELOW_LOW_THRESHOLD` (-1) or :data:`BETWEEN_THRESHOLDS` (-2).

**Hungarian matching** (DETR, Carion et al., ECCV 2020, Sec. 3.1, eq. 1): a set predictor
outputs N predictions and the image has M <= N objects; the loss is computed after finding
the one-to-one assignment :math:`\hat\sigma` of predictions to objects with the lowest
total cost

.. math::
    \mathcal{L}_{\text{match}}(y_i, \hat y_{\sigma(i)}) =
        -\lambda_{\text{cls}}\,\hat p_{\sigma(i)}(c_i)
        + \lambda_{L1} \lVert b_i - \hat b_{\sigma(i)} \rVert_1
        - \lambda_{\text{giou}}\,\mathrm{GIoU}(b_i, \hat b_{\sigma(i)})

with DETR's weights :math:`\lambda_{\text{cls}} = 1, \lambda_{L1} = 5, \lambda_{\text{giou}} = 2`,
the L1 distance taken between (cx, cy, w, h) boxes normalised by the image size. The
assignment itself is the linear sum assignment problem, solved by
``scipy.optimize.linear_sum_assignment`` (the Hungarian algorithm's modern form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from cvkit.detection.boxes import box_convert, check_boxes, generalized_box_iou, normalize_boxes

BELOW_LOW_THRESHOLD = -1  # best IoU below the low threshold: trained as "no object"
BETWEEN_THRESHOLDS = -2  # best IoU between the thresholds: contributes no loss


def match_anchors(
    iou: torch.Tensor,
    high: float = 0.7,
    low: float = 0.3,
    allow_low_quality_matches: bool = True,
) -> torch.Tensor:
    """Assign each anchor (or proposal) a ground-truth box, background, or "ignore".

    Args:
        iou: (M, N) float, IoU of M ground-truth boxes with N anchors (``box_iou(gt, anchors)``).
        high: IoU at or above which an anchor is positive (RPN: 0.7; Fast R-CNN head: 0.5).
        low: IoU below which an anchor is background (RPN: 0.3; Fast R-CNN head: 0.5).
        allow_low_quality_matches: also make positive, for every ground-truth box, the anchor(s)
            with the highest IoU with it (ties included), matched to their own best box.

    Returns:
        (N,) int64: the matched ground-truth index in [0, M), :data:`BELOW_LOW_THRESHOLD` (-1) or
        :data:`BETWEEN_THRESHOLDS` (-2). Equals ``torchvision.models.detection._utils.Matcher(high, low,
        allow_low_quality_matches)(iou)``, except that with no ground-truth boxes (M = 0) every
        anchor is background here, where torchvision raises.

    Raises:
        ValueError: ``iou`` not 2-D, or ``low > high``.
    """
    if not isinstance(iou, torch.Tensor) or iou.dim() != 2:
        raise ValueError(
            f"iou must be an (M ground-truth, N anchors) matrix, got {getattr(iou, 'shape', type(iou).__name__)}"
        )
    if low > high:
        raise ValueError(f"need low <= high, got low={low}, high={high}")
    m, n = iou.shape
    if m == 0 or n == 0:
        return torch.full((n,), BELOW_LOW_THRESHOLD, dtype=torch.int64, device=iou.device)
    best_iou, matches = iou.max(dim=0)  # (N,) best box for each anchor
    best_box_for_anchor = matches.clone()
    matches[best_iou < low] = BELOW_LOW_THRESHOLD
    matches[(best_iou >= low) & (best_iou < high)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_for_box = iou.max(dim=1).values  # (M,) highest IoU each box reaches
        _, anchor_idx = torch.where(iou == best_for_box[:, None])  # every (box, anchor) pair reaching it, ties included
        matches[anchor_idx] = best_box_for_anchor[anchor_idx]
    return matches


@dataclass(frozen=True)
class MatchCostWeights:
    """Weights of DETR's matching cost (Carion et al. 2020, Sec. 4 "Training details")."""

    cls: float = 1.0  # lambda_cls: weight of -p(class)
    l1: float = 5.0  # lambda_L1: weight of the L1 distance of normalised (cx, cy, w, h) boxes
    giou: float = 2.0  # lambda_giou: weight of -GIoU


def matching_cost(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_boxes: torch.Tensor,
    image_size: Sequence[int],
    weights: MatchCostWeights = MatchCostWeights(),
) -> torch.Tensor:
    r"""DETR's pairwise matching cost between N predictions and M ground-truth objects.

    Args:
        logits: (N, K + 1) float class logits, the last class being "no object" (:math:`\varnothing`).
        pred_boxes: (N, 4) float, predicted boxes, xyxy pixels.
        gt_labels: (M,) int64 class indices in [0, K).
        gt_boxes: (M, 4) float, xyxy pixels.
        image_size: ``(height, width)`` used to normalise the boxes for the L1 term.
        weights: :class:`MatchCostWeights` (DETR's 1, 5, 2 by default).

    Returns:
        (N, M) float cost; row i, column j is the cost of assigning prediction i to object j.

    Raises:
        ValueError: inconsistent shapes or labels outside [0, K).
    """
    if logits.dim() != 2 or pred_boxes.shape != (logits.shape[0], 4):
        raise ValueError(
            f"need logits (N, K + 1) and pred_boxes (N, 4), got {tuple(logits.shape)} and {tuple(pred_boxes.shape)}"
        )
    check_boxes(pred_boxes, "pred_boxes")
    check_boxes(gt_boxes, "gt_boxes")
    if gt_labels.dim() != 1 or gt_labels.shape[0] != gt_boxes.shape[0] or gt_labels.is_floating_point():
        raise ValueError(
            f"gt_labels must be ({gt_boxes.shape[0]},) int64, got {tuple(gt_labels.shape)} {gt_labels.dtype}"
        )
    num_classes = logits.shape[1] - 1
    if gt_labels.numel() and (int(gt_labels.min()) < 0 or int(gt_labels.max()) >= num_classes):
        raise ValueError(
            f"gt_labels must be in [0, {num_classes}) (the last logit is 'no object'), got {gt_labels.tolist()}"
        )
    prob = logits.softmax(dim=-1)  # (N, K + 1)
    cost_cls = -prob[:, gt_labels]  # (N, M): DETR uses -p, not -log p, to match the scale of the box terms
    pred_c = box_convert(normalize_boxes(pred_boxes, image_size), "xyxy", "cxcywh")  # (N, 4)
    gt_c = box_convert(normalize_boxes(gt_boxes, image_size), "xyxy", "cxcywh")  # (M, 4)
    cost_l1 = torch.cdist(pred_c, gt_c, p=1)  # (N, M)
    cost_giou = -generalized_box_iou(pred_boxes, gt_boxes)  # (N, M)
    return weights.cls * cost_cls + weights.l1 * cost_l1 + weights.giou * cost_giou


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-to-one assignment with the lowest total cost (``scipy.optimize.linear_sum_assignment``).

    Args:
        cost: (N, M) float, N predictions by M ground-truth objects (any N, M >= 0).

    Returns:
        ``(pred_idx, gt_idx)``: two (min(N, M),) int64 tensors; prediction ``pred_idx[k]`` is
        assigned object ``gt_idx[k]``, sorted by ``pred_idx``. Unassigned predictions learn
        "no object".

    Raises:
        ValueError: ``cost`` not 2-D or not finite.
    """
    from scipy.optimize import linear_sum_assignment

    if not isinstance(cost, torch.Tensor) or cost.dim() != 2:
        raise ValueError(
            f"cost must be an (N predictions, M objects) matrix, got {getattr(cost, 'shape', type(cost).__name__)}"
        )
    if cost.numel() == 0:
        empty = torch.empty(0, dtype=torch.int64, device=cost.device)
        return empty, empty.clone()
    if not bool(torch.isfinite(cost).all()):
        raise ValueError("cost has NaN or inf entries; check the predicted boxes and logits")
    rows, cols = linear_sum_assignment(cost.detach().cpu().double().numpy())
    return (
        torch.as_tensor(rows, dtype=torch.int64, device=cost.device),
        torch.as_tensor(cols, dtype=torch.int64, device=cost.device),
    )


def match_predictions(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_boxes: torch.Tensor,
    image_size: Sequence[int],
    weights: MatchCostWeights = MatchCostWeights(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """DETR's bipartite matching for one image: :func:`matching_cost` then :func:`hungarian_match`.

    Returns:
        ``(pred_idx, gt_idx)`` int64 tensors of length min(N, M).
    """
    with torch.no_grad():
        return hungarian_match(matching_cost(logits, pred_boxes, gt_labels, gt_boxes, image_size, weights))


def match_batch(
    logits: torch.Tensor,
    pred_boxes: torch.Tensor,
    targets: Sequence[Mapping[str, torch.Tensor]],
    image_size: Sequence[int],
    weights: MatchCostWeights = MatchCostWeights(),
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """DETR's bipartite matching for every image of a batch, with one copy to the CPU instead of one per image.

    The result is :func:`match_predictions` applied image by image. The work is arranged as in DETR's reference
    ``HungarianMatcher``: one :func:`matching_cost` of all B x N predictions against all objects of the batch, one
    copy of that matrix to the CPU, then :func:`hungarian_match` on each image's own block (its N rows and its
    objects' columns). On a GPU every copy to the CPU waits for the queued work to finish, so matching image by image
    stalls the GPU B times per decoder layer; stack the decoder layers into the batch to match them all in one call.

    Args:
        logits: (B, N, K + 1) float class logits; index K is "no object".
        pred_boxes: (B, N, 4) float predicted boxes, xyxy pixels.
        targets: B dicts with ``boxes`` (M_b, 4) float xyxy pixels and ``labels`` (M_b,) int64 in [0, K).
        image_size: ``(height, width)`` in pixels (normalises the L1 term).
        weights: :class:`MatchCostWeights` (DETR's 1, 5, 2 by default).

    Returns:
        B pairs ``(pred_idx, gt_idx)`` of (min(N, M_b),) int64 tensors on the CPU, as :func:`hungarian_match` gives
        them for image b.

    Raises:
        ValueError: inconsistent shapes, a target list of the wrong length, labels outside [0, K), unordered boxes,
            or a cost with NaN or inf entries.
    """
    if logits.dim() != 3 or pred_boxes.shape != (*logits.shape[:2], 4):
        raise ValueError(
            f"need logits (B, N, K + 1) and pred_boxes (B, N, 4), got {tuple(logits.shape)} and "
            f"{tuple(pred_boxes.shape)}"
        )
    if len(targets) != logits.shape[0]:
        raise ValueError(f"got {len(targets)} targets for a batch of {logits.shape[0]} images")
    batch, queries = logits.shape[:2]
    with torch.no_grad():
        labels = torch.cat([t["labels"] for t in targets]).to(logits.device)  # (M,) all objects of the batch
        boxes = torch.cat([t["boxes"] for t in targets]).to(pred_boxes)  # (M, 4)
        cost = matching_cost(logits.flatten(0, 1), pred_boxes.flatten(0, 1), labels, boxes, image_size, weights)
        cost = cost.view(batch, queries, labels.shape[0]).cpu()  # (B, N, M): the one copy to the CPU
    sizes = [t["boxes"].shape[0] for t in targets]
    return [hungarian_match(block[b]) for b, block in enumerate(cost.split(sizes, dim=-1))]
