r"""Latent diffusion (Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022;
lecture 12).

Pixel-space diffusion runs a U-Net over every pixel at every one of its many sampling steps. Latent diffusion splits
the work in two: an autoencoder, trained once, compresses an image to a small latent :math:`z = E(x)` and back
:math:`x \approx D(z)`; the diffusion model then learns :math:`p(z)` with exactly the DDPM of
:mod:`cvkit.diffusion` (the same schedule, loss and samplers), and a sample is decoded **once** at the end.

Here the latent is the 16-number code of lecture 12's :class:`cvkit.models.autoencoder.ConvAutoencoder`, so the noise
predictor is a small MLP (:class:`LatentDenoiser`) instead of a U-Net. Latents are standardised first
(:class:`LatentScaler`; the paper rescales by one factor, "so the latent space has unit variance", sec. 4.3.2), since
the schedule assumes data of unit scale. The sampler sees each latent as a (B, D, 1, 1) "image".
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.diffusion.unet import timestep_embedding


class LatentScaler:
    """Standardise latents per dimension, :math:`(z - \\mu)/\\sigma`, and undo it.

    Args:
        latents: (N, D) the training latents the statistics come from.

    Raises:
        ValueError: not (N, D) with N >= 2.
    """

    def __init__(self, latents: torch.Tensor) -> None:
        if latents.dim() != 2 or latents.shape[0] < 2:
            raise ValueError(f"latents must be (N, D) with N >= 2, got {tuple(latents.shape)}")
        self.mean = latents.mean(0)
        self.std = latents.std(0).clamp_min(1e-6)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) latents -> standardised (N, D, 1, 1), what the diffusion model sees."""
        return ((z - self.mean.to(z)) / self.std.to(z))[:, :, None, None]

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised (N, D, 1, 1) or (N, D) -> latents (N, D) for the decoder."""
        return z.flatten(1) * self.std.to(z) + self.mean.to(z)


class LatentDenoiser(nn.Module):
    r"""The noise predictor :math:`\epsilon_\theta(z_t, t[, y])` for vector latents: an MLP with a sinusoidal time
    embedding (and a class embedding, with an extra "no class" entry for classifier-free guidance).

    Args:
        latent_dim: D. hidden: width of the MLP. depth: hidden layers.
        num_classes: K for a class-conditional model (label -1 means "no class"), ``None`` for unconditional.

    Shapes:
        ``forward(z_t (B, D, 1, 1), t (B,) int64[, y (B,) int64])`` -> (B, D, 1, 1).

    Raises:
        ValueError: an input that is not (B, D, 1, 1), or labels for an unconditional model.
    """

    def __init__(self, latent_dim: int = 16, hidden: int = 256, depth: int = 3, num_classes: int | None = None) -> None:
        super().__init__()
        self.latent_dim, self.hidden, self.num_classes = latent_dim, hidden, num_classes
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(num_classes + 1, hidden) if num_classes else None  # last row: "no class"
        self.inp = nn.Linear(latent_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)
        )
        self.out = nn.Linear(hidden, latent_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1:] != (self.latent_dim, 1, 1):
            raise ValueError(f"expected latents (B, {self.latent_dim}, 1, 1), got {tuple(z.shape)}")
        emb = self.time(timestep_embedding(t, self.hidden))  # (B, hidden)
        if y is not None:
            if self.label is None:
                raise ValueError("labels given to an unconditional LatentDenoiser (build it with num_classes)")
            emb = emb + self.label(torch.where(y < 0, torch.full_like(y, self.num_classes), y))
        h = self.inp(z.flatten(1)) + emb
        for block in self.blocks:
            h = h + block(h) + emb  # residual MLP, the step (and class) added at every layer
        return self.out(F.silu(h))[:, :, None, None]


@torch.no_grad()
def encode_latents(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Run ``encoder`` (eval mode, restored) over ``images`` in batches on the encoder's device.

    Args:
        encoder: images -> (B, D) (e.g. ``ConvAutoencoder.encode``'s module, or any callable module).
        images: (N, C, H, W) float as the encoder expects.

    Returns:
        (N, D) float latents on the CPU.
    """
    device = next(encoder.parameters()).device
    was = encoder.training
    encoder.eval()
    try:
        return torch.cat(
            [encoder(images[i : i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
        )
    finally:
        encoder.train(was)
