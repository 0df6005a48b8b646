"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015): an encoder-decoder with skip connections.

The contracting path doubles the channels and halves the resolution at every level (two
3x3 convolutions, then 2x2 max pooling); the expanding path upsamples with a 2x2
transposed convolution ("up-convolution"), **concatenates** the encoder's feature map of
the same resolution (the skip connection that restores fine detail lost in the
bottleneck) and applies two 3x3 convolutions; a 1x1 convolution gives per-pixel class
logits. Differences from the paper, as in most modern U-Nets: padded ("same") convolutions,
so the output is the input's size and no cropping is needed, and BatchNorm after each convolution.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from cvkit.models.registry import register_model
from cvkit.models.small_backbone import conv_bn_relu


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two (3x3 conv, BN, ReLU): the unit of every U-Net level."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class UNet(nn.Module):
    """A U-Net with ``depth`` downsampling steps.

    Args:
        in_channels: C of the input images.
        num_classes: K, logits per pixel (background included).
        base: channels of the first level (level i has ``base * 2**i``).
        depth: number of 2x2 poolings; H and W must be divisible by ``2**depth``.
        upsample: ``"transposed"`` (the paper's learnable 2x2 up-convolution) or ``"bilinear"``
            (fixed bilinear upsampling, then a 1x1 convolution to halve the channels).

    Shapes:
        input (B, C, H, W) float; output (B, K, H, W) logits.

    Raises:
        ValueError: bad depth or upsample mode, or H, W not divisible by ``2**depth``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 4,
        base: int = 16,
        depth: int = 3,
        upsample: Literal["transposed", "bilinear"] = "transposed",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if upsample not in ("transposed", "bilinear"):
            raise ValueError(f"upsample must be one of 'transposed', 'bilinear', got {upsample!r}")
        self.depth = depth
        widths = [base * 2**i for i in range(depth + 1)]  # encoder levels and the bottleneck
        self.down = nn.ModuleList(
            [double_conv(in_channels, widths[0])] + [double_conv(widths[i - 1], widths[i]) for i in range(1, depth + 1)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for i in range(depth, 0, -1):  # from the bottleneck up
            if upsample == "transposed":
                self.up.append(nn.ConvTranspose2d(widths[i], widths[i - 1], kernel_size=2, stride=2))
            else:
                self.up.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                        nn.Conv2d(widths[i], widths[i - 1], 1),
                    )
                )
            self.fuse.append(double_conv(2 * widths[i - 1], widths[i - 1]))  # after concatenating the skip
        self.classifier = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ValueError(
                f"U-Net of depth {self.depth} needs (B, C, H, W) with H, W divisible by {2**self.depth}, got {tuple(x.shape)}"
            )
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()  # the bottleneck, (B, base * 2**depth, H / 2**depth, W / 2**depth)
        for up, fuse in zip(self.up, self.fuse):
            x = up(x)  # (B, c, h, w): twice the resolution, half the channels
            x = fuse(torch.cat([skips.pop(), x], dim=1))  # (B, 2c, h, w) -> (B, c, h, w)
        return self.classifier(x)


@register_model(
    "unet",
    task="segmentation",
    input_shape=(3, 64, 64),
    output_shape=(4, 64, 64),
    smoke_kwargs={"base": 8, "depth": 2},
    reference="Ronneberger et al. 2015",
)
def unet(
    in_channels: int = 3,
    num_classes: int = 4,
    base: int = 16,
    depth: int = 3,
    upsample: Literal["transposed", "bilinear"] = "transposed",
) -> UNet:
    """U-Net for semantic segmentation of shapes (4 classes: background, circle, square, triangle)."""
    return UNet(in_channels, num_classes, base, depth, upsample)
