r"""Squeeze-and-Excitation: channel attention (Hu et al., CVPR 2018).

Squeeze: global average pooling gives one number per channel,
:math:`z_c = \frac{1}{HW}\sum_{i,j} u_c(i, j)` (eq. 2). Excitation: a bottleneck MLP
gives a gate per channel, :math:`s = \sigma(W_2\,\delta(W_1 z))` with
:math:`W_1 \in \mathbb{R}^{C/r \times C}` (eq. 3). Scale: :math:`\tilde u_c = s_c u_c` (eq. 4).
The MLP is written with 1x1 convolutions on the (B, C, 1, 1) pooled tensor, which is the
same as fully connected layers and matches ``torchvision.ops.SqueezeExcitation``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class SqueezeExcitation(nn.Module):
    """Reweight channels by a gate computed from the whole image.

    Args:
        channels: C.
        reduction: r, the bottleneck ratio (16 in the paper).
        squeeze_channels: C / r directly (overrides ``reduction``); at least 1.

    Shapes:
        input (B, C, H, W) float; output the same shape, each channel scaled by a gate in (0, 1).

    Raises:
        ValueError: non-positive channels, reduction or squeeze_channels.
    """

    def __init__(self, channels: int, reduction: int = 16, squeeze_channels: int | None = None) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or (squeeze_channels is not None and squeeze_channels < 1):
            raise ValueError(
                f"channels, reduction and squeeze_channels must be >= 1, got {channels}, {reduction}, {squeeze_channels}"
            )
        hidden = squeeze_channels or max(1, channels // reduction)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.activation = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.scale_activation = nn.Sigmoid()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gates s, shape (B, C, 1, 1), values in (0, 1)."""
        z = self.avgpool(x)  # squeeze: (B, C, 1, 1)
        return self.scale_activation(self.fc2(self.activation(self.fc1(z))))  # excitation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)  # scale
