r"""Random Fourier features: the positional encoding SAM uses for image positions, points and boxes.

Tancik et al. 2020 ("Fourier Features Let Networks Learn High Frequency Functions", eq. 5) map a
coordinate :math:`v \in [0, 1]^2` to :math:`\gamma(v) = [\sin(2\pi B v'), \cos(2\pi B v')]` with a
fixed random Gaussian matrix :math:`B \in \mathbb R^{D/2 \times 2}` (here :math:`v' = 2v - 1`, as in
SAM's ``PositionEmbeddingRandom``). Unlike a learned table it works at any resolution and for
continuous click positions, and nearby positions get similar codes (so attention can compare them).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class RandomFourierEncoding(nn.Module):
    """Encode 2-D positions with random Fourier features.

    Args:
        dim: output width D (even).
        scale: standard deviation of the Gaussian frequencies (larger: finer spatial detail).
        seed: seed of the frequency matrix (a buffer, saved with the model, never trained).

    Raises:
        ValueError: odd ``dim``.
    """

    def __init__(self, dim: int = 64, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("frequencies", scale * torch.randn(2, dim // 2, generator=g))  # (2, D/2)

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        r""":math:`[\sin(2\pi (2v-1) B), \cos(2\pi (2v-1) B)]` for coordinates normalised to [0, 1].

        Args:
            coords: (..., 2) float, (x, y) in [0, 1].

        Returns:
            (..., D) float32.
        """
        v = (2 * coords.float() - 1) @ self.frequencies  # (..., D/2)
        v = 2 * math.pi * v
        return torch.cat([v.sin(), v.cos()], dim=-1)

    def forward_points(self, points: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Encode pixel coordinates.

        Args:
            points: (B, N, 2) float, (x, y) in pixels of an image of ``image_size`` = (H, W); the
                pixel centre convention is the caller's (the prompt encoder adds 0.5).

        Returns:
            (B, N, D).
        """
        h, w = image_size
        scale = torch.tensor([w, h], dtype=torch.float32, device=points.device)
        return self.encode(points.float() / scale)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """The encoding of every cell centre of an h x w grid: (D, h, w) (the image embedding's positions)."""
        device = self.frequencies.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)  # (h, w, D) -> (D, h, w)
