r"""The Inception module of GoogLeNet (Szegedy et al., CVPR 2015, figure 2b).

Four parallel branches see the same input at different scales, and their outputs are
concatenated along channels: a 1x1 conv; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool then
1x1. The 1x1 convolutions before the 3x3 and 5x5 are the "dimension reductions" that keep
the cost down (section 4). The channel numbers of Table 1 are the constructor's arguments.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct


class InceptionModule(nn.Module):
    """GoogLeNet's four-branch block.

    Args:
        in_channels: C_in.
        ch1x1: width of the 1x1 branch ("#1x1" in Table 1).
        ch3x3red, ch3x3: reduction and output widths of the 3x3 branch ("#3x3 reduce", "#3x3").
        ch5x5red, ch5x5: the same for the 5x5 branch.
        pool_proj: width of the 1x1 after the max-pool ("pool proj").
        norm: ``"none"`` (the 2014 network) or ``"batch"`` (BN after every conv, Inception-v2 style).

    Shapes:
        input (B, C_in, H, W); output (B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        norm: Literal["batch", "none"] = "batch",
    ) -> None:
        super().__init__()
        self.branch1 = ConvBNAct(in_channels, ch1x1, 1, norm=norm)
        self.branch2 = nn.Sequential(
            ConvBNAct(in_channels, ch3x3red, 1, norm=norm), ConvBNAct(ch3x3red, ch3x3, 3, norm=norm)
        )
        self.branch3 = nn.Sequential(
            ConvBNAct(in_channels, ch5x5red, 1, norm=norm), ConvBNAct(ch5x5red, ch5x5, 5, norm=norm)
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), ConvBNAct(in_channels, pool_proj, 1, norm=norm)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # (B, out_channels, H, W)
