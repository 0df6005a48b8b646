"""torchvision's Faster R-CNN and Mask R-CNN, sized for small images and trained from scratch.

These are the real torchvision detectors (``torchvision.models.detection.FasterRCNN`` and
``MaskRCNN``: its transform, region proposal network, RoIAlign box head, losses and
post-processing), with a small CNN backbone instead of a ResNet-50-FPN and settings for
64-pixel images, so they train on synthetic shapes in seconds on a CPU and minutes to good
AP on a GPU. No pretrained weights are used (``weights=None`` throughout); for the
COCO-pretrained models on real photos, see :func:`cvkit.models.pretrained.try_pretrained`.

What each part does (Ren et al. 2015; He et al. 2017):

* backbone: image (B, 3, H, W) to one stride-``2**len(widths)`` feature map;
* RPN: at every feature cell, K anchors (sizes x aspect ratios, :mod:`cvkit.detection.anchors`)
  get an objectness score and a box correction; the top proposals after NMS go on;
* RoI heads: RoIAlign crops a 7x7 feature per proposal, two fully connected layers classify it
  (K classes + background) and refine its box; per-class NMS gives the detections;
* Mask R-CNN adds a mask branch: RoIAlign at 14x14, a few 3x3 convolutions and a transposed
  convolution to a 28x28 mask per class.
"""

from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from cvkit.models.registry import register_model
from cvkit.models.small_backbone import LastStage, SmallBackbone


def _rcnn_parts(
    num_classes: int,
    image_size: int,
    widths: Sequence[int],
    anchor_sizes: Sequence[int],
    aspect_ratios: Sequence[float],
    representation: int,
) -> dict:
    """The keyword arguments shared by the small Faster and Mask R-CNN."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    if num_classes < 2:
        raise ValueError(f"num_classes counts background too (shapes: 3 classes + background = 4), got {num_classes}")
    backbone = LastStage(SmallBackbone(3, widths))
    return dict(
        backbone=backbone,
        min_size=image_size,
        max_size=image_size,  # keep small images small (torchvision resizes to 800 by default)
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.25, 0.25, 0.25],
        rpn_anchor_generator=AnchorGenerator((tuple(anchor_sizes),), (tuple(aspect_ratios),)),
        rpn_pre_nms_top_n_train=300,
        rpn_post_nms_top_n_train=100,
        rpn_pre_nms_top_n_test=300,
        rpn_post_nms_top_n_test=100,
        rpn_batch_size_per_image=64,
        # one bilinear sample per bin: RoIs here span a few feature cells, and the CPU backward of
        # RoIAlign costs in proportion to the samples (it dominated the step time with 2 x 2)
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=1),
        box_head=TwoMLPHead(backbone.out_channels * 7 * 7, representation),
        box_predictor=FastRCNNPredictor(representation, num_classes),
        box_batch_size_per_image=32,
        box_detections_per_img=30,  # <= 6 objects per image: few RoIs suffice
    )


def faster_rcnn_small(
    num_classes: int = 4,
    image_size: int = 64,
    widths: Sequence[int] = (32, 64, 128),
    anchor_sizes: Sequence[int] = (8, 16, 32),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    representation: int = 128,
) -> nn.Module:
    """torchvision Faster R-CNN with a small backbone, for ``image_size``-pixel images.

    Args:
        num_classes: classes **including background** (label 0); shapes use 4 (``sample.target(label_offset=1)``).
        image_size: the images' side in pixels (the model's transform keeps them at this size).
        widths: backbone stage widths; the feature map has stride ``2**len(widths)``.
        anchor_sizes: anchor sizes in pixels at every feature cell.
        aspect_ratios: anchor aspect ratios (height / width).
        representation: width of the two fully connected layers of the box head.

    Returns:
        ``torchvision.models.detection.FasterRCNN``. Train mode: ``model(images, targets)`` gives a dict
        of losses; eval mode: ``model(images)`` gives per image ``boxes`` (xyxy pixels), ``scores``, ``labels``.
    """
    from torchvision.models.detection import FasterRCNN

    return FasterRCNN(
        num_classes=None, **_rcnn_parts(num_classes, image_size, widths, anchor_sizes, aspect_ratios, representation)
    )


def mask_rcnn_small(
    num_classes: int = 4,
    image_size: int = 64,
    widths: Sequence[int] = (32, 64, 128),
    anchor_sizes: Sequence[int] = (8, 16, 32),
    aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
    representation: int = 128,
    mask_channels: int = 64,
) -> nn.Module:
    """torchvision Mask R-CNN with a small backbone and a light mask head.

    Args:
        mask_channels: width of the mask head's two 3x3 convolutions (torchvision's default: four of 256).
        others: as :func:`faster_rcnn_small`.

    Returns:
        ``torchvision.models.detection.MaskRCNN``; targets also need ``masks`` (K, H, W) uint8; detections
        also have ``masks`` (N, 1, H, W) float probabilities.
    """
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    parts = _rcnn_parts(num_classes, image_size, widths, anchor_sizes, aspect_ratios, representation)
    return MaskRCNN(
        num_classes=None,
        mask_roi_pool=MultiScaleRoIAlign(["0"], output_size=14, sampling_ratio=1),
        mask_head=MaskRCNNHeads(parts["backbone"].out_channels, (mask_channels, mask_channels), 1),
        mask_predictor=MaskRCNNPredictor(mask_channels, mask_channels, num_classes),
        **parts,
    )


def _shapes_batch(batch_size: int) -> tuple:
    """Two 64x64 shapes images and their targets (labels 1..3), for the registry's smoke test."""
    from cvkit.data.shapes import ShapesDataset, collate_detection

    images, targets = collate_detection(
        [ShapesDataset(n=batch_size, image_size=64, seed=0)[i] for i in range(batch_size)]
    )
    return list(images), targets


def _box_targets(batch_size: int) -> tuple:
    images, targets = _shapes_batch(batch_size)
    return images, [{k: v for k, v in t.items() if k != "masks"} for t in targets]


register_model(
    "faster_rcnn_small",
    task="detection",
    example_inputs=_box_targets,
    smoke_kwargs={"widths": (8, 16, 32), "representation": 32},
    reference="Ren et al. 2015",
)(faster_rcnn_small)
register_model(
    "mask_rcnn_small",
    task="detection",
    example_inputs=_shapes_batch,
    smoke_kwargs={"widths": (8, 16, 32), "representation": 32, "mask_channels": 8},
    reference="He et al. 2017",
)(mask_rcnn_small)
