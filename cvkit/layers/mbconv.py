r"""MBConv, the inverted residual block of MobileNetV2 and EfficientNet, as MaxViT uses it (Tu et al. 2022, sec. 3.3).

Pre-activation BN, a 1x1 convolution that expands the channels (x4), a 3x3 depthwise convolution (the only
spatial mixing; stride 2 at the start of a stage), squeeze-and-excitation (0.25 of the input width), a 1x1
projection back. In MaxViT it comes first in every block: the depthwise convolution also acts as a conditional
position encoding, so the attention layers after it need no absolute position embedding.

The shortcut is the identity, or (when the stride or width changes) MaxViT's average-pool + 1x1 convolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.se import SqueezeExcitation


class MBConv(nn.Module):
    """Inverted residual block with SE (MaxViT's variant).

    Args:
        in_channels, out_channels: C_in, C_out.
        stride: 1 or 2 (of the depthwise convolution and of the shortcut's pooling).
        expand: expansion ratio of the hidden width (4).
        se_ratio: SE bottleneck width as a fraction of C_in (0.25).

    Shapes:
        (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).

    Raises:
        ValueError: stride not 1 or 2.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, expand: float = 4.0, se_ratio: float = 0.25
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        hidden = int(round(out_channels * expand))
        self.block = nn.Sequential(
            nn.BatchNorm2d(in_channels),  # pre-activation
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.GELU(),
            SqueezeExcitation(hidden, squeeze_channels=max(1, int(in_channels * se_ratio))),
            nn.Conv2d(hidden, out_channels, 1),
        )
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride) if stride > 1 else nn.Identity(), nn.Conv2d(in_channels, out_channels, 1)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)
