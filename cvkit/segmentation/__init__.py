"""Semantic segmentation, one concept per module, each tested against its library twin (lecture 09).

==========================  ======================================================  ===================================================
module                      what                                                    library twin
==========================  ======================================================  ===================================================
:mod:`~.unpool`             nearest, bed-of-nails and max unpooling                 ``F.interpolate``, ``F.max_unpool2d``
:mod:`~.transposed`         transposed convolution, as C^T and by scatter-add       ``F.conv_transpose2d``
:mod:`~.metrics`            confusion matrix, per-class IoU, mIoU, Dice; mask IoU   ``torchmetrics`` ``MulticlassJaccardIndex``, ``DiceScore``
:mod:`~.colormap`           class colour maps (kit, PASCAL VOC)
:mod:`~.training`           the ``fit`` step, predictions and evaluation of segmenters
==========================  ======================================================  ===================================================

The models (FCN, U-Net, Mask R-CNN on shapes) are in :mod:`cvkit.models` (``create_model("unet")``).
"""

from cvkit.segmentation.colormap import colorize, label_colormap
from cvkit.segmentation.metrics import (
    SegmentationMeter,
    confusion_matrix,
    dice_from_confusion,
    dice_score,
    iou_from_confusion,
    mask_iou,
    mean_iou,
    paired_mask_iou,
    per_class_iou,
)
from cvkit.segmentation.training import evaluate_segmenter, predict_masks, segmentation_step
from cvkit.segmentation.transposed import (
    SEED_CT,
    SEED_KERNEL,
    bilinear_kernel,
    bilinear_upsample_args,
    conv_transpose2d,
    conv_transpose_via_matrix,
)
from cvkit.segmentation.unpool import (
    SEED_POOL_INPUT,
    SEED_UNPOOL_INPUT,
    bed_of_nails_unpool,
    max_unpool,
    nearest_unpool,
)

__all__ = [
    "SEED_CT",
    "SEED_KERNEL",
    "SEED_POOL_INPUT",
    "SEED_UNPOOL_INPUT",
    "SegmentationMeter",
    "bed_of_nails_unpool",
    "bilinear_kernel",
    "bilinear_upsample_args",
    "colorize",
    "confusion_matrix",
    "conv_transpose2d",
    "conv_transpose_via_matrix",
    "dice_from_confusion",
    "dice_score",
    "evaluate_segmenter",
    "iou_from_confusion",
    "label_colormap",
    "mask_iou",
    "max_unpool",
    "mean_iou",
    "nearest_unpool",
    "paired_mask_iou",
    "per_class_iou",
    "predict_masks",
    "segmentation_step",
]
