r"""Convolution, batch normalization, activation: the unit every CNN of lectures 03-05 is built from.

:class:`ConvBNAct` is ``Conv2d -> BatchNorm2d -> activation`` (Ioffe & Szegedy 2015 put
BN between the linear map and the nonlinearity: :math:`z = g(\mathrm{BN}(Wu))`).
:func:`fuse_conv_bn` folds a trained BN into the convolution before it, the step that
makes structural re-parameterization (RepVGG, RepLKNet) and fast inference possible.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.activations import ActivationName, make_activation


class ConvBNAct(nn.Sequential):
    """``Conv2d`` then (optionally) ``BatchNorm2d`` then (optionally) an activation.

    Args:
        in_channels, out_channels: C_in and C_out.
        kernel_size: square kernel side F.
        stride: S.
        padding: P; ``None`` gives ``dilation * (F - 1) // 2``, which keeps H and W at stride 1
            for odd F ("same" padding).
        groups: channel groups (``in_channels`` for a depthwise convolution).
        dilation: spacing between kernel taps.
        norm: ``"batch"`` (BatchNorm2d) or ``"none"``.
        act: activation name (see :func:`cvkit.layers.make_activation`) or ``None``.
        bias: give the convolution a bias; ``None`` means "only without a norm" (BN's shift
            makes a bias redundant).

    Shapes:
        input (B, C_in, H, W) float; output (B, C_out, H', W') with
        H' = floor((H + 2P - dilation (F - 1) - 1) / S) + 1 (the lecture's (W1 - F + 2P)/S + 1 for dilation 1).

    Raises:
        ValueError: non-positive sizes, channels not divisible by ``groups``, unknown ``norm`` or ``act``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        *,
        groups: int = 1,
        dilation: int = 1,
        norm: Literal["batch", "none"] = "batch",
        act: ActivationName | None = "relu",
        bias: bool | None = None,
    ) -> None:
        if min(in_channels, out_channels, kernel_size, stride, groups, dilation) < 1:
            raise ValueError(
                f"channels, kernel_size, stride, groups and dilation must be >= 1, got in={in_channels}, out={out_channels}, "
                f"kernel_size={kernel_size}, stride={stride}, groups={groups}, dilation={dilation}"
            )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        bias = norm == "none" if bias is None else bias
        layers: dict[str, nn.Module] = {
            "conv": nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias
            )
        }
        if norm == "batch":
            layers["bn"] = nn.BatchNorm2d(out_channels)
        if act is not None:
            layers["act"] = make_activation(act, out_channels)
        super().__init__()
        for name, module in layers.items():
            self.add_module(name, module)

    @property
    def out_channels(self) -> int:
        """C_out."""
        return self.conv.out_channels


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Fold an eval-mode BatchNorm into the convolution that feeds it.

    In eval mode BN is the affine map :math:`y = \gamma (z - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta`
    of the conv output :math:`z = W * x + b`, so with :math:`t = \gamma / \sqrt{\sigma^2 + \epsilon}`
    (one value per output channel) the pair equals one convolution with
    :math:`W' = t W` and :math:`b' = t (b - \mu) + \beta` (Ding et al. 2021, RepVGG, eq. 3).

    Args:
        conv: the convolution (any groups, with or without bias).
        bn: the BatchNorm2d after it (its running statistics are used).

    Returns:
        (weight, bias): weight shaped like ``conv.weight`` (C_out, C_in / groups, F, F), bias (C_out,),
        both detached, in the conv weight's dtype and device.

    Raises:
        ValueError: ``bn.num_features`` is not ``conv.out_channels``, or BN tracks no running statistics.
    """
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"BatchNorm has {bn.num_features} features but the conv has {conv.out_channels} output channels"
        )
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("the BatchNorm tracks no running statistics (track_running_stats=False): nothing to fold")
    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=w.dtype, device=w.device)
    gamma = bn.weight.detach() if bn.weight is not None else torch.ones_like(b)
    beta = bn.bias.detach() if bn.bias is not None else torch.zeros_like(b)
    t = gamma / torch.sqrt(bn.running_var + bn.eps)  # (C_out,)
    weight = w * t.view(-1, *([1] * (w.dim() - 1)))  # scale each output channel's kernel
    bias = t * (b - bn.running_mean) + beta
    return weight, bias
