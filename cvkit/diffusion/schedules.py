r"""Noise schedules: the variances :math:`\beta_t` of the forward process and everything derived from them.

DDPM (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", sec. 4) adds Gaussian noise in
:math:`T` small steps, :math:`q(x_t \mid x_{t-1}) = \mathcal N(\sqrt{1-\beta_t}\,x_{t-1}, \beta_t I)`.
Two schedules are taught:

* **linear** (Ho et al. 2020, sec. 4): :math:`\beta_t` rises linearly from :math:`10^{-4}` to
  :math:`0.02` over :math:`T = 1000` steps.
* **cosine** (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models", eq. 17):
  :math:`\bar\alpha_t = f(t)/f(0)` with :math:`f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\cdot\frac{\pi}{2}\big)`,
  :math:`s = 0.008`, and :math:`\beta_t = \min(1 - \bar\alpha_t/\bar\alpha_{t-1}, 0.999)`. It destroys
  information more slowly at the start, so fewer steps are wasted on almost-pure noise.

Indices here are 0-based like diffusers': ``betas[0]`` is the paper's :math:`\beta_1`, and
``alphas_cumprod[t]`` is :math:`\bar\alpha_{t+1} = \prod_{s \le t} (1 - \beta_s)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleKind = Literal["linear", "cosine"]
SCHEDULES = ("linear", "cosine")


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    r"""The linear schedule of Ho et al. 2020 (sec. 4): ``torch.linspace(beta_start, beta_end, num_steps)``.

    Args:
        num_steps: T, the number of diffusion steps (>= 1).
        beta_start, beta_end: :math:`\beta_1` and :math:`\beta_T`, with 0 < start <= end < 1.

    Returns:
        (T,) float64 tensor of betas.

    Raises:
        ValueError: ``num_steps < 1`` or betas outside (0, 1) or decreasing.
    """
    _check_steps(num_steps)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {beta_start} and {beta_end}")
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def cosine_alpha_bar(t: torch.Tensor | float, s: float = 0.008) -> torch.Tensor:
    r""":math:`f(t) = \cos^2\big(\frac{t + s}{1 + s}\frac{\pi}{2}\big)` for t in [0, 1] (Nichol & Dhariwal 2021, eq. 17).

    Returns:
        float64 tensor of the same shape as ``t`` (unnormalised: ``f(0)`` is slightly below 1).
    """
    t = torch.as_tensor(t, dtype=torch.float64)
    return torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2


def cosine_betas(num_steps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    r"""The cosine schedule of Nichol & Dhariwal 2021 (eq. 17 and the clipping that follows it).

    :math:`\beta_t = \min\big(1 - f(t/T) / f((t-1)/T),\ \text{max\_beta}\big)` for t = 1..T, so that
    :math:`\bar\alpha_t = f(t/T)/f(0)` up to the clipping near :math:`t = T`.

    Args:
        num_steps: T (>= 1).
        s: small offset that keeps :math:`\beta_1` from being tiny (the paper's 0.008).
        max_beta: upper clip (0.999 in the paper) that prevents a singularity at t = T.

    Returns:
        (T,) float64 tensor of betas.

    Raises:
        ValueError: ``num_steps < 1``, ``s < 0`` or ``max_beta`` outside (0, 1).
    """
    _check_steps(num_steps)
    if s < 0 or not 0 < max_beta < 1:
        raise ValueError(f"need s >= 0 and 0 < max_beta < 1, got s={s}, max_beta={max_beta}")
    grid = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # t/T for t = 0..T
    f = cosine_alpha_bar(grid, s)
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


@dataclass(frozen=True)
class NoiseSchedule:
    r"""A beta schedule and the quantities DDPM/DDIM read from it, all (T,) float32 tensors.

    Attributes:
        betas: :math:`\beta_t`, the variance added at step t.
        alphas: :math:`\alpha_t = 1 - \beta_t`.
        alphas_cumprod: :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` (signal fraction left at step t).
        alphas_cumprod_prev: :math:`\bar\alpha_{t-1}`, with :math:`\bar\alpha_0 = 1` prepended.
        kind: ``"linear"``, ``"cosine"`` or ``"custom"``.

    Build with :func:`make_schedule` (or ``NoiseSchedule.from_betas``). Index with 0-based integer
    timesteps ``t`` in [0, T).
    """

    betas: torch.Tensor
    alphas: torch.Tensor
    alphas_cumprod: torch.Tensor
    alphas_cumprod_prev: torch.Tensor
    kind: str = "custom"

    @classmethod
    def from_betas(cls, betas: torch.Tensor, kind: str = "custom") -> "NoiseSchedule":
        """Derive every quantity from (T,) betas in (0, 1) (computed in float64, stored as float32).

        Raises:
            ValueError: betas not 1-D or outside (0, 1).
        """
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or betas.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("every beta must lie in (0, 1)")
        alphas = 1 - betas
        cumprod = torch.cumprod(alphas, dim=0)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), cumprod[:-1]])
        f32 = lambda x: x.to(torch.float32)  # noqa: E731
        return cls(f32(betas), f32(alphas), f32(cumprod), f32(prev), kind)

    @property
    def num_steps(self) -> int:
        """T, the number of diffusion steps."""
        return int(self.betas.numel())

    def __len__(self) -> int:
        return self.num_steps

    @property
    def snr(self) -> torch.Tensor:
        r"""Signal-to-noise ratio :math:`\bar\alpha_t / (1 - \bar\alpha_t)` per step, (T,) float32."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    @property
    def posterior_variance(self) -> torch.Tensor:
        r""":math:`\tilde\beta_t = \frac{1 - \bar\alpha_{t-1}}{1 - \bar\alpha_t}\beta_t` (Ho et al. 2020, eq. 7), (T,) float32."""
        return (1 - self.alphas_cumprod_prev) / (1 - self.alphas_cumprod) * self.betas

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """The same schedule with every tensor on ``device``."""
        return NoiseSchedule(
            *(getattr(self, n).to(device) for n in ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev")),
            kind=self.kind,
        )

    def __repr__(self) -> str:
        ab = self.alphas_cumprod
        return f"NoiseSchedule({self.kind!r}, T={self.num_steps}, alpha_bar from {ab[0]:.4f} to {ab[-1]:.2e})"


def make_schedule(kind: ScheduleKind = "linear", num_steps: int = 1000, **kwargs) -> NoiseSchedule:
    """Build a :class:`NoiseSchedule`.

    Args:
        kind: ``"linear"`` (:func:`linear_betas`) or ``"cosine"`` (:func:`cosine_betas`).
        num_steps: T.
        **kwargs: passed to the beta function (``beta_start``/``beta_end``, or ``s``/``max_beta``).

    Raises:
        ValueError: unknown ``kind`` (choose one of ``SCHEDULES``) or bad arguments.
    """
    if kind == "linear":
        betas = linear_betas(num_steps, **kwargs)
    elif kind == "cosine":
        betas = cosine_betas(num_steps, **kwargs)
    else:
        raise ValueError(f"unknown schedule {kind!r}; choose one of {SCHEDULES}")
    return NoiseSchedule.from_betas(betas, kind)


def _check_steps(num_steps: int) -> None:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
