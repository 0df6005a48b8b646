"""Pictures of how Swin and MaxViT group tokens: windows, shifted windows, the shift mask, blocks and grids.

Every picture is computed from the kit's own functions (:func:`cvkit.layers.window_partition`,
:func:`cvkit.layers.shifted_window_mask`, :func:`cvkit.layers.grid_partition`), so what you see is
what the layers do.
"""

from __future__ import annotations

import numpy as np
import torch

from cvkit.layers.maxvit import block_partition, grid_partition
from cvkit.layers.window import shifted_window_mask, window_partition
from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.images import to_display


def group_ids(partition, grid_size: tuple[int, int], size: int) -> torch.Tensor:
    """Which group (window, block, grid group) every token of an (H, W) grid lands in under ``partition``.

    Args:
        partition: a function ``(B, H, W, C) grid, size -> (B * groups, tokens, C)`` such as
            :func:`cvkit.layers.window_partition` or :func:`cvkit.layers.grid_partition`.
        grid_size: (H, W).
        size: its size argument.

    Returns:
        (H, W) int64 group index.
    """
    h, w = grid_size
    index = torch.arange(h * w, dtype=torch.float32).view(1, h, w, 1)
    groups = partition(index, size)[..., 0].long()  # (groups, tokens): token indices per group
    ids = torch.empty(h * w, dtype=torch.long)
    for g, members in enumerate(groups):
        ids[members] = g
    return ids.view(h, w)


def _draw_groups(
    ax, ids: np.ndarray, image: torch.Tensor | None, title: str, alpha: float = 0.45, numbers: np.ndarray | None = None
) -> None:
    h, w = ids.shape
    colours = PALETTE[ids % len(PALETTE)]  # (H, W, 3)
    if image is not None:
        ax.imshow(to_display(image), extent=(0, w, h, 0), cmap="gray")
        ax.imshow(colours, extent=(0, w, h, 0), alpha=alpha)
    else:
        ax.imshow(colours, extent=(0, w, h, 0))
    for y in range(h + 1):
        ax.axhline(y, c="white", lw=0.4)
    for x in range(w + 1):
        ax.axvline(x, c="white", lw=0.4)
    if numbers is not None:
        for y in range(h):
            for x in range(w):
                ax.text(x + 0.5, y + 0.5, str(numbers[y, x]), ha="center", va="center", fontsize=8, color="black")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _outline_windows(ax, h: int, w: int, m: int, offset: int = 0, colour: str = "black") -> None:
    for y in range(-offset, h + 1, m):
        if 0 <= y <= h:
            ax.axhline(y, c=colour, lw=2)
    for x in range(-offset, w + 1, m):
        if 0 <= x <= w:
            ax.axvline(x, c=colour, lw=2)


def show_shifted_windows(
    grid_size: tuple[int, int] = (8, 8),
    window_size: int = 4,
    shift_size: int | None = None,
    image: torch.Tensor | None = None,
):
    """Swin's windows step by step (paper Figs. 2 and 4), in four panels.

    1. W-MSA: the regular M x M windows on the token grid.
    2. SW-MSA: the windows moved by (s, s): at the borders they are cut into smaller pieces.
    3. The cyclic shift: rolling the grid by (-s, -s) packs the pieces into M x M windows again;
       numbers are the regions of :func:`cvkit.layers.shifted_window_mask` (tokens may attend only
       within their region).
    4. The attention mask of every window after the shift (white: may attend).

    Args:
        grid_size: (H, W) tokens, divisible by M.
        window_size: M.
        shift_size: s (default M // 2).
        image: optional (C, H', W') image drawn under panels 1-2 (stretched over the grid).

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    h, w = grid_size
    m = window_size
    s = m // 2 if shift_size is None else shift_size
    regular = group_ids(window_partition, (h, w), m).numpy()
    # shifted windows in image coordinates: window of token (y, x) after rolling by -s
    rolled_y = (np.arange(h)[:, None] - s) % h
    rolled_x = (np.arange(w)[None, :] - s) % w
    shifted = regular[rolled_y, rolled_x]  # the window each original token falls in after the roll
    # pieces: split the shifted windows where they wrap around
    piece = shifted * 4 + 2 * (np.arange(h)[:, None] < s) + (np.arange(w)[None, :] < s)
    _, piece = np.unique(piece, return_inverse=True)
    piece = piece.reshape(h, w)
    # region labels of shifted_window_mask, on the rolled grid
    region = np.zeros((h, w), dtype=int)
    bounds_y = [0, h - m, h - s, h]
    bounds_x = [0, w - m, w - s, w]
    label = 0
    for i in range(3):
        for j in range(3):
            region[bounds_y[i] : bounds_y[i + 1], bounds_x[j] : bounds_x[j + 1]] = label
            label += 1
    masks = shifted_window_mask((h, w), m, s)  # (nW, M*M, M*M)

    fig = plt.figure(figsize=(13, 3.6))
    gs = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 1.2])
    ax = fig.add_subplot(gs[0])
    _draw_groups(ax, regular, image, f"1. W-MSA: {regular.max() + 1} windows of {m}x{m}")
    _outline_windows(ax, h, w, m)
    ax = fig.add_subplot(gs[1])
    _draw_groups(ax, piece, image, f"2. SW-MSA: windows moved by ({s}, {s})")
    _outline_windows(ax, h, w, m, offset=m - s)
    ax = fig.add_subplot(gs[2])
    rolled_piece = np.roll(piece, shift=(-s, -s), axis=(0, 1))
    _draw_groups(ax, rolled_piece, None, f"3. cyclic shift by (-{s}, -{s}): regions", numbers=region)
    _outline_windows(ax, h, w, m)
    # panel 4: masks of every window in window order
    n_h, n_w = h // m, w // m
    sub = gs[3].subgridspec(n_h, n_w, wspace=0.08, hspace=0.08)
    for k in range(n_h * n_w):
        a = fig.add_subplot(sub[k // n_w, k % n_w])
        a.imshow(masks[k].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        a.set_xticks([])
        a.set_yticks([])
        if k == 0:
            a.set_title(f"4. masks ({m * m}x{m * m} per window)", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def show_block_grid(
    grid_size: tuple[int, int] = (8, 8), size: int = 4, image: torch.Tensor | None = None, highlight: int = 0
):
    """MaxViT's two partitions side by side: blocks (local P x P) and grid groups (G x G, dilated over the image).

    Token colours give the group; the tokens of group ``highlight`` are marked with dots (which tokens one
    attention call sees).

    Args:
        grid_size: (H, W) tokens, divisible by ``size``.
        size: P = G.
        image: optional (C, H', W') image drawn underneath.
        highlight: the group to mark.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    h, w = grid_size
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for ax, (name, fn) in zip(axes, (("block", block_partition), ("grid", grid_partition))):
        ids = group_ids(fn, (h, w), size).numpy()
        n_groups = ids.max() + 1
        label = (
            f"block attention: {n_groups} blocks of {size}x{size}"
            if name == "block"
            else f"grid attention: {n_groups} groups of {size}x{size}, stride {h // size}"
        )
        _draw_groups(ax, ids, image, label)
        ys, xs = np.nonzero(ids == highlight)
        ax.scatter(xs + 0.5, ys + 0.5, s=22, c="white", edgecolors="black", linewidths=0.8)
    fig.tight_layout()
    return fig


def window_attention_map(
    attention: torch.Tensor,
    grid_size: tuple[int, int],
    window_size: int,
    query: tuple[int, int],
    image: int = 0,
    shift_size: int = 0,
) -> torch.Tensor:
    """Where one token looks inside its (shifted) window, placed back on the full token grid.

    Args:
        attention: (B * nW, h, M*M, M*M) weights of one window-attention layer (from
            :func:`cvkit.inspect.attention_maps` on a Swin).
        grid_size: (H, W) tokens of that layer.
        window_size: M.
        query: (row, col) of the query token on the un-shifted grid.
        image: which image of the batch.
        shift_size: s of that block (0 for W-MSA); the cyclic shift is undone.

    Returns:
        (h, H, W) float: the query's attention over every token (zero outside its window).

    Raises:
        ValueError: shapes that do not fit the grid and window, or a query outside the grid.
    """
    h, w = grid_size
    m, s = window_size, shift_size
    n_windows = (h // m) * (w // m)
    if attention.dim() != 4 or attention.shape[-1] != m * m or attention.shape[0] % n_windows:
        raise ValueError(
            f"attention {tuple(attention.shape)} does not fit {n_windows} windows of {m}x{m} on a {h}x{w} grid"
        )
    r, c = query
    if not (0 <= r < h and 0 <= c < w):
        raise ValueError(f"query {query} is outside the {h}x{w} grid")
    rr, cc = (r - s) % h, (c - s) % w  # where the query sits after the roll by (-s, -s)
    window = (rr // m) * (w // m) + cc // m
    row = attention[image * n_windows + window, :, (rr % m) * m + cc % m]  # (h, M*M)
    canvas = torch.zeros(row.shape[0], h, w)
    top, left = (rr // m) * m, (cc // m) * m
    canvas[:, top : top + m, left : left + m] = row.float().cpu().view(-1, m, m)
    return torch.roll(canvas, shifts=(s, s), dims=(1, 2))  # back to image coordinates
