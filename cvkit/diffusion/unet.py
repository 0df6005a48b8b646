r"""A small time-conditioned U-Net that predicts the noise in :math:`x_t` (the DDPM denoiser).

The architecture follows Ho et al. 2020 (appendix B), shrunk to train on Fashion-MNIST on a laptop:
residual blocks with GroupNorm and SiLU, the timestep fed to every block through a sinusoidal
embedding (Vaswani et al. 2017, sec. 3.5) and an MLP, one self-attention layer at the lowest
resolution, and skip connections from the encoder to the decoder (Ronneberger et al. 2015).
An optional class embedding is added to the time embedding; label -1 selects a learned "no class"
embedding, which classifier-free guidance needs (Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    r"""Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, sec. 3.5; Ho et al. 2020, appendix B).

    ``emb[:, i] = sin(t * w_i)`` and ``emb[:, half + i] = cos(t * w_i)`` with
    :math:`w_i = \text{max\_period}^{-i/\text{half}}`, ``half = dim // 2`` (diffusers'
    ``get_timestep_embedding`` with ``downscale_freq_shift=0``).

    Args:
        t: (B,) timesteps (int or float).
        dim: embedding width D (even).
        max_period: the longest wavelength.

    Returns:
        (B, D) float32.

    Raises:
        ValueError: ``t`` is not 1-D or ``dim`` is odd.
    """
    if t.dim() != 1:
        raise ValueError(f"t must be 1-D (B,), got shape {tuple(t.shape)}")
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )  # (half,)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, D)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the (time + class) embedding added in between; a 1x1 skip when widths differ.

    Shapes: x (B, C_in, H, W), emb (B, E) -> (B, C_out, H, W).
    """

    def __init__(
        self, in_channels: int, out_channels: int, emb_dim: int, groups: int = 8, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, in_channels), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(min(groups, out_channels), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = (
            h + self.emb(F.silu(emb))[:, :, None, None]
        )  # (B, C_out, 1, 1): the step tells every pixel how much noise to expect
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the H*W positions of a feature map (``nn.MultiheadAttention``), residual.

    Shapes: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, heads: int = 4, groups: int = 8) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(groups, channels), channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        out, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        return x + out.transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)


class DiffusionUNet(nn.Module):
    r"""The noise predictor :math:`\epsilon_\theta(x_t, t[, y])`.

    Args:
        in_channels: C of the images (1 for Fashion-MNIST).
        base_channels: width of the first level; level i has ``base_channels * channel_mults[i]``.
        channel_mults: one entry per resolution; the image is halved between levels (28 -> 14 -> 7 for three).
        num_classes: K for a class-conditional model (labels in [0, K), -1 = no class); ``None``: unconditional.
        attention: add self-attention at the lowest resolution.
        dropout: dropout inside the residual blocks.

    Shapes:
        x (B, C, H, W) float in about [-1, 1]; t (B,) int64 in [0, T); y (B,) int64 or ``None``.
        Output (B, C, H, W): the predicted noise.

    Raises:
        ValueError: labels given to an unconditional model, or bad shapes.
    """

    def __init__(
        self,
        in_channels: int = 1,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_classes: int | None = None,
        attention: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        emb_dim = 4 * base_channels
        self.base_channels = base_channels
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # index num_classes is the learned "no class" embedding used by classifier-free guidance
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        widths = [base_channels * m for m in channel_mults]
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        ch = base_channels
        for i, w in enumerate(widths):
            self.down_blocks.append(ResBlock(ch, w, emb_dim, dropout=dropout))
            ch = w
            last = i == len(widths) - 1
            self.downsamples.append(nn.Identity() if last else nn.Conv2d(w, w, 3, stride=2, padding=1))
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout=dropout)
        self.mid_attn = SelfAttention2d(ch) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout=dropout)
        self.up_blocks = nn.ModuleList()
        for w in reversed(widths):
            self.up_blocks.append(ResBlock(ch + w, w, emb_dim, dropout=dropout))
            ch = w
        self.out_norm = nn.GroupNorm(min(8, ch), ch)
        self.out = nn.Conv2d(ch, in_channels, 3, padding=1)

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The (B, 4 * base_channels) conditioning vector: time MLP, plus the class embedding."""
        emb = self.time_mlp(timestep_embedding(t, self.base_channels))
        if self.class_emb is not None:
            if y is None:
                y = torch.full_like(t, -1)
            y = torch.where(y < 0, torch.full_like(y, self.num_classes), y)  # -1 -> the "no class" row
            emb = emb + self.class_emb(y)
        elif y is not None:
            raise ValueError(
                "this U-Net is unconditional (num_classes=None) but labels were given; build it with num_classes=K"
            )
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        emb = self.embed(t, y)
        h = self.stem(x)
        skips = []
        for block, down in zip(self.down_blocks, self.downsamples):
            h = block(h, emb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for block in self.up_blocks:
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")  # back to the skip's resolution
            h = block(torch.cat([h, skip], dim=1), emb)  # (B, C + C_skip, H, W) -> (B, C_skip, H, W)
        return self.out(F.silu(self.out_norm(h)))
