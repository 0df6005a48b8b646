"""Pictures for the vision-language lecture: attention over the image per word and CLIP's similarity matrix."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from cvkit.viz.attention import overlay_attention
from cvkit.viz.images import to_display


def show_caption_attention(
    image: torch.Tensor,
    words: Sequence[str],
    attention: torch.Tensor,
    ncols: int = 6,
    size: float = 1.8,
    suptitle: str | None = None,
):
    """Show, Attend and Tell's figure: the image, then one panel per generated word with where the model looked.

    Args:
        image: (C, H, W) float in [0, 1].
        words: the T generated words (``<eos>`` included if you want its map).
        attention: (T', L) or (T', h, w) weights with T' >= T; L must be a square grid h * w.
        ncols: panels per row.
        size: inches per panel.
        suptitle: figure title.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: fewer attention rows than words, or L not a square number.
    """
    import matplotlib.pyplot as plt

    att = attention.detach().float().cpu()
    if att.dim() == 2:
        side = int(round(math.sqrt(att.shape[1])))
        if side * side != att.shape[1]:
            raise ValueError(f"attention has {att.shape[1]} regions, not a square grid; pass it as (T, h, w)")
        att = att.view(att.shape[0], side, side)  # (T, h, w)
    if att.shape[0] < len(words):
        raise ValueError(f"{len(words)} words but only {att.shape[0]} attention maps")
    n = len(words) + 1
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False
    )
    flat = axes.ravel()
    flat[0].imshow(to_display(image))
    flat[0].set_title("image", fontsize=9)
    for ax in flat:
        ax.axis("off")
    for i, word in enumerate(words):
        overlay_attention(flat[i + 1], image, att[i], title=word)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_similarity_matrix(
    similarity: torch.Tensor,
    images: torch.Tensor | None = None,
    texts: Sequence[str] | None = None,
    size: float = 0.75,
    title: str | None = None,
    annotate: bool = True,
):
    """CLIP's picture: cosine similarities of N images (rows, thumbnails on the left) to M texts (columns).

    Args:
        similarity: (N, M) float.
        images: (N, C, H, W) in [0, 1], drawn left of their rows (optional).
        texts: M strings, written above their columns (optional).
        size: inches per cell.
        title: figure title.
        annotate: write each value in its cell.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: ``images`` or ``texts`` of the wrong length.
    """
    import matplotlib.pyplot as plt

    sim = similarity.detach().float().cpu().numpy()
    n, m = sim.shape
    if images is not None and len(images) != n:
        raise ValueError(f"{len(images)} images for {n} rows")
    if texts is not None and len(texts) != m:
        raise ValueError(f"{len(texts)} texts for {m} columns")
    thumbs = 1 if images is not None else 0
    fig = plt.figure(figsize=(size * (m + 1.2 * thumbs) + 1.5, size * n + 2.5))
    grid = fig.add_gridspec(
        n, 1 + thumbs, width_ratios=[1.2] * thumbs + [m], wspace=0.02, hspace=0.05
    )  # [thumbnails | matrix]
    ax = fig.add_subplot(grid[:, thumbs])
    im = ax.imshow(sim, cmap="viridis", aspect="auto")
    if annotate:
        for i in range(n):
            for j in range(m):
                ax.text(
                    j,
                    i,
                    f"{sim[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if sim[i, j] < sim.mean() else "black",
                )
    ax.set_yticks([])
    if texts is not None:
        ax.set_xticks(np.arange(m))
        ax.set_xticklabels(texts, rotation=60, ha="left", fontsize=8)
        ax.xaxis.tick_top()
    if images is not None:
        for i in range(n):
            tax = fig.add_subplot(grid[i, 0])
            tax.imshow(to_display(images[i]))
            tax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="cosine similarity")
    if title:
        fig.suptitle(title, y=0.02)
    return fig
