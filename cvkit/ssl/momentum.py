r"""Momentum (EMA) target networks: MoCo's key encoder, BYOL's target network, DINO's teacher.

The target's weights follow the online network's as an exponential moving average,

.. math::  \theta_k \leftarrow m\,\theta_k + (1 - m)\,\theta_q

(He et al. 2020, eq. 2; Grill et al. 2020, eq. 1; Caron et al. 2021, sec. 3.1). With m close
to 1 the target changes slowly, so the keys or targets it produces stay consistent
across steps; no gradient ever flows into it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters have ``requires_grad=False`` (the initial target network)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, momentum: float) -> None:
    r"""In place: :math:`\theta_{target} \leftarrow m\,\theta_{target} + (1 - m)\,\theta_{online}`; buffers (BN statistics) are copied.

    Args:
        target: the momentum network (same architecture as ``online``).
        online: the network trained by gradient descent.
        momentum: m in [0, 1]; 0 copies ``online``, 1 leaves ``target`` unchanged.

    Raises:
        ValueError: ``momentum`` outside [0, 1], or the two networks' parameters do not match.
    """
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    t_params, o_params = list(target.parameters()), list(online.parameters())
    if len(t_params) != len(o_params) or any(a.shape != b.shape for a, b in zip(t_params, o_params)):
        raise ValueError("target and online networks must have the same parameters (build the target with frozen_copy)")
    for t, o in zip(t_params, o_params):
        t.mul_(momentum).add_(o.detach(), alpha=1 - momentum)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)
