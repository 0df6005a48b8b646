"""Registry entries of the DDPM noise predictors (lecture 12): the U-Net (:mod:`cvkit.diffusion.unet`) and the latent
MLP (:mod:`cvkit.diffusion.latent`)."""

from __future__ import annotations

from typing import Sequence

import torch

from cvkit.diffusion.latent import LatentDenoiser
from cvkit.diffusion.unet import DiffusionUNet
from cvkit.models.registry import register_model


def _example_inputs(batch_size: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch_size, 1, 28, 28, generator=g),
        torch.randint(0, 1000, (batch_size,), generator=g),
        torch.tensor([3, -1] * (batch_size // 2) + [3] * (batch_size % 2)),
    )


@register_model(
    "ddpm_unet",
    task="generation",
    example_inputs=_example_inputs,
    output_shape=(1, 28, 28),
    smoke_kwargs=dict(base_channels=16, num_classes=10),
    reference="Ho et al. 2020; Ho & Salimans 2022 (class conditioning)",
)
def ddpm_unet(
    in_channels: int = 1,
    base_channels: int = 32,
    channel_mults: Sequence[int] = (1, 2, 2),
    num_classes: int | None = None,
    attention: bool = True,
    dropout: float = 0.0,
) -> DiffusionUNet:
    """A small time-conditioned U-Net noise predictor for 28x28 images (optionally class-conditional)."""
    return DiffusionUNet(in_channels, base_channels, channel_mults, num_classes, attention, dropout)


def _latent_inputs(batch_size: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch_size, 16, 1, 1, generator=g),
        torch.randint(0, 1000, (batch_size,), generator=g),
        torch.tensor([3, -1] * (batch_size // 2) + [3] * (batch_size % 2)),
    )


@register_model(
    "latent_denoiser",
    task="generation",
    example_inputs=_latent_inputs,
    output_shape=(16, 1, 1),
    smoke_kwargs=dict(hidden=32, depth=1, num_classes=10),
    reference="Rombach et al. 2022 (latent diffusion)",
)
def latent_denoiser(
    latent_dim: int = 16, hidden: int = 256, depth: int = 3, num_classes: int | None = None
) -> LatentDenoiser:
    """An MLP noise predictor for (B, D, 1, 1) autoencoder latents (optionally class-conditional)."""
    return LatentDenoiser(latent_dim, hidden, depth, num_classes)
