r"""Reverse process: turning noise into images with a trained noise predictor.

* **DDPM** (Ho et al. 2020, Algorithm 2, eq. 11): ancestral sampling, one network call per step,
  :math:`x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\epsilon_\theta(x_t, t)\big) + \sigma_t z`.
* **DDIM** (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12): the same trained network,
  a non-Markovian update that can skip steps; with :math:`\eta = 0` it is deterministic:
  :math:`x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1} - \sigma_t^2}\,\epsilon_\theta + \sigma_t z`.

Timesteps are 0-based (diffusers' convention): the chain runs t = T-1, ..., 0 and "t - 1 = -1"
means :math:`\bar\alpha = 1`, the clean image. Images live in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.nn as nn

from cvkit.diffusion.forward import predict_x0
from cvkit.diffusion.guidance import guided_epsilon
from cvkit.diffusion.schedules import NoiseSchedule
from cvkit.runtime import pick_device

Variance = Literal["posterior", "beta"]
Method = Literal["ddpm", "ddim"]


def _alpha_bars(schedule: NoiseSchedule, t: int, prev_t: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0 <= t < schedule.num_steps:
        raise ValueError(f"t must be in [0, {schedule.num_steps}), got {t}")
    if not -1 <= prev_t < t:
        raise ValueError(f"prev_t must satisfy -1 <= prev_t < t = {t}, got {prev_t}")
    ab_t = schedule.alphas_cumprod[t]
    ab_prev = schedule.alphas_cumprod[prev_t] if prev_t >= 0 else torch.ones((), dtype=ab_t.dtype)
    return ab_t, ab_prev


def _noise_like(x: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    if noise is None:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if noise.shape != x.shape:
        raise ValueError(f"noise must have shape {tuple(x.shape)}, got {tuple(noise.shape)}")
    return noise


def ddpm_step(
    eps: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    schedule: NoiseSchedule,
    *,
    prev_t: int | None = None,
    variance: Variance = "posterior",
    clip_x0: bool = False,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""One DDPM reverse step :math:`x_t \to x_{t-1}` (Ho et al. 2020, Algorithm 2 line 4, eq. 11).

    With ``prev_t < t - 1`` (strided sampling) :math:`\alpha_t` is read as :math:`\bar\alpha_t / \bar\alpha_{\text{prev}}`,
    as diffusers' ``DDPMScheduler`` does.

    Args:
        eps: (B, C, H, W) predicted noise :math:`\epsilon_\theta(x_t, t)`.
        x_t: (B, C, H, W) current images.
        t: current timestep (0-based, the same for the whole batch).
        schedule: the :class:`NoiseSchedule`.
        prev_t: the step to go to (default ``t - 1``; ``-1`` means the clean image).
        variance: :math:`\sigma_t^2 = \tilde\beta_t` (``"posterior"``, eq. 7, diffusers' ``fixed_small``) or
            :math:`\beta_t` (``"beta"``, ``fixed_large``); both appear in sec. 3.2 of the paper.
        clip_x0: clip the implied :math:`\hat x_0` to [-1, 1] and use the posterior mean of eq. 7
            (what the paper's released code and diffusers' ``clip_sample=True`` do); otherwise eq. 11.
        noise: (B, C, H, W) the :math:`z` to add (default: standard normal); no noise is added at t = 0.
        generator: random generator for ``z`` when ``noise`` is None.

    Returns:
        (B, C, H, W) :math:`x_{t-1}`.

    Raises:
        ValueError: ``t``/``prev_t`` out of range, an unknown ``variance``, or mismatched shapes.
    """
    if variance not in ("posterior", "beta"):  # checked first: the last step (t = 0) never reads it
        raise ValueError(f"unknown variance {variance!r}; choose one of ('posterior', 'beta')")
    prev_t = t - 1 if prev_t is None else prev_t
    ab_t, ab_prev = (v.to(x_t.device, x_t.dtype) for v in _alpha_bars(schedule, t, prev_t))
    alpha_t = ab_t / ab_prev
    beta_t = 1 - alpha_t
    if eps.shape != x_t.shape:
        raise ValueError(f"eps must have x_t's shape {tuple(x_t.shape)}, got {tuple(eps.shape)}")
    if clip_x0:
        # eq. 15 then eq. 7: posterior mean given the (clipped) estimate of x_0
        x0 = ((x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-1, 1)
        mean = (ab_prev.sqrt() * beta_t / (1 - ab_t)) * x0 + (alpha_t.sqrt() * (1 - ab_prev) / (1 - ab_t)) * x_t
    else:
        mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps) / alpha_t.sqrt()  # eq. 11
    if t == 0 or prev_t < 0:
        return mean
    if variance == "posterior":
        var = (1 - ab_prev) / (1 - ab_t) * beta_t  # eq. 7's beta tilde
    else:  # "beta"
        var = beta_t
    return mean + var.clamp_min(1e-20).sqrt() * _noise_like(x_t, noise, generator)


def ddim_step(
    eps: torch.Tensor,
    x_t: torch.Tensor,
    t: int,
    prev_t: int,
    schedule: NoiseSchedule,
    *,
    eta: float = 0.0,
    clip_x0: bool = False,
    noise: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""One DDIM step :math:`x_t \to x_{\text{prev}}` (Song et al. 2021, eq. 12, with :math:`\sigma_t` from eq. 16).

    .. math::  x_{\text{prev}} = \sqrt{\bar\alpha_{\text{prev}}}\,\hat x_0
               + \sqrt{1 - \bar\alpha_{\text{prev}} - \sigma_t^2}\,\epsilon_\theta + \sigma_t z,\quad
               \sigma_t = \eta\sqrt{\tfrac{1-\bar\alpha_{\text{prev}}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{\text{prev}}}}

    (the paper's :math:`\alpha` is our :math:`\bar\alpha`). ``eta=0`` is deterministic DDIM; ``eta=1`` matches DDPM's posterior variance.

    Args:
        eps: (B, C, H, W) predicted noise; x_t: (B, C, H, W) current images.
        t: current timestep; prev_t: the next (smaller) timestep, ``-1`` for the clean image.
        schedule: the :class:`NoiseSchedule`.
        eta: stochasticity :math:`\eta \ge 0`.
        clip_x0: clip :math:`\hat x_0` to [-1, 1] before using it (diffusers' ``clip_sample``).
        noise, generator: the :math:`z` (or its generator), used only when ``eta > 0``.

    Returns:
        (B, C, H, W) :math:`x_{\text{prev}}`.

    Raises:
        ValueError: timesteps out of range, ``eta < 0`` or mismatched shapes.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    ab_t, ab_prev = (v.to(x_t.device, x_t.dtype) for v in _alpha_bars(schedule, t, prev_t))
    if eps.shape != x_t.shape:
        raise ValueError(f"eps must have x_t's shape {tuple(x_t.shape)}, got {tuple(eps.shape)}")
    x0 = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()  # "predicted x_0" in eq. 12
    if clip_x0:
        x0 = x0.clamp(-1, 1)
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()  # eq. 16
    out = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp_min(0).sqrt() * eps  # "direction pointing to x_t"
    if eta > 0:
        out = out + sigma * _noise_like(x_t, noise, generator)
    return out


def inference_timesteps(num_train_steps: int, num_steps: int) -> list[int]:
    """The timesteps a sampler visits, largest first, with diffusers' default "leading" spacing.

    ``inference_timesteps(1000, 10) == [900, 800, ..., 100, 0]``: every ``T // num_steps``-th step.

    Raises:
        ValueError: ``num_steps`` not in [1, T].
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"num_steps must be in [1, {num_train_steps}], got {num_steps}")
    ratio = num_train_steps // num_steps
    return [i * ratio for i in range(num_steps)][::-1]


@dataclass
class SampleResult:
    """The output of :func:`sample`.

    Attributes:
        images: (B, C, H, W) final samples in [-1, 1] (clamped).
        timesteps: the recorded timesteps, in the order visited (largest first); the last is -1 (clean).
        states: (S, B, C, H, W) :math:`x_t` after each recorded step (``S = len(timesteps)``).
        x0_predictions: (S, B, C, H, W) the model's :math:`\\hat x_0` at each recorded step (the last equals ``images``).
    """

    images: torch.Tensor
    timesteps: list[int] = field(default_factory=list)
    states: torch.Tensor | None = None
    x0_predictions: torch.Tensor | None = None


@torch.no_grad()
def sample(
    model: Callable[..., torch.Tensor],
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    *,
    method: Method = "ddpm",
    num_steps: int | None = None,
    eta: float = 0.0,
    labels: torch.Tensor | None = None,
    guidance_scale: float = 1.0,
    clip_x0: bool = True,
    record: int = 0,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> SampleResult:
    r"""Draw samples by running the reverse process from pure noise :math:`x_T \sim \mathcal N(0, I)`.

    Args:
        model: noise predictor ``model(x_t, t)`` or, with ``labels``, ``model(x_t, t, labels)``; an ``nn.Module`` is put
            in eval mode for the sampling (dropout off) and back in the mode it was in afterwards.
        shape: (B, C, H, W) of the batch to draw.
        schedule: the schedule the model was trained with.
        method: ``"ddpm"`` (:func:`ddpm_step`, Algorithm 2) or ``"ddim"`` (:func:`ddim_step`).
        num_steps: how many network calls (default: T for DDPM, 50 for DDIM); fewer than T skips steps
            evenly (:func:`inference_timesteps`).
        eta: DDIM stochasticity (ignored by DDPM).
        labels: (B,) int64 class labels for a class-conditional model.
        guidance_scale: classifier-free guidance scale s (:func:`guided_epsilon`); 1 = no guidance.
        clip_x0: clip the predicted clean image to [-1, 1] at every step (stabilises small models).
        record: keep about this many intermediate states, evenly spaced, for "samples over time" plots (0: none).
        generator: random generator (on ``device``) for the starting noise and the step noise.
        device: where to sample (default: the model's device, else :func:`cvkit.runtime.pick_device`).

    Returns:
        :class:`SampleResult` with the final images and the recorded trajectory.

    Raises:
        ValueError: unknown ``method``, a bad ``shape`` or ``num_steps``, or labels of the wrong length.
    """
    if method not in ("ddpm", "ddim"):
        raise ValueError(f"unknown method {method!r}; choose one of ('ddpm', 'ddim')")
    if len(shape) != 4:
        raise ValueError(f"shape must be (B, C, H, W), got {shape}")
    if device is None:
        params = list(getattr(model, "parameters", lambda: [])())
        device = params[0].device if params else pick_device()
    device = torch.device(device)
    if labels is not None:
        labels = labels.to(device)
        if labels.shape != (shape[0],):
            raise ValueError(f"labels must have shape ({shape[0]},), got {tuple(labels.shape)}")
    was_training = isinstance(model, nn.Module) and model.training
    if was_training:
        model.eval()
    try:
        return _sample(
            model, shape, schedule, method, num_steps, eta, labels, guidance_scale, clip_x0, record, generator, device
        )
    finally:
        if was_training:
            model.train()


def _sample(
    model, shape, schedule, method, num_steps, eta, labels, guidance_scale, clip_x0, record, generator, device
) -> SampleResult:
    """The loop of :func:`sample`, with the arguments checked and the model in eval mode."""
    T = schedule.num_steps
    steps = inference_timesteps(T, num_steps or (T if method == "ddpm" else min(50, T)))
    sched = schedule.to(device)
    x = torch.randn(shape, generator=generator, device=device)
    keep = set(steps[:: max(1, len(steps) // record)]) | {steps[-1]} if record else set()
    recorded, states, x0s = [], [], []
    for i, t in enumerate(steps):
        prev_t = steps[i + 1] if i + 1 < len(steps) else -1
        tt = torch.full((shape[0],), t, dtype=torch.long, device=device)
        if labels is None:
            eps = model(x, tt)
        else:
            eps = guided_epsilon(model, x, tt, labels, guidance_scale)
        if method == "ddpm":
            x_next = ddpm_step(eps, x, t, sched, prev_t=prev_t, clip_x0=clip_x0, generator=generator)
        else:
            x_next = ddim_step(eps, x, t, prev_t, sched, eta=eta, clip_x0=clip_x0, generator=generator)
        if t in keep:
            recorded.append(prev_t)
            states.append(x_next.cpu())
            x0s.append(predict_x0(x, tt, eps, sched).clamp(-1, 1).cpu())
        x = x_next
    images = x.clamp(-1, 1)
    return SampleResult(
        images=images,
        timesteps=recorded,
        states=torch.stack(states) if states else None,
        x0_predictions=torch.stack(x0s) if x0s else None,
    )
