r"""Selective Kernel convolution: attention over kernel sizes (Li et al., SKNet, CVPR 2019).

Split: M branches see the input with different receptive fields (3x3 kernels with dilation
1, 2, ... act as 3x3, 5x5, ...). Fuse: :math:`U = \sum_m U_m`, pooled to :math:`s`
(eq. 1), squeezed to :math:`z = \delta(\mathrm{BN}(W s))` with
:math:`d = \max(C / r, L)` (eq. 2-4). Select: a softmax across branches per channel,
:math:`a_m = e^{A_m z} / \sum_k e^{A_k z}`, and :math:`V = \sum_m a_m U_m` (eq. 5-6).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct


class SelectiveKernel(nn.Module):
    """Mix branches of different dilation with per-channel soft attention.

    Args:
        in_channels, out_channels: C_in and C (= C_out).
        stride: stride of every branch.
        branches: M, the number of paths; path m is a 3x3 conv with dilation m + 1.
        groups: groups of the branch convolutions (32 in SKNet-50; must divide both channel counts).
        reduction: r in d = max(C / r, min_dim).
        min_dim: L, the smallest width of z.

    Shapes:
        input (B, C_in, H, W); output (B, C, H / stride, W / stride).
        :meth:`attention` returns the (B, M, C) selection weights, which sum to 1 over M.

    Raises:
        ValueError: fewer than one branch, or channels not divisible by ``groups``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        branches: int = 2,
        groups: int = 1,
        reduction: int = 16,
        min_dim: int = 32,
    ) -> None:
        super().__init__()
        if branches < 1:
            raise ValueError(f"branches must be >= 1, got {branches}")
        self.branches = nn.ModuleList(
            ConvBNAct(in_channels, out_channels, 3, stride, groups=groups, dilation=m + 1) for m in range(branches)
        )
        d = max(out_channels // reduction, min_dim)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = ConvBNAct(out_channels, d, 1)  # z = ReLU(BN(W s))
        self.select = nn.Conv2d(d, out_channels * branches, 1)  # the A_m stacked
        self.num_branches, self.out_channels = branches, out_channels

    def attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branch outputs (B, M, C, H', W') and selection weights (B, M, C)."""
        u = torch.stack([b(x) for b in self.branches], dim=1)  # split: (B, M, C, H', W')
        s = self.pool(u.sum(dim=1))  # fuse: (B, C, 1, 1)
        logits = self.select(self.fc(s))  # (B, M * C, 1, 1)
        logits = logits.view(logits.shape[0], self.num_branches, self.out_channels)  # (B, M, C)
        return u, logits.softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, a = self.attention(x)
        return (u * a[..., None, None]).sum(dim=1)  # select: (B, C, H', W')
