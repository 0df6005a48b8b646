r"""Losses taught in the optimisation lecture: cross-entropy, MSE/RMSE, and the focal loss.

The focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, eq. 5)
down-weights easy examples:

.. math::  \mathrm{FL}(p_t) = -\alpha_t (1 - p_t)^\gamma \log(p_t)

With :math:`\gamma = 0` and no :math:`\alpha` it is the cross-entropy.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Reduction = Literal["mean", "sum", "none"]


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce per-element losses the way ``torch.nn.functional`` losses do.

    Args:
        loss: per-element losses, any shape, floating point.
        reduction: ``"mean"`` (a 0-d tensor), ``"sum"`` (0-d) or ``"none"`` (``loss`` unchanged).

    Raises:
        ValueError: any other ``reduction``.
    """
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: torch.Tensor | float | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Multi-class focal loss :math:`-\alpha_t (1 - p_t)^\gamma \log p_t` (Lin et al. 2017, eq. 5).

    Args:
        logits: (N, K) float, unnormalised class scores.
        targets: (N,) int64 class indices in [0, K).
        gamma: focusing parameter :math:`\gamma \ge 0` (the paper uses 2).
        alpha: class weights: a float (same for all classes), a (K,) tensor, or ``None`` (1 for all).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (then (N,) per-example losses).

    Returns:
        scalar float tensor (or (N,) with ``reduction="none"``).

    Raises:
        ValueError: wrong shapes, negative gamma, or an unknown reduction.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, K), got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1] or targets.dtype != torch.int64:
        raise ValueError(
            f"targets must be ({logits.shape[0]},) int64 class indices, got {tuple(targets.shape)} {targets.dtype}"
        )
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")
    log_p = F.log_softmax(logits.float(), dim=1)  # (N, K)
    log_pt = log_p.gather(1, targets[:, None]).squeeze(1)  # (N,) log p_t
    pt = log_pt.exp()
    loss = -((1 - pt) ** gamma) * log_pt
    if alpha is not None:
        a = torch.as_tensor(alpha, dtype=loss.dtype, device=loss.device)
        loss = loss * (a[targets] if a.dim() == 1 else a)
    return reduce_loss(loss, reduction)


def binary_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""Sigmoid focal loss for independent binary targets (RetinaNet's form; Lin et al. 2017, eq. 5).

    Args:
        logits: (...) float, one logit per binary decision.
        targets: same shape, float in {0, 1}.
        gamma: focusing parameter.
        alpha: weight of positives (negatives get 1 - alpha); ``None`` for no weighting.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        scalar (or per-element) float tensor. Matches ``torchvision.ops.sigmoid_focal_loss``
        (with ``alpha=-1`` there for ``alpha=None`` here).

    Raises:
        ValueError: shapes differ, or an unknown reduction.
    """
    if logits.shape != targets.shape:
        raise ValueError(
            f"logits and targets must have the same shape, got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    targets = targets.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = p * targets + (1 - p) * (1 - targets)  # probability of the true outcome
    loss = ce * (1 - pt) ** gamma
    if alpha is not None:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return reduce_loss(loss, reduction)


def rmse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Root mean squared error :math:`\sqrt{\frac{1}{N}\sum (\hat y - y)^2}` over all elements.

    Raises:
        ValueError: shapes differ.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    return F.mse_loss(prediction, target).sqrt()
