r"""Residual blocks (He et al., CVPR 2016): the basic block, the bottleneck, and their plain twins.

A block learns the residual :math:`\mathcal{F}(x) = \mathcal{H}(x) - x` and outputs
:math:`\mathrm{ReLU}(\mathcal{F}(x) + \mathrm{shortcut}(x))` (eq. 1-2). With
``shortcut="none"`` the same layers form a *plain* block, which is how the degradation
experiment compares a plain and a residual network with identical convolutions.

Shortcuts when the shape changes (section 3.3):

* ``"pad"`` (option A, used for the CIFAR nets): subsample by the stride and zero-pad the
  new channels; no parameters, so plain and residual nets have equal parameter counts.
* ``"projection"`` (option B, used for ImageNet): a strided 1x1 convolution and BN.

Variants built from the same blocks: ResNeXt (Xie et al. 2017) is the bottleneck with a
grouped 3x3 convolution (``groups=32``); SE-ResNet (Hu et al. 2018) adds a
:class:`~cvkit.layers.se.SqueezeExcitation` before the addition; SKNet (Li et al. 2019)
replaces the 3x3 convolution by a :class:`~cvkit.layers.sk.SelectiveKernel`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.conv import ConvBNAct
from cvkit.layers.se import SqueezeExcitation
from cvkit.layers.sk import SelectiveKernel

Shortcut = Literal["projection", "pad", "none"]
SHORTCUTS = ("projection", "pad", "none")


class PadShortcut(nn.Module):
    """Option A shortcut: keep every ``stride``-th pixel, then zero-pad the extra channels.

    Shapes:
        input (B, C_in, H, W); output (B, C_out, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a padding shortcut cannot reduce channels ({in_channels} -> {out_channels}); use shortcut='projection'"
            )
        self.subsample = nn.MaxPool2d(kernel_size=1, stride=stride)  # a 1x1 window: picks x[..., ::s, ::s]
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.subsample(x)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # zeros for the new channels: (B, C_out, H', W')


def make_shortcut(kind: Shortcut, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The shortcut path of a block: ``None`` for a plain block, ``nn.Identity`` when shapes match.

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {kind!r}")
    if kind == "none":
        return None
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "pad":
        return PadShortcut(in_channels, out_channels, stride)
    return ConvBNAct(in_channels, out_channels, 1, stride, act=None)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut (ResNet-18/34, the CIFAR ResNets).

    Args:
        in_channels, out_channels: C_in, C_out.
        stride: stride of the first convolution (2 halves H and W).
        shortcut: ``"projection"``, ``"pad"`` or ``"none"`` (plain block); see the module docstring.
        se_reduction: add a squeeze-and-excitation gate with this reduction (``None``: none).

    Shapes:
        input (B, C_in, H, W); output (B, C_out, H / stride, W / stride).

    Raises:
        ValueError: unknown shortcut.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        shortcut: Shortcut = "projection",
        se_reduction: int | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, act=None)
        self.se = SqueezeExcitation(out_channels, se_reduction) if se_reduction else None
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))  # F(x)
        if self.se is not None:
            out = self.se(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # F(x) + x
        return self.act(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand, and a shortcut (ResNet-50/101/152, ResNeXt, SE-ResNet, SKNet).

    Args:
        in_channels: C_in.
        out_channels: C_out (4x the middle width in ResNet).
        stride: stride of the block.
        mid_channels: width of the 3x3 layer (default ``out_channels // 4``).
        groups: groups of the 3x3 convolution (ResNeXt's cardinality).
        stride_in: where the stride goes: ``"3x3"`` (torchvision, "ResNet v1.5") or ``"1x1"``
            (the original paper, whose FLOPs table lecture 04 reproduces).
        shortcut: ``"projection"``, ``"pad"`` or ``"none"``.
        se_reduction: add a squeeze-and-excitation gate with this reduction (``None``: none).
        spatial: ``"conv"`` (a 3x3 conv-BN-ReLU) or ``"sk"`` (a selective-kernel unit, SKNet).

    Shapes:
        input (B, C_in, H, W); output (B, C_out, H / stride, W / stride).

    Raises:
        ValueError: unknown ``stride_in``, ``spatial`` or shortcut.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        mid_channels: int | None = None,
        groups: int = 1,
        stride_in: Literal["3x3", "1x1"] = "3x3",
        shortcut: Shortcut = "projection",
        se_reduction: int | None = None,
        spatial: Literal["conv", "sk"] = "conv",
    ) -> None:
        super().__init__()
        if stride_in not in ("3x3", "1x1"):
            raise ValueError(f"stride_in must be '3x3' or '1x1', got {stride_in!r}")
        if spatial not in ("conv", "sk"):
            raise ValueError(f"spatial must be 'conv' or 'sk', got {spatial!r}")
        mid = mid_channels or out_channels // self.expansion
        s1, s3 = (stride, 1) if stride_in == "1x1" else (1, stride)
        self.conv1 = ConvBNAct(in_channels, mid, 1, s1)
        if spatial == "sk":
            self.conv2 = SelectiveKernel(mid, mid, s3, groups=groups)
        else:
            self.conv2 = ConvBNAct(mid, mid, 3, s3, groups=groups)
        self.conv3 = ConvBNAct(mid, out_channels, 1, act=None)
        self.se = SqueezeExcitation(out_channels, se_reduction) if se_reduction else None
        self.shortcut = make_shortcut(shortcut, in_channels, out_channels, stride)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))  # F(x)
        if self.se is not None:
            out = self.se(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)
