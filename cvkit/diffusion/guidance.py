r"""Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6).

One network, trained with labels dropped 10% of the time (:func:`cvkit.diffusion.loss.drop_labels`),
predicts both :math:`\epsilon_\theta(x_t, c)` and :math:`\epsilon_\theta(x_t, \varnothing)`. Sampling
extrapolates away from the unconditional prediction:

.. math::  \tilde\epsilon = \epsilon_\theta(x_t, \varnothing) + s\,\big(\epsilon_\theta(x_t, c) - \epsilon_\theta(x_t, \varnothing)\big)

The paper writes :math:`(1 + w)\epsilon_c - w\,\epsilon_\varnothing`, i.e. :math:`s = 1 + w`: ``scale=1`` is the
plain conditional model, ``scale=0`` the unconditional one, larger scales trade diversity for
class fidelity.
"""

from __future__ import annotations

from typing import Callable

import torch

from cvkit.diffusion.loss import NULL_LABEL


def guided_epsilon(
    model: Callable[..., torch.Tensor],
    x_t: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    r"""The guided noise prediction :math:`\epsilon_\varnothing + s(\epsilon_c - \epsilon_\varnothing)`.

    Both predictions come from one forward pass over a doubled batch.

    Args:
        model: ``model(x_t, t, labels)`` -> (B, C, H, W); label -1 means "no class".
        x_t: (B, C, H, W) noisy images; t: (B,) int64 timesteps; labels: (B,) int64 classes.
        scale: guidance scale s (the paper's 1 + w); ``scale == 1`` skips the unconditional pass.

    Returns:
        (B, C, H, W) guided noise prediction.
    """
    if scale == 1:
        return model(x_t, t, labels)
    null = torch.full_like(labels, NULL_LABEL)
    if scale == 0:  # the unconditional model alone: the conditional pass would be multiplied by 0
        return model(x_t, t, null)
    eps = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([labels, null]))  # (2B, C, H, W)
    eps_cond, eps_uncond = eps.chunk(2)
    return eps_uncond + scale * (eps_cond - eps_uncond)
