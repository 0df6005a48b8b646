r"""Swin Transformer V2's three changes to the window block (Liu et al., "Swin Transformer V2: Scaling Up Capacity
and Resolution", CVPR 2022, section 3; lecture 07; seed 000, "Swin Transformer v2").

Scaling Swin to 3 billion parameters made training unstable: activations grew layer after layer (the residual
branches add up un-normalised) and a few attention logits dominated. V2 changes three things:

1. **Residual post-norm** (sec. 3.2): LayerNorm moves from the input of each residual branch to its output,
   :math:`x \leftarrow x + \mathrm{LN}(\mathrm{Attn}(x))`, so every branch adds a unit-scale signal.
2. **Scaled cosine attention** (sec. 3.2, eq. 2): :math:`\mathrm{Sim}(q_i, k_j) = \cos(q_i, k_j)/\tau + B_{ij}`,
   with a learned per-head temperature (here :math:`1/\tau = e^{s}`, :math:`s` clamped at :math:`\log 100`, as the
   reference code does). A cosine lies in [-1, 1], so a logit can never exceed :math:`1/\tau + \max B`, however large
   the activations get; a dot product grows with the square of their scale.
3. **Log-spaced continuous position bias** (sec. 3.3, eq. 3-4): instead of a table with one entry per offset, a small
   MLP maps the offset :math:`(\Delta x, \Delta y)` to the bias, and offsets are log-spaced,
   :math:`\widehat{\Delta x} = \mathrm{sign}(\Delta x)\log(1 + |\Delta x|)`, so a window larger than the one trained
   on asks the MLP to extrapolate only a little (:func:`extrapolation_ratio`: 0.33 from 8x8 to 16x16 windows,
   against 1.14 for linear offsets: the paper's numbers).

Tensors follow :mod:`cvkit.layers.window`: windows (B * nW, M*M, D), grids (B, H, W, D). The parameter layout
(one ``qkv`` linear, ``logit_scale``, ``cpb_mlp``) is torchvision's ``ShiftedWindowAttentionV2``, against which
the tests compare.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import StochasticDepth

from cvkit.layers.transformer import FeedForward
from cvkit.layers.window import (
    WindowAttention,
    grid_to_tokens,
    relative_position_index,
    shifted_window_mask,
    tokens_to_grid,
    window_partition,
    window_reverse,
)


def log_spaced(offsets: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{sign}(x)\log_2(1 + |x|)` elementwise (Swin V2 eq. 4; base 2 as in the reference code)."""
    return torch.sign(offsets) * torch.log2(1 + offsets.abs())


def extrapolation_ratio(trained_window: int, new_window: int, log: bool = True) -> float:
    r"""How far beyond the trained offsets a larger window's offsets reach: :math:`\max_{new}/\max_{trained} - 1`.

    Offsets in an M x M window range over :math:`[-(M-1), M-1]`. Swin V2 (sec. 3.3): from 8 to 16, linear offsets
    need a ratio of 15/7 - 1 = 1.14, log-spaced ones :math:`\log 16/\log 8 - 1 = 0.33`.

    Raises:
        ValueError: windows smaller than 2.
    """
    if trained_window < 2 or new_window < 2:
        raise ValueError(f"windows must be at least 2 tokens, got {trained_window} and {new_window}")
    a, b = torch.tensor(trained_window - 1.0, dtype=torch.float64), torch.tensor(new_window - 1.0, dtype=torch.float64)
    if log:
        a, b = log_spaced(a), log_spaced(b)
    return float(b / a - 1)


def relative_coordinates_table(window_size: int, pretrained_window_size: int | None = None) -> torch.Tensor:
    """The log-spaced inputs of the position-bias MLP, for every offset of an M x M window (torchvision's recipe).

    Offsets are divided by ``pretrained_window_size - 1`` (default M - 1), scaled to [-8, 8], log-spaced and divided by
    3 (= log2(8 + 1) rounded), so the trained range maps to about [-1, 1].

    Returns:
        ((2M-1)^2, 2) float32, rows in the order of :func:`cvkit.layers.window.relative_position_index`'s table.
    """
    m = window_size
    p = pretrained_window_size or window_size
    r = torch.arange(-(m - 1), m, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1)  # (2M-1, 2M-1, 2): (dy, dx)
    table = table / max(p - 1, 1) * 8
    return (log_spaced(table) / 3.0).reshape(-1, 2)  # ((2M-1)^2, 2)


class ContinuousPositionBias(nn.Module):
    """Swin V2's position bias: an MLP (2 -> 512 -> heads) of the log-spaced offset, squashed to (0, 16).

    Args:
        window_size: M. num_heads: h. pretrained_window_size: the window the MLP was trained on (for transfer).
        hidden: width of the MLP (512 in the paper).

    Returns (forward, no inputs):
        (h, M*M, M*M) float, :math:`16\\,\\sigma(\\mathrm{MLP}(\\widehat{\\Delta}))`.
    """

    def __init__(
        self, window_size: int, num_heads: int, pretrained_window_size: int | None = None, hidden: int = 512
    ) -> None:
        super().__init__()
        self.window_size, self.num_heads = window_size, num_heads
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, num_heads, bias=False))
        self.register_buffer(
            "coords", relative_coordinates_table(window_size, pretrained_window_size), persistent=False
        )
        self.register_buffer("index", relative_position_index(window_size), persistent=False)

    def forward(self) -> torch.Tensor:
        table = self.mlp(self.coords)  # ((2M-1)^2, h)
        return 16 * torch.sigmoid(table[self.index].permute(2, 0, 1))  # (h, M*M, M*M)


class CosineWindowAttention(nn.Module):
    r"""Window attention with scaled cosine similarity and a continuous position bias (Swin V2 eq. 2).

    Args:
        dim: D. window_size: M. num_heads: h.
        qkv_bias: learned biases on q and v (the key has none, as in the reference code).
        pretrained_window_size: see :class:`ContinuousPositionBias`.
        max_logit_scale: the clamp of :math:`1/\tau` (100).

    Shapes:
        windows (B * nW, M*M, D) and mask (nW, M*M, M*M) bool (True = may attend) -> (B * nW, M*M, D).
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        pretrained_window_size: int | None = None,
        max_logit_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.dim, self.window_size, self.num_heads, self.max_logit_scale = dim, window_size, num_heads, max_logit_scale
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        if qkv_bias:
            with torch.no_grad():
                self.qkv.bias[dim : 2 * dim].zero_()
        self.proj = nn.Linear(dim, dim)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))  # 1/tau = 10 at the start
        self.position_bias = ContinuousPositionBias(window_size, num_heads, pretrained_window_size)

    def logits(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Cosine logits :math:`\cos(q, k)/\tau` (no bias, no mask) and the values.

        Returns:
            logits (B*nW, h, N, N) and v (B*nW, h, N, D/h).
        """
        n = self.window_size**2
        if windows.dim() != 3 or windows.shape[1] != n or windows.shape[2] != self.dim:
            raise ValueError(f"expected windows (B*nW, {n}, {self.dim}), got {tuple(windows.shape)}")
        bias = self.qkv.bias
        if bias is not None:
            bias = torch.cat(
                [bias[: self.dim], torch.zeros_like(bias[self.dim : 2 * self.dim]), bias[2 * self.dim :]]
            )  # no key bias
        qkv = F.linear(windows, self.qkv.weight, bias)  # (B*nW, N, 3D)
        qkv = qkv.view(windows.shape[0], n, 3, self.num_heads, self.dim // self.num_heads).permute(
            2, 0, 3, 1, 4
        )  # (3, B*nW, h, N, D/h)
        q, k, v = qkv[0], qkv[1], qkv[2]
        cosine = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)  # (B*nW, h, N, N) in [-1, 1]
        scale = torch.clamp(self.logit_scale, max=math.log(self.max_logit_scale)).exp()  # (h, 1, 1): 1/tau
        return cosine * scale, v

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        logits, v = self.logits(windows)
        logits = logits + self.position_bias()  # (B*nW, h, N, N)
        if mask is not None:
            n_windows = mask.shape[0]
            logits = logits.view(-1, n_windows, *logits.shape[1:])  # (B, nW, h, N, N)
            logits = logits.masked_fill(~mask[None, :, None], float("-inf")).flatten(0, 1)  # (B*nW, h, N, N)
        out = logits.softmax(dim=-1) @ v  # (B*nW, h, N, D/h)
        out = out.transpose(1, 2).reshape(windows.shape[0], windows.shape[1], self.dim)  # (B*nW, N, D)
        return self.proj(out)


def dot_product_logits(attn: WindowAttention, windows: torch.Tensor) -> torch.Tensor:
    r"""The scaled dot-product logits :math:`q k^\top/\sqrt{d}` (no bias, no mask) of a Swin V1 :class:`WindowAttention`,
    for comparing their magnitude with :meth:`CosineWindowAttention.logits`.

    Returns:
        (B*nW, h, N, N) float.
    """
    mha = attn.attn
    b, n, _ = windows.shape
    q = mha.q_proj(windows).view(b, n, mha.num_heads, mha.head_dim).transpose(1, 2)  # (B*nW, h, N, d)
    k = mha.k_proj(windows).view(b, n, mha.num_heads, mha.head_dim).transpose(1, 2)  # (B*nW, h, N, d)
    return q @ k.transpose(-2, -1) / math.sqrt(mha.head_dim)


class SwinV2Block(nn.Module):
    """A Swin V2 block: (shifted) cosine window attention and an MLP, each with **residual post-norm**.

    :math:`x \\leftarrow x + \\mathrm{LN}(\\mathrm{Attn}(x))`, then :math:`x \\leftarrow x + \\mathrm{LN}(\\mathrm{MLP}(x))`
    (compare :class:`cvkit.layers.window.SwinBlock`'s pre-norm :math:`x + \\mathrm{Attn}(\\mathrm{LN}(x))`).

    Args:
        dim, num_heads, input_resolution, window_size, shift_size, mlp_ratio, drop_path, norm_eps: as in
            :class:`cvkit.layers.window.SwinBlock`.
        pretrained_window_size: see :class:`ContinuousPositionBias`.

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
        window_size: int = 8,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        *,
        drop_path: float = 0.0,
        norm_eps: float = 1e-5,
        pretrained_window_size: int | None = None,
    ) -> None:
        super().__init__()
        h, w = input_resolution
        if min(h, w) <= window_size:
            window_size, shift_size = min(h, w), 0
        if h % window_size or w % window_size:
            raise ValueError(f"input_resolution {input_resolution} must be divisible by window_size {window_size}")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.input_resolution, self.window_size, self.shift_size = (h, w), window_size, shift_size
        self.attn = CosineWindowAttention(dim, window_size, num_heads, pretrained_window_size=pretrained_window_size)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), "gelu", 0.0)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.reset_post_norms()
        self.drop_path = StochasticDepth(drop_path, mode="row")
        mask = shifted_window_mask((h, w), window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask, persistent=False)

    @torch.no_grad()
    def reset_post_norms(self) -> None:
        """Zero the post-norms' weights and biases, so the block starts as the identity (the reference code's
        ``_init_respostnorm``).

        With LayerNorm's default (weight 1, bias 0) every branch adds a unit-scale signal from the first step, even
        while its weights are still noise: in a small model trained briefly the branches' biases then dominate
        their outputs, LN turns them into the same vector for every token, and training stalls at chance (lecture
        07's shapes counting, 6 epochs: loss 1.099 = ln 3 throughout). From zero each branch grows in as it learns.
        """
        for norm in (self.norm1, self.norm2):
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """The (shifted) windows this block's attention sees: (B * nW, M*M, D)."""
        grid = tokens_to_grid(x, self.input_resolution)  # (B, H, W, D)
        if self.shift_size:
            grid = torch.roll(grid, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        return window_partition(grid, self.window_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        s = self.shift_size
        out = window_reverse(self.attn(self.windows(x), self.attn_mask), self.window_size, (h, w))  # (B, H, W, D)
        if s:
            out = torch.roll(out, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(self.norm1(grid_to_tokens(out)))  # post-norm: LN on the branch's output
        return x + self.drop_path(self.norm2(self.mlp(x)))
