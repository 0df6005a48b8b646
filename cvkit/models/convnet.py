"""A plain CNN of adjustable width: the baseline a small ViT is measured against (lecture 06).

Stages of two 3 x 3 convolution-BatchNorm-ReLU layers, 2 x 2 max-pooling between stages, global
average pooling and a linear classifier (the VGG recipe of Simonyan & Zisserman 2015, with
BatchNorm and a GAP head). Its inductive biases (locality, weight sharing, translation
equivariance, a pyramid) are exactly what a ViT has to learn from data.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.models.registry import register_model


class ConvNet(nn.Module):
    """Conv-BN-ReLU stages with max-pooling, global average pooling, linear head.

    Args:
        in_chans: C of the input images.
        num_classes: K.
        widths: channels of each stage (each stage: two 3 x 3 convolutions; pooling between stages).

    Shapes:
        (B, C, H, W) -> (B, K) logits; any H, W >= 2^(len(widths) - 1).

    Raises:
        ValueError: empty ``widths`` or an input with another channel count.
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths needs at least one stage")
        self.in_chans = in_chans
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
                c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"ConvNet expects images (B, {self.in_chans}, H, W), got {tuple(images.shape)}")
        return self.head(self.pool(self.features(images)).flatten(1))  # (B, K)


@register_model(
    "convnet_small_28",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    smoke_kwargs=dict(widths=(8, 16)),
    reference="Simonyan & Zisserman 2015 (VGG-style, with BatchNorm)",
)
def convnet_small_28(in_chans: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)) -> ConvNet:
    """A plain CNN for 28 x 28 grey images with 73 k parameters, the size of ``vit_tiny_patch4_28`` (the lecture 06 baseline)."""
    return ConvNet(in_chans, num_classes, widths)
