"""A small convolutional backbone for dense tasks on small images (detectors and segmenters on shapes).

Stages of (3x3 conv stride 2, BN, ReLU) + (3x3 conv, BN, ReLU): stage i has stride 2^(i+1).
Sized to train from scratch in seconds on a CPU; the detection and segmentation models
of lectures 08-09 (FCN, DETR, Faster/Mask R-CNN on shapes) read its feature maps.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn as nn


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm has one), BatchNorm, ReLU; ``stride`` 2 halves H and W."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallBackbone(nn.Module):
    """A plain CNN returning the feature map of every stage.

    Args:
        in_channels: C of the input images.
        widths: channels of each stage; stage i halves the resolution (stride 2^(i+1)).

    Shapes:
        input (B, C, H, W) float; ``forward`` returns an ordered dict ``{"s2": (B, widths[0], H/2, W/2),
        "s4": ..., ...}`` keyed by stride.

    Raises:
        ValueError: no stages.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths must name at least one stage")
        self.widths = tuple(widths)
        stages, prev = [], in_channels
        for w in widths:
            stages.append(nn.Sequential(conv_bn_relu(prev, w, stride=2), conv_bn_relu(w, w)))
            prev = w
        self.stages = nn.ModuleList(stages)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride of each stage's output (2, 4, 8, ...)."""
        return tuple(2 ** (i + 1) for i in range(len(self.stages)))

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        if x.dim() != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        features = OrderedDict()
        for stride, stage in zip(self.strides, self.stages):
            x = stage(x)
            features[f"s{stride}"] = x
        return features


class LastStage(nn.Module):
    """Wraps a :class:`SmallBackbone` to return only its last feature map, with ``out_channels``
    set: the backbone interface of ``torchvision.models.detection.FasterRCNN``."""

    def __init__(self, backbone: SmallBackbone) -> None:
        super().__init__()
        self.body = backbone
        self.out_channels = backbone.widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return list(self.body(x).values())[-1]
