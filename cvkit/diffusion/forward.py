r"""The forward (noising) process in closed form: :math:`q(x_t \mid x_0)`.

Composing T Gaussian steps gives one Gaussian (Ho et al. 2020, eq. 4):

.. math::  q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\,x_0,\ (1 - \bar\alpha_t) I\big),
           \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon,\ \epsilon \sim \mathcal N(0, I),

so training can jump to any step at once instead of simulating the chain.
"""

from __future__ import annotations

import torch

from cvkit.diffusion.schedules import NoiseSchedule


def gather(values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """Pick ``values[t]`` per example and shape it to broadcast against an ``ndim``-D batch.

    Args:
        values: (T,) float tensor (a schedule quantity).
        t: (B,) int64 timesteps in [0, T).
        ndim: rank of the batch it will multiply (4 for (B, C, H, W)).

    Returns:
        (B, 1, ..., 1) tensor with ``ndim`` dimensions, on ``t``'s device.
    """
    return values.to(t.device)[t].view(-1, *([1] * (ndim - 1)))  # (B, 1, 1, 1)


def check_timesteps(t: torch.Tensor | int, batch: int, num_steps: int, device: torch.device) -> torch.Tensor:
    """Turn ``t`` (an int or a (B,) tensor) into a (B,) int64 tensor and check its range.

    Raises:
        TypeError: ``t`` is a float tensor.
        ValueError: wrong length or a value outside [0, T).
    """
    if isinstance(t, int):
        t = torch.full((batch,), t, dtype=torch.long, device=device)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be an int or an int64 tensor of shape ({batch},), got {type(t).__name__}")
    if t.is_floating_point():
        raise TypeError(f"t must hold integer timesteps, got dtype {t.dtype}; use t.long()")
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"t must have shape ({batch},) (one timestep per image), got {tuple(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_steps):
        raise ValueError(f"timesteps must lie in [0, {num_steps}), got values from {int(t.min())} to {int(t.max())}")
    return t.to(device=device, dtype=torch.long)


def q_sample(
    x0: torch.Tensor,
    t: torch.Tensor | int,
    schedule: NoiseSchedule,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Sample :math:`x_t \sim q(x_t \mid x_0)`: :math:`\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon` (Ho et al. 2020, eq. 4).

    Args:
        x0: (B, C, H, W) float clean images, scaled to [-1, 1] as in the paper.
        t: (B,) int64 timesteps in [0, T) (or one int for the whole batch), 0-based.
        schedule: the :class:`NoiseSchedule`.
        noise: (B, C, H, W) the :math:`\epsilon` to use (default: fresh standard normal noise).
        generator: random generator for the noise when ``noise`` is None.

    Returns:
        (B, C, H, W) tensor of ``x0``'s dtype: the noisy images :math:`x_t`.

    Raises:
        TypeError, ValueError: bad ``t`` (see :func:`check_timesteps`) or ``noise`` of another shape.
    """
    if not isinstance(x0, torch.Tensor) or x0.dim() < 2:
        raise ValueError(f"x0 must be a batch tensor (B, C, H, W), got {getattr(x0, 'shape', type(x0).__name__)}")
    t = check_timesteps(t, x0.shape[0], schedule.num_steps, x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
    ab = gather(schedule.alphas_cumprod, t, x0.dim()).to(x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    r"""Invert eq. 4 with a predicted noise: :math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}` (Ho et al. 2020, eq. 15).

    Args:
        x_t: (B, C, H, W) noisy images; t: (B,) int64 timesteps; eps: (B, C, H, W) predicted noise.

    Returns:
        (B, C, H, W) the model's estimate of the clean images.
    """
    ab = gather(schedule.alphas_cumprod, t, x_t.dim()).to(x_t.dtype)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
