r"""Segmentation metrics: per-class IoU, mIoU, Dice and pixel accuracy from the confusion matrix; IoU of binary masks.

For class c, with TP, FP, FN counted over **all pixels of all images** (the PASCAL VOC and
Cityscapes convention: one confusion matrix for the whole evaluation set):

.. math::
    \mathrm{IoU}_c = \frac{TP_c}{TP_c + FP_c + FN_c}, \qquad
    \mathrm{Dice}_c = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c} = \frac{2\,\mathrm{IoU}_c}{1 + \mathrm{IoU}_c}

mIoU is the mean of :math:`\mathrm{IoU}_c` over classes. A class absent from both the
predictions and the ground truth has no defined IoU (0 / 0): it is NaN here and left out
of the mean. Pixel accuracy is easy to inflate (predicting only background on images that
are mostly background scores high): that is why segmentation reports mIoU.

Tested against ``torchmetrics.classification.MulticlassJaccardIndex`` and ``MulticlassF1Score``
(dataset-level, ``average=None``) and ``torchmetrics.segmentation.MeanIoU`` / ``DiceScore``
(which average per image; equal to these on a single image).

**Binary masks** (instances, SAM's candidates) are compared by :func:`mask_iou` (every mask of one set against every
mask of another, like ``box_iou``: COCO's ``segm`` matching) and :func:`paired_mask_iou` (each mask against its own
partner: a prediction against its target). Both follow one convention where the union is empty (two empty masks): IoU
0, as ``pycocotools.mask.iou``, torchmetrics' ``binary_jaccard_index`` and the kit's ``box_iou`` for zero-area boxes.
"""

from __future__ import annotations

from typing import Literal

import torch


def mask_iou(masks1: torch.Tensor, masks2: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of two sets of binary masks, every mask of the first against every mask of the second.

    What COCO's ``segm`` evaluation compares instead of boxes (``pycocotools.mask.iou``); the masks' analogue of
    ``box_iou``. For each mask against its own partner, use :func:`paired_mask_iou`.

    Args:
        masks1: (N, H, W) bool (or 0/1) masks.
        masks2: (M, H, W) bool (or 0/1) masks of the same size.

    Returns:
        (N, M) float64 in [0, 1]; 0 where both masks are empty (the union is empty).

    Raises:
        ValueError: not 3-D, or the masks' sizes differ.
    """
    if masks1.dim() != 3 or masks2.dim() != 3:
        raise ValueError(f"masks must be (N, H, W) and (M, H, W), got {tuple(masks1.shape)} and {tuple(masks2.shape)}")
    if masks1.shape[-2:] != masks2.shape[-2:]:
        raise ValueError(
            f"masks must have the same size, got {tuple(masks1.shape[-2:])} and {tuple(masks2.shape[-2:])}"
        )
    pixels = masks1.shape[-2] * masks1.shape[-1]
    a = masks1.reshape(len(masks1), pixels).bool().double()  # (N, H*W)
    b = masks2.reshape(len(masks2), pixels).bool().double()  # (M, H*W)
    inter = a @ b.T  # (N, M) pixels in both
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def paired_mask_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each mask with its partner, ``|pred AND target| / |pred OR target|``, over the last two axes.

    Args:
        pred: (..., H, W) bool masks, or float logits (positive = inside), e.g. SAM's (B, K, H, W) candidates.
        target: (..., H, W) bool (or 0/1) masks, broadcastable against ``pred`` (e.g. (B, 1, H, W) against (B, K, H, W)).

    Returns:
        (...) float32 in [0, 1], the broadcast leading shape; 0 where both masks are empty (as :func:`mask_iou`).

    Raises:
        ValueError: fewer than 2 axes, or the last two sizes differ.
    """
    if pred.dim() < 2 or target.dim() < 2 or pred.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"pred and target must be (..., H, W) masks of one size, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    p = pred if pred.dtype == torch.bool else pred > 0
    t = target.bool()
    inter = (p & t).flatten(-2).sum(-1).float()  # (...)
    union = (p | t).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(union))


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """Count (true class, predicted class) pairs over all pixels.

    Args:
        pred: (...) int64 predicted class per pixel (e.g. (N, H, W) from ``logits.argmax(1)``).
        target: same shape, int64 true class per pixel, in [0, K) or ``ignore_index``.
        num_classes: K, including background.
        ignore_index: a target value whose pixels are not counted (e.g. 255 for "void").

    Returns:
        (K, K) int64; entry [t, p] counts pixels of true class t predicted as p.

    Raises:
        TypeError: floating inputs (pass class indices, not logits).
        ValueError: shapes differ, or a value outside [0, K).
    """
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, torch.Tensor) or t.is_floating_point():
            raise TypeError(
                f"{name} must be an integer tensor of class indices (use logits.argmax(dim=1)), got {getattr(t, 'dtype', type(t).__name__)}"
            )
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, t in (("pred", pred), ("target", target)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"{name} has values outside [0, {num_classes}): min {int(t.min())}, max {int(t.max())}")
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """(K,) float IoU per class from a (K, K) confusion matrix; NaN for a class absent from both."""
    tp = cm.diag().double()
    fp, fn = cm.sum(0).double() - tp, cm.sum(1).double() - tp  # predicted as c but not c; c but predicted otherwise
    denom = tp + fp + fn
    return torch.where(denom > 0, tp / denom.clamp(min=1), torch.full_like(tp, float("nan"))).float()


def dice_from_confusion(cm: torch.Tensor) -> torch.Tensor:
    """(K,) float Dice (F1) per class from a (K, K) confusion matrix; NaN for a class absent from both."""
    tp = cm.diag().double()
    fp, fn = cm.sum(0).double() - tp, cm.sum(1).double() - tp
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.full_like(tp, float("nan"))).float()


def per_class_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """IoU of every class over all pixels.

    Args:
        pred, target: (...) int64 class indices, same shape.
        num_classes: K.
        ignore_index: target value not counted.

    Returns:
        (K,) float in [0, 1], NaN for a class in neither ``pred`` nor ``target``. Equals
        ``MulticlassJaccardIndex(K, average=None)`` where defined.
    """
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """mIoU: the mean of :func:`per_class_iou` over classes present in ``pred`` or ``target``.

    Returns:
        scalar float tensor in [0, 1] (NaN if nothing was counted).
    """
    return per_class_iou(pred, target, num_classes, ignore_index).nanmean()


def dice_score(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    average: Literal["macro", "none"] = "macro",
) -> torch.Tensor:
    """Dice coefficient (F1 score of pixels) per class, or its mean.

    Args:
        pred, target: (...) int64 class indices, same shape.
        num_classes: K.
        ignore_index: target value not counted.
        average: ``"macro"`` (mean over classes present in either) or ``"none"`` ((K,) per class).

    Returns:
        scalar or (K,) float in [0, 1]; per class equal to ``MulticlassF1Score(K, average=None)``.

    Raises:
        ValueError: unknown ``average``.
    """
    dice = dice_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))
    if average == "none":
        return dice
    if average == "macro":
        return dice.nanmean()
    raise ValueError(f"average must be one of 'macro', 'none', got {average!r}")


class SegmentationMeter:
    """Accumulates one confusion matrix over batches; reads IoU, mIoU, Dice and pixel accuracy off it.

    Example::

        meter = SegmentationMeter(num_classes=4)
        for images, masks in loader:
            meter.update(model(images).argmax(1), masks)
        meter.miou(), meter.iou()

    Args:
        num_classes: K, including background.
        ignore_index: target value not counted.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` and ``target`` (...) int64 class indices of the same shape."""
        self.cm += confusion_matrix(pred.detach().cpu(), target.detach().cpu(), self.num_classes, self.ignore_index)

    def iou(self) -> torch.Tensor:
        """(K,) float per-class IoU (NaN for classes never seen)."""
        return iou_from_confusion(self.cm)

    def miou(self) -> float:
        """Mean IoU over the classes seen."""
        return float(self.iou().nanmean())

    def dice(self) -> torch.Tensor:
        """(K,) float per-class Dice."""
        return dice_from_confusion(self.cm)

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels classified correctly."""
        total = int(self.cm.sum())
        return float(self.cm.diag().sum()) / total if total else float("nan")

    def __repr__(self) -> str:
        return f"SegmentationMeter(num_classes={self.num_classes}, pixels={int(self.cm.sum())}, mIoU={self.miou():.3f})"
