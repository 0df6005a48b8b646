r"""Pictures for diffusion (lecture 12): noise schedules side by side, and what one of them leaves of an image at step t."""

from __future__ import annotations

from typing import Mapping

import torch

from cvkit.diffusion.forward import q_sample
from cvkit.diffusion.schedules import NoiseSchedule


def plot_schedules(
    schedules: Mapping[str, NoiseSchedule], x0: torch.Tensor, kind: str, t: int, noise: torch.Tensor | None = None
):
    r"""Three panels: :math:`\bar\alpha_t` of every schedule, their signal-to-noise ratio (log scale), and
    :math:`x_t \sim q(x_t \mid x_0)` under the schedule ``kind`` at step ``t`` (Ho et al. 2020, eq. 4).

    Args:
        schedules: ``{"name": NoiseSchedule}``, e.g. linear and cosine with the same T; the one named ``kind``
            is drawn thicker.
        x0: (1, C, H, W) or (C, H, W) float image scaled to [-1, 1].
        kind: which schedule noises the image.
        t: 0-based timestep in [0, T), marked on the curves.
        noise: the :math:`\epsilon` (shaped like ``x0``), fixed so that moving ``t`` shows the same noise growing
            (``None``: fresh noise).

    Returns:
        matplotlib Figure.

    Raises:
        KeyError: ``kind`` is not a key of ``schedules``.
        ValueError: ``t`` outside [0, T) of that schedule (from :func:`cvkit.diffusion.q_sample`).
    """
    import matplotlib.pyplot as plt

    if kind not in schedules:
        raise KeyError(f"kind must be one of {sorted(schedules)}, got {kind!r}")
    x0 = x0 if x0.dim() == 4 else x0[None]  # (1, C, H, W)
    if noise is not None and noise.dim() == 3:
        noise = noise[None]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for name, s in schedules.items():
        axes[0].plot(s.alphas_cumprod, label=name, lw=2 if name == kind else 1)
        axes[1].semilogy(s.snr, label=name, lw=2 if name == kind else 1)
    for ax in axes[:2]:
        ax.axvline(t, color="k", ls="--", lw=0.8)
        ax.set_xlabel("t")
        ax.legend()
    axes[0].set(title="alpha_bar_t (signal kept)", ylim=(0, 1))
    axes[1].set(title="signal-to-noise ratio")
    xt = q_sample(x0, t, schedules[kind], noise)[0]  # (C, H, W) in about [-1, 1]
    ab = schedules[kind].alphas_cumprod[t].item()
    axes[2].imshow(((xt + 1) / 2).clamp(0, 1).permute(1, 2, 0).squeeze(-1).cpu().numpy(), cmap="gray")
    axes[2].set_title(f"{kind}, t={t}: sqrt(alpha_bar)={ab**0.5:.2f}, noise std={(1 - ab) ** 0.5:.2f}", fontsize=9)
    axes[2].axis("off")
    fig.tight_layout()
    return fig


__all__ = ["plot_schedules"]
