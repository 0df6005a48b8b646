r"""Position embeddings: attention is a set operation, so the order of tokens must be added to them.

Two kinds, both (1, N, D) tensors added to (B, N, D) tokens:

* learned (ViT, Dosovitskiy et al. 2021, eq. 1: :math:`\mathbf{E}_{pos} \in \mathbb{R}^{(N+1) \times D}`),
  one free vector per position, initialised from a truncated normal with std 0.02;
* fixed sinusoidal (Vaswani et al. 2017, section 3.5), in 1-D for sequences and in 2-D for patch grids
  (half of the channels encode the row, half the column, as in MAE and MoCo v3).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def sincos_position_embedding_1d(
    positions: int | torch.Tensor, dim: int, temperature: float = 10000.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""Sinusoidal embedding of 1-D positions (Vaswani et al. 2017, section 3.5).

    :math:`PE(p, 2i) = \sin(p / T^{2i/D})`, :math:`PE(p, 2i+1) = \cos(p / T^{2i/D})`, T = ``temperature``.

    Args:
        positions: N (positions 0..N-1) or a (N,) tensor of (possibly fractional) positions.
        dim: D, even.
        temperature: T; the longest wavelength is 2*pi*T.
        dtype: output dtype.

    Returns:
        (N, D) with interleaved sin (even channels) and cos (odd channels).

    Raises:
        ValueError: odd ``dim``.
    """
    if dim % 2:
        raise ValueError(f"dim must be even for sin/cos pairs, got {dim}")
    pos = torch.arange(positions, dtype=torch.float64) if isinstance(positions, int) else positions.double().flatten()
    omega = temperature ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (D/2,): 1 / T^(2i/D)
    angle = pos[:, None] * omega[None, :]  # (N, D/2)
    pe = torch.stack([angle.sin(), angle.cos()], dim=-1)  # (N, D/2, 2)
    return pe.reshape(pe.shape[0], dim).to(dtype)  # (N, D): sin, cos, sin, cos, ...


def sincos_position_embedding_2d(
    grid_size: int | tuple[int, int], dim: int, temperature: float = 10000.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Fixed 2-D sinusoidal embedding of a patch grid: the first D/2 channels encode the row, the last D/2 the column.

    Args:
        grid_size: (Gh, Gw) patches, or one int for a square grid.
        dim: D, divisible by 4.
        temperature: as in :func:`sincos_position_embedding_1d`.

    Returns:
        (Gh*Gw, D), row-major over the grid (the order :class:`cvkit.layers.PatchEmbed` produces).

    Raises:
        ValueError: ``dim`` not divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 (sin/cos for rows and for columns), got {dim}")
    gh, gw = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    rows = torch.arange(gh).repeat_interleave(gw)  # (Gh*Gw,): 0 0 0 1 1 1 ...
    cols = torch.arange(gw).repeat(gh)  # (Gh*Gw,): 0 1 2 0 1 2 ...
    return torch.cat(
        [
            sincos_position_embedding_1d(rows, dim // 2, temperature, dtype=dtype),
            sincos_position_embedding_1d(cols, dim // 2, temperature, dtype=dtype),
        ],
        dim=1,
    )  # (Gh*Gw, D)


class LearnedPositionEmbedding(nn.Module):
    """A learned vector per position, added to the tokens (ViT eq. 1): (B, N, D) -> (B, N, D).

    Args:
        num_tokens: N, including any class/distillation tokens.
        dim: D.
        std: initialisation (truncated normal, as in ViT and DeiT).

    Raises:
        ValueError: (in forward) tokens of another length or width.
    """

    def __init__(self, num_tokens: int, dim: int, std: float = 0.02) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, num_tokens, dim))  # (1, N, D)
        nn.init.trunc_normal_(self.weight, std=std, a=-2 * std, b=2 * std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _check_tokens(tokens, self.weight)
        return tokens + self.weight


class SinCosPositionEmbedding2d(nn.Module):
    """The fixed 2-D sinusoidal embedding of a patch grid, added to the tokens: (B, N, D) -> (B, N, D).

    Args:
        grid_size: (Gh, Gw) or an int.
        dim: D, divisible by 4.
        num_prefix_tokens: tokens before the patches (class, distillation); they get a zero embedding.
        temperature: see :func:`sincos_position_embedding_1d`.

    Raises:
        ValueError: (in forward) tokens of another length or width.
    """

    def __init__(
        self, grid_size: int | tuple[int, int], dim: int, num_prefix_tokens: int = 0, temperature: float = 10000.0
    ) -> None:
        super().__init__()
        grid = sincos_position_embedding_2d(grid_size, dim, temperature)  # (Gh*Gw, D)
        prefix = torch.zeros(num_prefix_tokens, dim)
        self.register_buffer("weight", torch.cat([prefix, grid])[None], persistent=False)  # (1, N, D)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _check_tokens(tokens, self.weight)
        return tokens + self.weight.to(tokens.dtype)


def _check_tokens(tokens: torch.Tensor, weight: torch.Tensor) -> None:
    if tokens.dim() != 3 or tokens.shape[1:] != weight.shape[1:]:
        raise ValueError(
            f"position embedding expects tokens (B, {weight.shape[1]}, {weight.shape[2]}), got {tuple(tokens.shape)}; "
            "was the model built for another image or patch size?"
        )
