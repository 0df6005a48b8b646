r"""Dense blocks and transitions (Huang et al., DenseNet, CVPR 2017).

Inside a dense block, layer :math:`\ell` sees the concatenation of every earlier feature map,
:math:`x_\ell = H_\ell([x_0, x_1, \dots, x_{\ell-1}])` (eq. 2), and adds ``growth_rate`` (k)
new channels. :math:`H_\ell` is BN-ReLU-Conv1x1 (to 4k channels, the "bottleneck" of
DenseNet-B) then BN-ReLU-Conv3x3 (to k). Between blocks, a transition (BN-ReLU-Conv1x1-
AvgPool 2x2) halves H and W and, with compression :math:`\theta = 0.5`, the channels.
The layer names follow torchvision's, so parameter counts can be compared one to one.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class DenseLayer(nn.Module):
    """BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 producing ``growth_rate`` new channels.

    Args:
        in_channels: channels of the concatenated input.
        growth_rate: k, new channels per layer.
        bn_size: the 1x1 convolution outputs ``bn_size * k`` channels (4 in the paper).

    Shapes:
        input (B, C_in, H, W); output (B, k, H, W) (only the new features).
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers, each fed with everything before it.

    Args:
        num_layers: L.
        in_channels: C_0.
        growth_rate: k.
        bn_size: see :class:`DenseLayer`.

    Shapes:
        input (B, C_0, H, W); output (B, C_0 + L k, H, W).
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size) for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))  # x_l = H_l([x_0, ..., x_{l-1}])
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-Conv1x1-AvgPool(2): between dense blocks.

    Shapes:
        input (B, C_in, H, W); output (B, C_out, H // 2, W // 2).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)
