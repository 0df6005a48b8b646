"""A small RepLKNet (Ding et al., "Scaling up your kernels to 31x31", CVPR 2022) for 28x28 images.

Each stage alternates a :class:`~cvkit.layers.replk.RepLKBlock` (large depthwise kernel with
a parallel small kernel) and a ConvFFN block (BN, 1x1 up 4x, GELU, 1x1 down, residual),
with 1x1 + strided depthwise 3x3 transitions between stages. :meth:`RepLKNet.reparameterize`
merges every large/small kernel pair for inference without changing the eval-mode output.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct
from cvkit.layers.replk import RepLKBlock
from cvkit.models.registry import register_model


class ConvFFN(nn.Module):
    """RepLKNet's feed-forward block: BN, 1x1 conv-BN to ``expansion`` C, GELU, 1x1 conv-BN back, residual.

    Shapes:
        input (B, C, H, W); output the same.
    """

    def __init__(self, channels: int, expansion: int = 4) -> None:
        super().__init__()
        self.pre_norm = nn.BatchNorm2d(channels)
        self.pw1 = ConvBNAct(channels, channels * expansion, 1, act="gelu")
        self.pw2 = ConvBNAct(channels * expansion, channels, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw2(self.pw1(self.pre_norm(x)))


class RepLKNet(nn.Module):
    """3x3 stem, stages of (RepLK block, ConvFFN) pairs, transitions, global pooling, a classifier.

    Args:
        dims: width per stage.
        kernels: the large kernel size per stage (odd).
        depths: (RepLK, ConvFFN) pairs per stage.
        small_kernel: the parallel small kernel (5).
        num_classes, in_channels: K and C.

    Shapes:
        input (B, C, H, W); output (B, K) logits.

    Raises:
        ValueError: ``dims``, ``kernels`` and ``depths`` of different lengths.
    """

    def __init__(
        self,
        dims: Sequence[int] = (32, 64),
        kernels: Sequence[int] = (13, 7),
        depths: Sequence[int] = (1, 1),
        small_kernel: int = 5,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if not len(dims) == len(kernels) == len(depths):
            raise ValueError(
                f"dims, kernels and depths need one entry per stage, got {len(dims)}, {len(kernels)}, {len(depths)}"
            )
        layers: list[nn.Module] = [ConvBNAct(in_channels, dims[0], 3)]
        for i, (dim, k, n) in enumerate(zip(dims, kernels, depths)):
            if i > 0:  # transition: 1x1 to the new width, depthwise 3x3 with stride 2
                layers.append(nn.Sequential(ConvBNAct(dims[i - 1], dim, 1), ConvBNAct(dim, dim, 3, 2, groups=dim)))
            for _ in range(n):
                layers += [RepLKBlock(dim, k, min(small_kernel, k - 2)), ConvFFN(dim)]
        self.features = nn.Sequential(*layers)
        self.norm = nn.BatchNorm2d(dims[-1])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.norm(self.features(x)))
        return self.fc(torch.flatten(x, 1))

    def reparameterize(self) -> "RepLKNet":
        """Merge every large/small kernel pair into one conv (use in eval mode); returns self."""
        for m in self.modules():
            if isinstance(m, RepLKBlock):
                m.reparameterize()
        return self


@register_model(
    "replknet_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Ding et al. 2022"
)
def replknet_mini(
    num_classes: int = 10, in_channels: int = 1, dims: Sequence[int] = (32, 64), kernels: Sequence[int] = (13, 7)
) -> RepLKNet:
    """A two-stage RepLKNet for 28x28 images: 13x13 kernels at 28x28, 7x7 at 14x14."""
    return RepLKNet(dims, kernels, (1, 1), num_classes=num_classes, in_channels=in_channels)
