r"""The ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

A ResNet block modernised step by step towards a Swin Transformer block (section 2):
a 7x7 depthwise convolution (the spatial mixing, like window attention), LayerNorm
instead of BatchNorm, an inverted bottleneck MLP (1x1 to 4C, GELU, 1x1 back to C; the
transformer's MLP), layer scale (a learned per-channel factor initialised at 1e-6) and
stochastic depth, with the residual connection around it all:

.. math:: y = x + \mathrm{DropPath}(\gamma \odot \mathrm{MLP}(\mathrm{LN}(\mathrm{DWConv}_{7\times7}(x))))

The 1x1 convolutions are ``nn.Linear`` on channels-last tensors, as in the official code
and torchvision's ``CNBlock``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import StochasticDepth


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (every pixel normalized on its own).

    Shapes:
        input (B, C, H, W); output the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7, LayerNorm, 1x1 up (4x), GELU, 1x1 down, layer scale, stochastic depth, residual.

    Args:
        dim: C, channels in and out.
        kernel_size: of the depthwise convolution (7 in the paper).
        expansion: hidden width of the MLP is ``expansion * dim`` (4).
        layer_scale: initial value of the per-channel scale gamma (1e-6; ``0`` disables it).
        drop_path: probability of skipping the residual branch for a sample in training.

    Shapes:
        input (B, C, H, W); output the same.
    """

    def __init__(
        self, dim: int, kernel_size: int = 7, expansion: int = 4, layer_scale: float = 1e-6, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expansion * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale)) if layer_scale > 0 else None
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (B, H, W, C): channels last for LayerNorm and Linear
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        y = y.permute(0, 3, 1, 2)  # (B, C, H, W)
        if self.layer_scale is not None:
            y = self.layer_scale * y
        return x + self.drop_path(y)
