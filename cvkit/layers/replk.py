r"""Large kernels with structural re-parameterization (Ding et al., RepLKNet, CVPR 2022).

A 31x31 depthwise convolution is hard to optimise on its own, so in training it runs in
parallel with a small (e.g. 5x5) depthwise convolution, each followed by BN, and the two
outputs are added (section 3, guideline 3). For inference the branches are merged into one
convolution: each BN is folded into its conv (:func:`~cvkit.layers.conv.fuse_conv_bn`),
the small kernel is zero-padded to the large size (centred) and the kernels and biases
are added. Because convolution is linear, the merged conv gives the same output as the
two branches (in eval mode, where BN uses its running statistics):

.. math:: W_{31}' * x + b_{31}' + W_5' * x + b_5' = (W_{31}' + \mathrm{pad}(W_5')) * x + (b_{31}' + b_5').

:class:`RepLKBlock` wraps the large-kernel conv as in the paper's figure 4:
BN, 1x1 conv-BN-ReLU, large depthwise conv, ReLU, 1x1 conv-BN, stochastic depth, residual.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import StochasticDepth

from cvkit.layers.conv import ConvBNAct, fuse_conv_bn


class ReparamLargeKernelConv(nn.Module):
    """A large depthwise conv-BN plus a small one in parallel, mergeable into one conv.

    Args:
        channels: C (depthwise: one kernel per channel).
        kernel_size: the large kernel K (odd; 31 in RepLKNet-31B).
        small_kernel: the parallel small kernel k (odd, < K; 5 in the paper). ``None``: no small branch.
        stride: stride of both branches.

    Shapes:
        input (B, C, H, W); output (B, C, H / stride, W / stride).

    Raises:
        ValueError: even kernel sizes, or ``small_kernel >= kernel_size``.
    """

    def __init__(self, channels: int, kernel_size: int = 13, small_kernel: int | None = 5, stride: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 == 0 or (
            small_kernel is not None and (small_kernel % 2 == 0 or small_kernel >= kernel_size)
        ):
            raise ValueError(
                f"kernel sizes must be odd with small_kernel < kernel_size, got {kernel_size} and {small_kernel}"
            )
        self.channels, self.kernel_size, self.small_kernel, self.stride = channels, kernel_size, small_kernel, stride
        self.large = ConvBNAct(channels, channels, kernel_size, stride, groups=channels, act=None)
        self.small = (
            ConvBNAct(channels, channels, small_kernel, stride, groups=channels, act=None) if small_kernel else None
        )
        self.merged: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged is not None:
            return self.merged(x)
        out = self.large(x)
        if self.small is not None:
            out = out + self.small(x)
        return out

    @torch.no_grad()
    def merged_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single kernel (C, 1, K, K) and bias (C,) equal to both branches in eval mode.

        Raises:
            RuntimeError: the block was already re-parameterized (the branches are gone).
        """
        if self.merged is not None:
            raise RuntimeError("already re-parameterized: read self.merged.weight and self.merged.bias")
        weight, bias = fuse_conv_bn(self.large.conv, self.large.bn)
        if self.small is not None:
            w_small, b_small = fuse_conv_bn(self.small.conv, self.small.bn)
            pad = (self.kernel_size - self.small_kernel) // 2
            weight = weight + F.pad(w_small, (pad, pad, pad, pad))  # centre the small kernel in the large one
            bias = bias + b_small
        return weight, bias

    def reparameterize(self) -> "ReparamLargeKernelConv":
        """Replace the branches by their merged convolution, in place (for inference); returns self.

        Afterwards the module computes what the branches computed in eval mode, with one conv.
        """
        weight, bias = self.merged_kernel()
        conv = nn.Conv2d(
            self.channels, self.channels, self.kernel_size, self.stride, self.kernel_size // 2, groups=self.channels
        )
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(bias)
        self.merged = conv.to(weight.device)
        self.large = None
        self.small = None
        return self


class RepLKBlock(nn.Module):
    """RepLKNet's block: BN, 1x1 up, large depthwise conv, ReLU, 1x1 down, residual.

    Args:
        channels: C, in and out.
        kernel_size, small_kernel: see :class:`ReparamLargeKernelConv`.
        dw_channels: width of the depthwise part (``channels`` by default).
        drop_path: stochastic-depth probability of the branch.

    Shapes:
        input (B, C, H, W); output the same.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 13,
        small_kernel: int | None = 5,
        dw_channels: int | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        dw = dw_channels or channels
        self.pre_norm = nn.BatchNorm2d(channels)
        self.pw1 = ConvBNAct(channels, dw, 1)
        self.large_kernel = ReparamLargeKernelConv(dw, kernel_size, small_kernel)
        self.act = nn.ReLU()
        self.pw2 = ConvBNAct(dw, channels, 1, act=None)
        self.drop_path = StochasticDepth(drop_path, "row")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.act(self.large_kernel(self.pw1(self.pre_norm(x)))))
        return x + self.drop_path(y)

    def reparameterize(self) -> "RepLKBlock":
        """Merge the large-kernel branches (see :meth:`ReparamLargeKernelConv.reparameterize`); returns self."""
        self.large_kernel.reparameterize()
        return self
