r"""COCO-style average precision: AP (the "mAP" of COCO), AP50 and AP75; and the recall of region proposals.

How the COCO benchmark (Lin et al., "Microsoft COCO", ECCV 2014; the ``pycocotools``
``COCOeval`` code) scores a detector, step by step:

1. **Match**, per image and class, at an IoU threshold t: go through the detections by
   decreasing score (at most ``max_detections`` per image and class); each takes the
   not-yet-matched ground-truth box it overlaps most, if that IoU is at least t. A matched
   detection is a true positive, an unmatched one a false positive (a duplicate of an
   already found object is a false positive: detectors must suppress duplicates).
2. **Precision-recall curve**, per class over all images: sort every detection by score;
   after the first n, precision = TP / n and recall = TP / (number of ground-truth boxes).
3. **Interpolate**: replace precision by its running maximum from the right (the best
   precision achievable at this recall or more), read it at the 101 recall levels
   0, 0.01, ..., 1 (0 beyond the largest recall reached), and average: that is the AP of
   the class at threshold t.
4. **Average** over classes that have ground truth: AP50 at t = 0.5 (PASCAL VOC's
   criterion), AP75 at t = 0.75, and AP (COCO's primary metric) averaged over
   t = 0.50, 0.55, ..., 0.95, which rewards precise localisation.

A class without any ground-truth box is left out of the means (its AP is -1, COCO's and
torchmetrics' mark for "undefined"); when no class has ground truth every result is -1.
This module reproduces ``torchmetrics.detection.MeanAveragePrecision`` with its
pycocotools backend (it is tested against it) for the "all areas" results. One caveat:
torchmetrics' default thresholds are float32 copies of COCO's (0.8 becomes 0.800000012), so
at an exact boundary (a recall of exactly 8/10) it can differ from pycocotools and from this
module; pass ``iou_thresholds`` and ``rec_thresholds`` to it as Python floats to compare.

:func:`proposal_recall` scores a proposal method before any classifier: the fraction of objects that some
candidate box overlaps at an IoU threshold (Hosang et al., "What makes for effective detection proposals?",
TPAMI 2016), the measure R-CNN's choice of proposals rests on.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np
import torch

from cvkit.detection.boxes import box_iou, check_boxes
from cvkit.segmentation.metrics import mask_iou

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # 0.50, 0.55, ..., 0.95 (exactly as pycocotools builds them)
COCO_RECALL_LEVELS = np.linspace(0.0, 1.0, 101)  # 0, 0.01, ..., 1


def _instance_masks(entry: Mapping[str, torch.Tensor], where: str) -> torch.Tensor:
    if "masks" not in entry:
        raise ValueError(f"{where} needs 'masks' for iou_type='segm'")
    m = entry["masks"]
    if m.dim() == 4:  # (D, 1, H, W) probabilities, as Mask R-CNN returns them
        m = m[:, 0]
    return (m > 0.5) if m.is_floating_point() else m.bool()


def _check_entries(entries: Sequence[Mapping[str, torch.Tensor]], what: str, needs_scores: bool) -> None:
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"{what} must be a list with one dict per image, got {type(entries).__name__}")
    for i, e in enumerate(entries):
        keys = ("boxes", "labels", "scores") if needs_scores else ("boxes", "labels")
        if not isinstance(e, Mapping) or any(k not in e for k in keys):
            raise ValueError(
                f"{what}[{i}] must be a dict with keys {keys}, got {sorted(e) if isinstance(e, Mapping) else type(e).__name__}"
            )
        check_boxes(e["boxes"], f"{what}[{i}]['boxes']")
        n = e["boxes"].shape[0]
        for k in keys[1:]:
            if not isinstance(e[k], torch.Tensor) or e[k].shape != (n,):
                raise ValueError(
                    f"{what}[{i}]['{k}'] must be a ({n},) tensor, one per box; got {getattr(e[k], 'shape', type(e[k]).__name__)}"
                )
        if e["labels"].is_floating_point():
            raise TypeError(f"{what}[{i}]['labels'] must be integer class ids, got {e['labels'].dtype}")


def _match_image(ious: np.ndarray, iou_thresholds: np.ndarray) -> np.ndarray:
    """Greedy COCO matching in one image and class; detections (rows of ``ious`` (D, G)) come sorted by score.

    Returns:
        (T, D) bool: detection d is a true positive at threshold t.
    """
    num_t, (num_d, num_g) = len(iou_thresholds), ious.shape
    matched = np.zeros((num_t, num_d), dtype=bool)
    if num_d == 0 or num_g == 0:
        return matched
    for t, threshold in enumerate(iou_thresholds):
        gt_taken = np.zeros(num_g, dtype=bool)
        for d in range(num_d):
            best, best_g = min(threshold, 1 - 1e-10), -1
            for g in range(num_g):  # the last box reaching the best IoU wins, as in pycocotools
                if gt_taken[g] or ious[d, g] < best:
                    continue
                best, best_g = ious[d, g], g
            if best_g >= 0:
                gt_taken[best_g] = True
                matched[t, d] = True
    return matched


def _interpolated_precision(tp: np.ndarray, num_gt: int) -> np.ndarray:
    """Precision at the 101 COCO recall levels for one class and threshold (steps 2 and 3)."""
    tp_sum = np.cumsum(tp).astype(float)
    fp_sum = np.cumsum(~tp).astype(float)
    recall = tp_sum / num_gt
    precision = tp_sum / (tp_sum + fp_sum + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # best precision at this recall or beyond
    idx = np.searchsorted(recall, COCO_RECALL_LEVELS, side="left")  # first point reaching each level
    out = np.zeros(len(COCO_RECALL_LEVELS))
    ok = idx < len(precision)
    out[ok] = precision[idx[ok]]
    return out


def mean_average_precision(
    predictions: Sequence[Mapping[str, torch.Tensor]],
    targets: Sequence[Mapping[str, torch.Tensor]],
    iou_thresholds: Sequence[float] | None = None,
    max_detections: int = 100,
    iou_type: Literal["bbox", "segm"] = "bbox",
) -> dict[str, torch.Tensor]:
    """COCO mAP over a set of images (see the module docstring for the algorithm).

    Args:
        predictions: one dict per image with ``boxes`` (D, 4) float xyxy pixels, ``scores`` (D,)
            float and ``labels`` (D,) int64 (the output format of torchvision detectors).
        targets: one dict per image with ``boxes`` (G, 4) float xyxy pixels and ``labels`` (G,) int64.
        iou_thresholds: IoU thresholds to average over (default COCO's 0.50:0.05:0.95).
        max_detections: detections kept per image and class, best first (COCO: 100).
        iou_type: ``"bbox"`` compares boxes; ``"segm"`` compares instance masks (``masks`` (D, H, W) bool,
            or (D, 1, H, W) probabilities thresholded at 0.5, in predictions and targets).

    Returns:
        dict of float tensors: ``map`` (AP averaged over thresholds and classes), ``map_50`` and
        ``map_75`` (-1 when 0.5 / 0.75 is not among the thresholds), ``map_per_class`` (K,) and
        ``classes`` (K,) int64 (every label seen in predictions or targets, sorted), ``precision``
        (T, 101, K): interpolated precision at each threshold and recall level (-1 for a class
        without ground truth). Keys and values match ``MeanAveragePrecision(class_metrics=True)``.

    Raises:
        TypeError, ValueError: lists of different lengths or malformed dicts (the message names the image).
    """
    _check_entries(predictions, "predictions", True)
    _check_entries(targets, "targets", False)
    if len(predictions) != len(targets):
        raise ValueError(
            f"got {len(predictions)} predictions for {len(targets)} images: give one dict per image in both"
        )
    if max_detections < 1:
        raise ValueError(f"max_detections must be >= 1, got {max_detections}")
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be one of 'bbox', 'segm', got {iou_type!r}")
    thresholds = COCO_IOU_THRESHOLDS if iou_thresholds is None else np.asarray(list(iou_thresholds), dtype=float)
    labels = [e["labels"].reshape(-1) for e in list(predictions) + list(targets)]
    classes = (
        torch.unique(torch.cat([lab.cpu().long() for lab in labels])) if labels else torch.zeros(0, dtype=torch.int64)
    )
    precision = -np.ones((len(thresholds), len(COCO_RECALL_LEVELS), len(classes)))

    for k, c in enumerate(classes.tolist()):
        scores, hits, num_gt = [], [], 0
        for i, (pred, target) in enumerate(zip(predictions, targets)):
            is_gt, keep = target["labels"] == c, pred["labels"] == c
            det_scores = pred["scores"][keep].detach().cpu().double().numpy()
            order = torch.as_tensor(
                np.argsort(-det_scores, kind="mergesort")[:max_detections], dtype=torch.long
            )  # best first, stable
            if iou_type == "bbox":
                det, gt = pred["boxes"][keep][order].detach().cpu(), target["boxes"][is_gt].detach().cpu()
                ious = box_iou(det.double(), gt.double())  # (D, G), float64 like pycocotools
            else:
                det = _instance_masks(pred, f"predictions[{i}]")[keep][order].cpu()
                gt = _instance_masks(target, f"targets[{i}]")[is_gt].cpu()
                ious = mask_iou(det, gt)
            hits.append(_match_image(ious.numpy(), thresholds))  # (T, D)
            scores.append(det_scores[order.numpy()])
            num_gt += int(is_gt.sum())
        if num_gt == 0:
            continue  # AP undefined for a class nobody drew: left out of the means
        all_scores = np.concatenate(scores)
        order = np.argsort(-all_scores, kind="mergesort")  # over all images; ties keep image order
        tp = np.concatenate(hits, axis=1)[:, order]  # (T, D_total)
        for t in range(len(thresholds)):
            precision[t, :, k] = _interpolated_precision(tp[t], num_gt)

    def mean_valid(p: np.ndarray) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else -1.0

    def at(threshold: float) -> float:
        hit = np.flatnonzero(np.isclose(thresholds, threshold))
        return mean_valid(precision[hit[0]]) if hit.size else -1.0

    per_class = [mean_valid(precision[:, :, k]) for k in range(len(classes))]
    return {
        "map": torch.tensor(mean_valid(precision), dtype=torch.float32),
        "map_50": torch.tensor(at(0.5), dtype=torch.float32),
        "map_75": torch.tensor(at(0.75), dtype=torch.float32),
        "map_per_class": torch.tensor(per_class, dtype=torch.float32),
        "classes": classes.to(torch.int64),
        "precision": torch.from_numpy(precision).float(),
    }


def proposal_recall(
    proposals: Sequence[torch.Tensor], gt_boxes: Sequence[torch.Tensor], iou_threshold: float = 0.5
) -> float:
    """Fraction of ground-truth boxes that at least one proposal overlaps with IoU >= ``iou_threshold``.

    Args:
        proposals: per image, (P_i, 4) float candidate boxes, ``xyxy`` pixels (P_i may be 0).
        gt_boxes: per image, (M_i, 4) float ground-truth boxes, ``xyxy`` pixels; as many images as ``proposals``.
        iou_threshold: in [0, 1].

    Returns:
        float in [0, 1] over all objects of all images (0 when there is no object).

    Raises:
        ValueError: the two lists differ in length, the threshold is outside [0, 1], or boxes are not (N, 4) ``xyxy``.
        TypeError: boxes that are not floating-point tensors.
    """
    if len(proposals) != len(gt_boxes):
        raise ValueError(f"proposals ({len(proposals)} images) and gt_boxes ({len(gt_boxes)} images) must be as many")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    hits = total = 0
    for i, (candidates, gt) in enumerate(zip(proposals, gt_boxes)):
        check_boxes(candidates, f"proposals[{i}]")
        check_boxes(gt, f"gt_boxes[{i}]")
        total += len(gt)
        if len(candidates) and len(gt):
            hits += int((box_iou(gt, candidates).max(dim=1).values >= iou_threshold).sum())  # (M,) best IoU per object
    return hits / total if total else 0.0
