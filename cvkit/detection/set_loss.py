r"""DETR's set prediction loss: match predictions to objects, then score the matched pairs.

DETR (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020) predicts a
fixed set of N boxes per image with no anchors and no NMS. Training first finds the optimal
one-to-one assignment :math:`\hat\sigma` of each image (:func:`cvkit.detection.matching.match_predictions`; for a
batch, :func:`cvkit.detection.matching.match_batch`), then computes the Hungarian loss (eq. 2)

.. math::
    \mathcal{L}_{\text{Hungarian}}(y, \hat y) = \sum_{i=1}^{N} \Big[ -\log \hat p_{\hat\sigma(i)}(c_i)
        + \mathbb{1}_{\{c_i \neq \varnothing\}} \mathcal{L}_{\text{box}}(b_i, \hat b_{\hat\sigma(i)}) \Big]

where the ground truth is padded with "no object" (:math:`\varnothing`) to N entries, and
:math:`\mathcal{L}_{\text{box}} = \lambda_{L1} \lVert b - \hat b \rVert_1 + \lambda_{\text{giou}}
(1 - \mathrm{GIoU}(b, \hat b))` (eq. 3) on boxes normalised by the image size. As in the
paper, the "no object" log-probability is down-weighted by 0.1 to balance the many
unmatched predictions, box terms are averaged over the number of objects in the batch,
and the loss is added after every decoder layer ("auxiliary decoding losses").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from cvkit.detection.boxes import box_convert, elementwise_box_iou, normalize_boxes
from cvkit.detection.matching import MatchCostWeights, match_batch


@dataclass(frozen=True)
class SetLossWeights:
    """Weights of DETR's loss terms (Carion et al. 2020, Sec. 4 and appendix A.2)."""

    cls: float = 1.0  # cross-entropy over the K classes and "no object"
    l1: float = 5.0  # L1 distance of normalised (cx, cy, w, h) boxes
    giou: float = 2.0  # 1 - GIoU
    no_object: float = 0.1  # relative weight of the "no object" class in the cross-entropy


def set_prediction_loss(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    targets: Sequence[Mapping[str, torch.Tensor]],
    image_size: Sequence[int],
    weights: SetLossWeights = SetLossWeights(),
    matches: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """The Hungarian loss of one decoder output for a batch.

    Args:
        logits: (B, N, K + 1) float class logits; index K is "no object".
        boxes: (B, N, 4) float predicted boxes, xyxy pixels.
        targets: B dicts with ``boxes`` (M_b, 4) float xyxy pixels and ``labels`` (M_b,) int64 in [0, K).
        image_size: ``(height, width)`` in pixels (normalises the L1 term).
        weights: :class:`SetLossWeights`.
        matches: precomputed ``(pred_idx, gt_idx)`` per image, on any device (default: computed here by
            :func:`~cvkit.detection.matching.match_batch` with DETR's matching cost, whose weights mirror ``weights``).

    Returns:
        dict of scalar tensors: ``loss`` (the weighted total), ``loss_cls``, ``loss_l1``, ``loss_giou``
        (unweighted, detached, for logging); the box terms are 0 when the batch has no objects.

    Raises:
        ValueError: inconsistent shapes, or a target or match list of the wrong length.
    """
    if logits.dim() != 3 or boxes.shape != (*logits.shape[:2], 4):
        raise ValueError(
            f"need logits (B, N, K + 1) and boxes (B, N, 4), got {tuple(logits.shape)} and {tuple(boxes.shape)}"
        )
    if len(targets) != logits.shape[0]:
        raise ValueError(f"got {len(targets)} targets for a batch of {logits.shape[0]} images")
    num_classes = logits.shape[-1] - 1
    if matches is None:
        cost = MatchCostWeights(weights.cls, weights.l1, weights.giou)
        matches = match_batch(logits.detach(), boxes.detach(), targets, image_size, cost)
    if len(matches) != len(targets):
        raise ValueError(f"got {len(matches)} matches for a batch of {len(targets)} images")

    # the matched pairs of the whole batch as three index vectors, built on the CPU and sent to the device at once
    offsets = [0]
    for t in targets:
        offsets.append(offsets[-1] + t["labels"].shape[0])
    batch_idx = torch.cat([torch.full_like(p.cpu(), b) for b, (p, _) in enumerate(matches)])  # (M,) image
    pred_idx = torch.cat([p.cpu() for p, _ in matches])  # (M,) its query
    gt_idx = torch.cat([g.cpu() + offsets[b] for b, (_, g) in enumerate(matches)])  # (M,) its object in the batch
    batch_idx, pred_idx, gt_idx = torch.stack([batch_idx, pred_idx, gt_idx]).to(logits.device, non_blocking=True)
    gt_labels = torch.cat([t["labels"] for t in targets]).to(logits.device)  # (sum M_b,)
    gt_boxes = torch.cat([t["boxes"] for t in targets]).to(boxes)  # (sum M_b, 4)

    # classification: matched queries learn their object's class, all others "no object"
    target_classes = torch.full(logits.shape[:2], num_classes, dtype=torch.int64, device=logits.device)  # (B, N)
    target_classes[batch_idx, pred_idx] = gt_labels[gt_idx]
    class_weight = torch.ones(num_classes + 1, device=logits.device, dtype=logits.dtype)
    class_weight[num_classes] = weights.no_object
    loss_cls = F.cross_entropy(logits.transpose(1, 2), target_classes, weight=class_weight)  # (B, K+1, N) vs (B, N)

    # boxes: only matched pairs, averaged over the objects in the batch
    pred = boxes[batch_idx, pred_idx]  # (M, 4)
    gt = gt_boxes[gt_idx]  # (M, 4)
    num_objects = max(gt.shape[0], 1)
    if gt.shape[0]:
        pred_c = box_convert(normalize_boxes(pred, image_size), "xyxy", "cxcywh")
        gt_c = box_convert(normalize_boxes(gt, image_size), "xyxy", "cxcywh")
        loss_l1 = (pred_c - gt_c).abs().sum() / num_objects
        loss_giou = (1 - elementwise_box_iou(pred, gt, generalized=True)).sum() / num_objects
    else:
        loss_l1 = loss_giou = boxes.sum() * 0.0  # keeps the graph (and gradients of zero) intact
    total = weights.cls * loss_cls + weights.l1 * loss_l1 + weights.giou * loss_giou
    return {"loss": total, "loss_cls": loss_cls.detach(), "loss_l1": loss_l1.detach(), "loss_giou": loss_giou.detach()}
