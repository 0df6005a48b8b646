r"""SLaK's sparse large kernels (Liu et al., "More ConvNets in the 2020s: Scaling up Kernels Beyond 51x51 using
Sparsity", ICLR 2023; lecture 04, after RepLKNet).

RepLKNet (:mod:`cvkit.layers.replk`) stops gaining beyond 31x31: a dense 51x51 depthwise kernel has 2,601 weights
per channel and trains poorly. SLaK's two recipes:

1. **Decomposed kernel** (sec. 4, "kernel decomposition"): replace the M x M kernel by two parallel rectangular
   kernels, M x N and N x M (N = 5), plus a small N x N kernel (RepLKNet's trick), each followed by BN, outputs
   summed. The receptive field stays M x M in both directions (a "+"), the weights drop to 2MN + N² per channel;
   in eval mode the three branches merge into one M x M kernel (:meth:`SparseLargeKernelConv.merged_kernel`).
2. **Sparse groups with dynamic sparsity** (sec. 4, "use sparse groups, expand more width"): train the kernels
   sparse from scratch (a fraction ``sparsity`` of every kernel is zero, held by a mask) and spend the saved weights
   on a wider network; every so often :meth:`~SparseLargeKernelConv.prune_and_grow` removes the weakest active
   weights and activates as many new ones at random (Mocanu et al. 2018, SET; Evci et al. 2020, RigL), so the
   sparse pattern is learned during training.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.conv import fuse_conv_bn


class SparseLargeKernelConv(nn.Module):
    """SLaK's depthwise large-kernel convolution: M x N + N x M (+ N x N) branches with BN, optionally sparse.

    Args:
        channels: C (depthwise: one kernel per channel and branch).
        kernel_size: M, the long side (odd; 51 in SLaK).
        width: N, the short side (odd, < M; 5 in SLaK).
        small_kernel: size of the parallel square kernel (odd, <= M), or ``None`` for none.
        sparsity: fraction of each rectangular kernel held at zero, in [0, 1) (0.4 in SLaK).
        generator: seeds the initial random masks.

    Shapes:
        input (B, C, H, W); output (B, C, H, W) (stride 1, "same" padding).

    Raises:
        ValueError: even sizes, ``width`` >= ``kernel_size``, or ``sparsity`` outside [0, 1).
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 51,
        width: int = 5,
        small_kernel: int | None = 5,
        sparsity: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        sizes = [kernel_size, width] + ([small_kernel] if small_kernel else [])
        if any(k % 2 == 0 for k in sizes) or width >= kernel_size or (small_kernel and small_kernel > kernel_size):
            raise ValueError(
                f"kernel sizes must be odd with width < kernel_size >= small_kernel, got {kernel_size}, {width}, {small_kernel}"
            )
        if not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        self.channels, self.kernel_size, self.width, self.small_kernel, self.sparsity = (
            channels,
            kernel_size,
            width,
            small_kernel,
            sparsity,
        )
        m, n = kernel_size, width
        self.tall = nn.Conv2d(
            channels, channels, (m, n), padding=(m // 2, n // 2), groups=channels, bias=False
        )  # M x N
        self.wide = nn.Conv2d(
            channels, channels, (n, m), padding=(n // 2, m // 2), groups=channels, bias=False
        )  # N x M
        self.bn_tall, self.bn_wide = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        if small_kernel:
            self.small = nn.Conv2d(
                channels, channels, small_kernel, padding=small_kernel // 2, groups=channels, bias=False
            )
            self.bn_small = nn.BatchNorm2d(channels)
        else:
            self.small = self.bn_small = None
        for name in ("tall", "wide"):
            weight = getattr(self, name).weight
            mask = torch.rand(weight.shape, generator=generator) >= sparsity  # SET's random initial pattern
            self.register_buffer(f"mask_{name}", mask.to(weight.device))
            with torch.no_grad():
                weight.mul_(mask)

    def _conv(self, conv: nn.Conv2d, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, conv.weight * mask, None, 1, conv.padding, 1, self.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_tall(self._conv(self.tall, self.mask_tall, x)) + self.bn_wide(
            self._conv(self.wide, self.mask_wide, x)
        )
        if self.small is not None:
            out = out + self.bn_small(self.small(x))
        return out

    def active_weights(self) -> int:
        """Non-zero (trainable, unmasked) kernel weights of all branches."""
        n = int(self.mask_tall.sum() + self.mask_wide.sum())
        return n + (self.small.weight.numel() if self.small is not None else 0)

    @torch.no_grad()
    def merged_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single depthwise M x M kernel (C, 1, M, M) and bias (C,) equal to the branches in eval mode.

        Each BN is folded into its conv (:func:`cvkit.layers.conv.fuse_conv_bn`) and each kernel is placed,
        centred, on the M x M canvas; convolution is linear, so the sum of kernels gives the sum of outputs.
        """
        m = self.kernel_size
        canvas = torch.zeros(self.channels, 1, m, m, device=self.tall.weight.device)
        bias = torch.zeros(self.channels, device=canvas.device)
        branches = [(self.tall, self.bn_tall, self.mask_tall), (self.wide, self.bn_wide, self.mask_wide)]
        if self.small is not None:
            branches.append((self.small, self.bn_small, None))
        for conv, bn, mask in branches:
            masked = nn.Conv2d(self.channels, self.channels, conv.kernel_size, groups=self.channels, bias=False).to(
                canvas.device
            )
            masked.weight.copy_(conv.weight * (mask if mask is not None else 1))
            weight, b = fuse_conv_bn(masked, bn)
            kh, kw = weight.shape[-2:]
            top, left = (m - kh) // 2, (m - kw) // 2
            canvas[:, :, top : top + kh, left : left + kw] += weight
            bias += b
        return canvas, bias

    @torch.no_grad()
    def prune_and_grow(self, fraction: float = 0.3, generator: torch.Generator | None = None) -> int:
        """One step of dynamic sparsity: in each rectangular kernel, deactivate the ``fraction`` of active weights with
        the smallest magnitude and activate as many inactive positions at random, with weight 0 (SET; SLaK sec. 4).

        The number of active weights stays the same. Returns how many positions changed (pruned = grown).

        Raises:
            ValueError: ``fraction`` outside [0, 1].
        """
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        changed = 0
        for name in ("tall", "wide"):
            weight, mask = getattr(self, name).weight, getattr(self, f"mask_{name}")
            active = mask.flatten().nonzero().squeeze(1)
            inactive = (~mask).flatten().nonzero().squeeze(1)
            k = min(int(fraction * active.numel()), inactive.numel())
            if k == 0:
                continue
            weakest = active[weight.flatten()[active].abs().argsort()[:k]]
            grown = inactive[torch.randperm(inactive.numel(), generator=generator)[:k].to(inactive.device)]
            flat_mask, flat_weight = mask.view(-1), weight.view(-1)
            flat_mask[weakest] = False
            flat_weight[weakest] = 0.0
            flat_mask[grown] = True
            flat_weight[grown] = 0.0
            changed += k
        return changed
