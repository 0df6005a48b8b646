r"""Swin's shifted-window attention (Liu et al. 2021, "Swin Transformer", section 3.2).

Global attention over N tokens costs O(N^2). Swin attends only inside non-overlapping M x M windows
(W-MSA: cost linear in N), and every second block shifts the windows by (M/2, M/2) so information
crosses window borders (SW-MSA). The shift is done as a cyclic roll of the token grid; a window that
then holds tokens from opposite edges of the image gets a mask that keeps them from attending to each
other (paper Fig. 4). A learned relative position bias B (eq. 4) is added to the logits:

.. math::  \mathrm{Attention}(Q, K, V) = \mathrm{SoftMax}(Q K^\top / \sqrt{d} + B) V

Layouts: tokens (B, N, D) with N = H * W in row-major order; the same tokens on their grid are
(B, H, W, D) (:func:`tokens_to_grid`); windows are token sequences (B * nW, M*M, D), windows in
row-major order per image and tokens in row-major order per window.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.ops import StochasticDepth

from cvkit.layers.attention import MultiHeadAttention
from cvkit.layers.transformer import FeedForward


def tokens_to_grid(tokens: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
    """(B, H*W, D) row-major tokens -> (B, H, W, D) grid.

    Raises:
        ValueError: N is not H * W.
    """
    h, w = grid_size
    if tokens.dim() != 3 or tokens.shape[1] != h * w:
        raise ValueError(f"expected tokens (B, {h * w}, D) for a {h}x{w} grid, got {tuple(tokens.shape)}")
    return tokens.reshape(tokens.shape[0], h, w, tokens.shape[2])  # (B, H, W, D)


def grid_to_tokens(grid: torch.Tensor) -> torch.Tensor:
    """(B, H, W, D) grid -> (B, H*W, D) row-major tokens.

    Raises:
        ValueError: not 4-D.
    """
    if grid.dim() != 4:
        raise ValueError(f"expected a token grid (B, H, W, D), got {tuple(grid.shape)}")
    b, h, w, d = grid.shape
    return grid.reshape(b, h * w, d)  # (B, H*W, D)


def window_partition(grid: torch.Tensor, window_size: int) -> torch.Tensor:
    """Cut a token grid into non-overlapping M x M windows (Swin; MaxViT's block partition).

    Args:
        grid: (B, H, W, D), H and W divisible by M.
        window_size: M.

    Returns:
        (B * nW, M*M, D), nW = (H/M)(W/M): window (b, i, j) is row ``b * nW + i * (W/M) + j``.

    Raises:
        ValueError: not 4-D, or H or W not divisible by M.
    """
    b, h, w, d = _check_grid(grid, window_size, "window_size")
    m = window_size
    x = grid.reshape(b, h // m, m, w // m, m, d)  # (B, H/M, M, W/M, M, D)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (B, H/M, W/M, M, M, D)
    return x.reshape(b * (h // m) * (w // m), m * m, d)  # (B*nW, M*M, D)


def window_reverse(windows: torch.Tensor, window_size: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, M*M, D) windows -> (B, H, W, D) grid.

    Raises:
        ValueError: the shapes do not fit ``grid_size`` and M.
    """
    h, w = grid_size
    m = window_size
    b, d = _check_groups(windows, m, grid_size, "windows", "window_size")
    x = windows.reshape(b, h // m, w // m, m, m, d)  # (B, H/M, W/M, M, M, D)
    x = x.permute(0, 1, 3, 2, 4, 5)  # (B, H/M, M, W/M, M, D)
    return x.reshape(b, h, w, d)  # (B, H, W, D)


def shifted_window_mask(
    grid_size: tuple[int, int], window_size: int, shift_size: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Which tokens may attend to each other inside each window after the cyclic shift (Swin, Fig. 4).

    After rolling the grid by (-s, -s), the last row and column of windows hold tokens from
    both ends of the image. Label the grid with the regions [0, H-M), [H-M, H-s), [H-s, H) in each
    axis (3 x 3 = 9 labels); two tokens of a window may attend to each other iff their labels match.

    Args:
        grid_size: (H, W) of the token grid, divisible by M.
        window_size: M.
        shift_size: s, 0 <= s < M (Swin uses M // 2); 0 gives an all-True mask.
        device: where to build it.

    Returns:
        (nW, M*M, M*M) bool, True where query i may attend to key j, windows in the order of
        :func:`window_partition`.

    Raises:
        ValueError: sizes not divisible, or s outside [0, M).
    """
    h, w = grid_size
    m, s = window_size, shift_size
    if h % m or w % m:
        raise ValueError(f"grid_size {grid_size} must be divisible by window_size {m}")
    if not 0 <= s < m:
        raise ValueError(f"shift_size must be in [0, window_size={m}), got {s}")
    labels = torch.zeros(1, h, w, 1, device=device)  # (1, H, W, 1): region label of every token
    label = 0
    for rows in (slice(0, h - m), slice(h - m, h - s), slice(h - s, h)):
        for cols in (slice(0, w - m), slice(w - m, w - s), slice(w - s, w)):
            labels[:, rows, cols, :] = label
            label += 1
    windows = window_partition(labels, m).squeeze(-1)  # (nW, M*M)
    return windows[:, :, None] == windows[:, None, :]  # (nW, M*M, M*M)


def relative_position_index(window_size: int) -> torch.Tensor:
    """Index into the (2M-1)^2-entry bias table for every (query, key) pair of an M x M window (Swin eq. 4).

    The offset (dy, dx) in [-(M-1), M-1]^2 maps to (dy + M - 1) * (2M - 1) + (dx + M - 1).

    Returns:
        (M*M, M*M) int64.
    """
    m = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(m), torch.arange(m), indexing="ij")).flatten(
        1
    )  # (2, M*M): (row, col) per token
    offset = coords[:, :, None] - coords[:, None, :]  # (2, M*M, M*M): query minus key
    offset = offset + (m - 1)  # shift each axis into [0, 2M-2]
    return offset[0] * (2 * m - 1) + offset[1]  # (M*M, M*M)


class RelativePositionBias(nn.Module):
    """A learned bias per head and per relative offset inside an M x M window (Swin eq. 4; MaxViT).

    Args:
        window_size: M.
        num_heads: h.

    Returns (forward, no inputs):
        (h, M*M, M*M) float, ``table[index]`` rearranged per head.
    """

    def __init__(self, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))  # ((2M-1)^2, h)
        nn.init.trunc_normal_(self.table, std=0.02)
        self.register_buffer("index", relative_position_index(window_size), persistent=False)  # (M*M, M*M)

    def forward(self) -> torch.Tensor:
        return self.table[self.index].permute(2, 0, 1)  # (M*M, M*M, h) -> (h, M*M, M*M)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, with a relative position bias and an optional window mask.

    Args:
        dim: D.
        window_size: M.
        num_heads: h.
        qkv_bias, attn_drop, proj_drop: as in :class:`cvkit.layers.MultiHeadAttention`.

    Shapes:
        windows (B * nW, M*M, D) and mask (nW, M*M, M*M) bool (True = may attend; from
        :func:`shifted_window_mask`) -> (B * nW, M*M, D).
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = MultiHeadAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop)
        self.position_bias = RelativePositionBias(window_size, num_heads)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend within each window.

        Raises:
            ValueError: windows not (B*nW, M*M, D), or a mask whose window count does not divide the batch.
        """
        n = self.window_size**2
        if windows.dim() != 3 or windows.shape[1] != n:
            raise ValueError(
                f"expected windows (B*nW, {n}, D) for window_size {self.window_size}, got {tuple(windows.shape)}"
            )
        bias = self.position_bias()  # (h, N, N)
        if mask is None:
            return self.attn(windows, attn_mask=bias)
        n_windows = mask.shape[0]
        if mask.shape[1:] != (n, n) or windows.shape[0] % n_windows:
            raise ValueError(
                f"mask must be (nW, {n}, {n}) with nW dividing {windows.shape[0]}, got {tuple(mask.shape)}"
            )
        blocked = torch.zeros(mask.shape, dtype=bias.dtype, device=bias.device).masked_fill(
            ~mask, float("-inf")
        )  # (nW, N, N)
        full = bias[None] + blocked[:, None]  # (nW, h, N, N)
        b = windows.shape[0] // n_windows
        full = full.expand(b, *full.shape).reshape(b * n_windows, *full.shape[1:])  # (B*nW, h, N, N)
        return self.attn(windows, attn_mask=full)


class SwinBlock(nn.Module):
    """One Swin transformer block: (shifted) window attention and an MLP, pre-norm, with residuals (Swin eq. 3).

    Args:
        dim: D.
        num_heads: h.
        input_resolution: (H, W) of the token grid this block sees.
        window_size: M; clipped to min(H, W) when the grid is smaller (then no shift, as in the paper's code).
        shift_size: s (0 for W-MSA, M // 2 for SW-MSA).
        mlp_ratio: MLP hidden width / D.
        qkv_bias, drop, attn_drop, drop_path: as in :class:`cvkit.layers.TransformerBlock`.
        norm_eps: LayerNorm epsilon (Swin: 1e-5).

    Shapes:
        (B, H*W, D) -> (B, H*W, D).

    Raises:
        ValueError: H or W not divisible by the window size, or a bad shift.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        input_resolution: tuple[int, int],
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        *,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        h, w = input_resolution
        if min(h, w) <= window_size:  # one window covers the grid: nothing to shift
            window_size, shift_size = min(h, w), 0
        if h % window_size or w % window_size:
            raise ValueError(
                f"input_resolution {input_resolution} must be divisible by window_size {window_size}; pad the image or change the window"
            )
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.input_resolution, self.window_size, self.shift_size = (h, w), window_size, shift_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = StochasticDepth(drop_path, mode="row")
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), "gelu", drop)
        mask = shifted_window_mask((h, w), window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask, persistent=False)  # (nW, M*M, M*M) bool or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        m, s = self.window_size, self.shift_size
        grid = tokens_to_grid(self.norm1(x), (h, w))  # (B, H, W, D)
        if s:
            grid = torch.roll(grid, shifts=(-s, -s), dims=(1, 2))  # cyclic shift: windows now straddle the old borders
        windows = self.attn(window_partition(grid, m), self.attn_mask)  # (B*nW, M*M, D)
        grid = window_reverse(windows, m, (h, w))  # (B, H, W, D)
        if s:
            grid = torch.roll(grid, shifts=(s, s), dims=(1, 2))  # undo the shift
        x = x + self.drop_path(grid_to_tokens(grid))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def extra_repr(self) -> str:
        return f"input_resolution={self.input_resolution}, window_size={self.window_size}, shift_size={self.shift_size}"


def _check_groups(groups: torch.Tensor, size: int, grid_size: tuple[int, int], what: str, name: str) -> tuple[int, int]:
    """Check (B * G, size*size, D) token groups against an (H, W) grid; return (B, D)."""
    h, w = grid_size
    if h % size or w % size:
        raise ValueError(f"grid_size {grid_size} must be divisible by {name} {size}")
    n_groups = (h // size) * (w // size)
    if groups.dim() != 3 or groups.shape[1] != size * size or groups.shape[0] % n_groups:
        raise ValueError(
            f"expected {what} (B*{n_groups}, {size * size}, D) for a {h}x{w} grid, got {tuple(groups.shape)}"
        )
    return groups.shape[0] // n_groups, groups.shape[2]


def _check_grid(grid: torch.Tensor, size: int, name: str) -> tuple[int, int, int, int]:
    if not isinstance(grid, torch.Tensor) or grid.dim() != 4:
        shape = tuple(grid.shape) if isinstance(grid, torch.Tensor) else type(grid).__name__
        raise ValueError(f"expected a token grid (B, H, W, D), got {shape}; use tokens_to_grid(tokens, (H, W))")
    b, h, w, d = grid.shape
    if size < 1 or h % size or w % size:
        raise ValueError(f"grid {h}x{w} is not divisible by {name}={size}; pad the grid or choose another size")
    return b, h, w, d
