r"""The training objective: predict the noise that was added (Ho et al. 2020, eq. 14, "L_simple").

.. math::  L_\text{simple} = \mathbb E_{t, x_0, \epsilon}\big[\lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon,\ t)\rVert^2\big]

with t uniform over the T steps (Algorithm 1). For classifier-free guidance (Ho & Salimans 2022,
Algorithm 1) the class label is replaced by "no class" with probability ``p_uncond``, so one network
learns both the conditional and the unconditional noise predictor.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.diffusion.forward import q_sample
from cvkit.diffusion.schedules import NoiseSchedule

#: the label that means "no class" (the unconditional model of classifier-free guidance)
NULL_LABEL = -1


def drop_labels(labels: torch.Tensor, p_uncond: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by :data:`NULL_LABEL` with probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1, line 3).

    Args:
        labels: (B,) int64 class indices.
        p_uncond: probability in [0, 1].

    Returns:
        (B,) int64, a copy with some entries set to -1.

    Raises:
        ValueError: ``p_uncond`` outside [0, 1].
    """
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, NULL_LABEL), labels)


def diffusion_loss(
    model: nn.Module | Callable[..., torch.Tensor],
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    labels: torch.Tensor | None = None,
    *,
    p_uncond: float = 0.0,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The epsilon-prediction loss :math:`\lVert\epsilon - \epsilon_\theta(x_t, t)\rVert^2`, averaged (Ho et al. 2020, eq. 14).

    Args:
        model: ``model(x_t, t)`` or, with ``labels``, ``model(x_t, t, labels)`` returning (B, C, H, W) noise predictions.
        x0: (B, C, H, W) float clean images scaled to [-1, 1].
        schedule: the :class:`NoiseSchedule`.
        labels: (B,) int64 class labels for a class-conditional model (``None``: unconditional).
        p_uncond: probability of dropping each label for classifier-free guidance (0.1 is typical).
        t: (B,) int64 timesteps (default: uniform in [0, T), Algorithm 1 line 3).
        noise: (B, C, H, W) the target :math:`\epsilon` (default: standard normal).
        generator: random generator for ``t``, ``noise`` and label dropout.

    Returns:
        scalar float tensor, the mean squared error over every pixel of the batch.

    Raises:
        ValueError: the model's output shape differs from ``x0``'s.
    """
    b = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.num_steps, (b,), generator=generator, device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_t = q_sample(x0, t, schedule, noise)
    if labels is None:
        pred = model(x_t, t)
    else:
        pred = model(x_t, t, drop_labels(labels, p_uncond, generator) if p_uncond > 0 else labels)
    if pred.shape != noise.shape:
        raise ValueError(f"the model must predict noise of shape {tuple(noise.shape)}, got {tuple(pred.shape)}")
    return F.mse_loss(pred.float(), noise.float())


def diffusion_step(schedule: NoiseSchedule, *, conditional: bool = False, p_uncond: float = 0.1):
    """A ``step(model, batch) -> StepOutput`` for :func:`cvkit.train.fit`, training with :func:`diffusion_loss`.

    Args:
        schedule: the :class:`NoiseSchedule` (moved to the batch's device on first use).
        conditional: feed the batch's labels to the model (class-conditional, with label dropout).
        p_uncond: label-dropout probability when ``conditional``.

    Returns:
        a function of ``(model, (images (B, C, H, W) in [-1, 1], labels (B,)))``.
    """
    from cvkit.train import StepOutput

    cache: dict[torch.device, NoiseSchedule] = {}

    def step(model: nn.Module, batch) -> "StepOutput":
        images, labels = batch[0], batch[1]
        sched = cache.setdefault(images.device, schedule.to(images.device))
        loss = diffusion_loss(
            model, images, sched, labels if conditional else None, p_uncond=p_uncond if conditional else 0.0
        )
        return StepOutput(loss=loss, count=images.shape[0])

    return step
