"""Fully convolutional network (Long, Shelhamer and Darrell, CVPR 2015) on a small backbone.

An FCN replaces a classifier's fully connected layers by 1x1 convolutions that score every
position of the last feature map ("score" layers), then upsamples the coarse scores to the
image with a transposed convolution initialised to bilinear interpolation (and learned).
Upsampling only the deepest, stride-16 scores (our "FCN-16s", the analogue of the paper's
FCN-32s on VGG) gives blobby masks; the paper's fix is **skip connections**: upsample by 2,
add the scores of the stride-8 layer, upsample by 2 again, add the stride-4 scores, and so
on (FCN-16s and FCN-8s in the paper; "fcn8s" and "fcn4s" here, named by the finest stride used).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from cvkit.models.registry import register_model
from cvkit.models.small_backbone import SmallBackbone
from cvkit.segmentation.transposed import bilinear_kernel, bilinear_upsample_args

FCN_VARIANTS = ("fcn16s", "fcn8s", "fcn4s")


def bilinear_upsampler(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable transposed convolution that starts as exact bilinear upsampling by ``factor`` (FCN, Sec. 3.3)."""
    up = nn.ConvTranspose2d(channels, channels, bias=False, **bilinear_upsample_args(factor))
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(factor, channels))
    return up


class FCNHead(nn.Module):
    """Score the backbone's feature maps with 1x1 convolutions, fuse them coarse to fine, upsample to the image.

    Args:
        channels: channels of the feature maps used, coarsest first (e.g. strides 16, 8, 4).
        strides: their strides, coarsest first; each must be half the previous one.
        num_classes: K.

    Shapes:
        ``forward(features)`` takes a list of (B, channels[i], H / strides[i], W / strides[i]) maps and
        returns (B, K, H, W) logits.
    """

    def __init__(self, channels: Sequence[int], strides: Sequence[int], num_classes: int) -> None:
        super().__init__()
        if len(channels) != len(strides) or any(a != 2 * b for a, b in zip(strides, strides[1:])):
            raise ValueError(
                f"need one stride per feature map, each half the previous; got channels {channels}, strides {strides}"
            )
        self.strides = tuple(strides)
        self.score = nn.ModuleList([nn.Conv2d(c, num_classes, kernel_size=1) for c in channels])
        self.up2 = nn.ModuleList([bilinear_upsampler(num_classes, 2) for _ in channels[1:]])
        self.final = bilinear_upsampler(num_classes, strides[-1])

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        scores = self.score[0](features[0])  # (B, K, H/s0, W/s0), the coarsest
        for score, up, feat in zip(self.score[1:], self.up2, features[1:]):
            scores = up(scores) + score(feat)  # x2, then add the finer layer's own scores (a skip)
        return self.final(scores)  # (B, K, H, W)


class FCN(nn.Module):
    """A small FCN for segmentation of small images.

    Args:
        in_channels: C of the input images.
        num_classes: K (background included).
        widths: backbone stage widths (strides 2, 4, 8, 16 for four stages).
        variant: ``"fcn16s"`` (no skips), ``"fcn8s"`` (one skip) or ``"fcn4s"`` (two skips).

    Shapes:
        input (B, C, H, W) with H, W divisible by the backbone's last stride; output (B, K, H, W) logits.

    Raises:
        ValueError: unknown variant, or too few backbone stages for it.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        widths: Sequence[int] = (32, 64, 128, 256),
        variant: Literal["fcn16s", "fcn8s", "fcn4s"] = "fcn8s",
    ) -> None:
        super().__init__()
        if variant not in FCN_VARIANTS:
            raise ValueError(f"variant must be one of {FCN_VARIANTS}, got {variant!r}")
        used = 1 + FCN_VARIANTS.index(variant)  # feature maps fused: 1, 2 or 3
        if len(widths) < used:
            raise ValueError(f"{variant} needs at least {used} backbone stages, got widths {tuple(widths)}")
        self.variant = variant
        self.backbone = SmallBackbone(in_channels, widths)
        self.used = used
        strides = self.backbone.strides[::-1][:used]  # coarsest first
        self.head = FCNHead(list(widths)[::-1][:used], strides, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride = self.backbone.strides[-1]
        if x.dim() != 4 or x.shape[-1] % stride or x.shape[-2] % stride:
            raise ValueError(f"FCN needs (B, C, H, W) with H, W divisible by {stride}, got {tuple(x.shape)}")
        features = list(self.backbone(x).values())[::-1][: self.used]  # coarsest first
        return self.head(features)


@register_model(
    "fcn",
    task="segmentation",
    input_shape=(3, 64, 64),
    output_shape=(4, 64, 64),
    smoke_kwargs={"widths": (8, 16, 16, 32)},
    reference="Long, Shelhamer and Darrell 2015",
)
def fcn(
    in_channels: int = 3,
    num_classes: int = 4,
    widths: Sequence[int] = (32, 64, 128, 256),
    variant: Literal["fcn16s", "fcn8s", "fcn4s"] = "fcn8s",
) -> FCN:
    """Fully convolutional network with skip connections, for semantic segmentation of shapes."""
    return FCN(in_channels, num_classes, widths, variant)
