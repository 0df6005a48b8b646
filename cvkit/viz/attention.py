r"""Pictures of what vision transformers attend to: attention over an image, per head, rolled out, by distance.

The maps come from :mod:`cvkit.inspect.attention` (recorded through hooks, analysed there); this module draws them.
Sources: Dosovitskiy et al. 2021 (ViT), Fig. 6 (attention maps) and Fig. 7 (mean attention distance);
Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers" (attention rollout).
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cvkit.viz.images import to_display


def upsample_map(
    attn_map: torch.Tensor, size: tuple[int, int], mode: Literal["nearest", "bilinear"] = "bilinear"
) -> torch.Tensor:
    """Resize a (gh, gw) or (..., gh, gw) attention map to the image size (H, W), rescaled to [0, 1] per map."""
    lead = attn_map.shape[:-2]
    x = attn_map.float().reshape(-1, 1, *attn_map.shape[-2:])
    x = F.interpolate(x, size=size, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    return ((x - lo) / (hi - lo).clamp_min(1e-12)).reshape(*lead, *size)


def overlay_attention(
    ax,
    image: torch.Tensor,
    attn_map: torch.Tensor,
    alpha: float = 0.55,
    cmap: str = "inferno",
    title: str | None = None,
) -> None:
    """Draw ``image`` (C, H, W) in [0, 1] with a (gh, gw) attention map on top (upsampled, min-max scaled)."""
    h, w = image.shape[-2:]
    ax.imshow(to_display(image), cmap="gray")
    ax.imshow(upsample_map(attn_map, (h, w)).numpy(), cmap=cmap, alpha=alpha, extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)


def show_attention_heads(
    image: torch.Tensor, head_maps: torch.Tensor, title: str | None = None, ncols: int = 6, size: float = 1.8
):
    """The image, then the class token's attention of every head drawn over it (ViT Fig. 6, per head).

    Args:
        image: (C, H, W) in [0, 1].
        head_maps: (h, gh, gw) one layer's class-token attention (from :func:`cvkit.inspect.cls_attention`).
        title: figure title.
        ncols: panels per row.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    n = head_maps.shape[0] + 1
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False)
    flat = axes.ravel()
    flat[0].imshow(to_display(image), cmap="gray")
    flat[0].set_title("image", fontsize=9)
    for i, ax in enumerate(flat):
        ax.axis("off")
        if 1 <= i < n:
            overlay_attention(ax, image, head_maps[i - 1], title=f"head {i - 1}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_attention_rollout(
    images: torch.Tensor,
    maps: torch.Tensor,
    titles: Sequence[str] | None = None,
    size: float = 2.2,
    last_layer: torch.Tensor | None = None,
):
    """Images (top row) and their rollout maps drawn over them (bottom row; optionally a row for the last layer alone).

    Args:
        images: (B, C, H, W) in [0, 1].
        maps: (B, gh, gw) rollout maps of the class token (``cvkit.inspect.cls_attention(attention_rollout(...), ...)``).
        titles: one per image.
        last_layer: optional (B, gh, gw) head-averaged class attention of the last layer, for comparison.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    b = images.shape[0]
    rows = 3 if last_layer is not None else 2
    fig, axes = plt.subplots(rows, b, figsize=(size * b, size * rows), squeeze=False)
    for i in range(b):
        axes[0, i].imshow(to_display(images[i]), cmap="gray")
        axes[0, i].axis("off")
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=9)
        overlay_attention(axes[1, i], images[i], maps[i], title="rollout" if i == 0 else None)
        if last_layer is not None:
            overlay_attention(axes[2, i], images[i], last_layer[i], title="last layer only" if i == 0 else None)
    fig.tight_layout()
    return fig


def plot_attention_distance(
    distances: torch.Tensor, ax=None, title: str = "mean attention distance", lines: Mapping[str, float] | None = None
):
    """Scatter of every head's mean attention distance against its layer (ViT Fig. 7).

    Args:
        distances: (L, h) pixels, from :func:`cvkit.inspect.mean_attention_distance`.
        ax: axis to draw on (default: a new figure).
        title: axis title.
        lines: reference distances drawn as labelled horizontal lines, e.g. ``{"image size": 28,
            "uniform attention": d}`` with ``d`` the distance of uniform attention (pass
            ``[torch.full((1, 1, N, N), 1 / N)]`` to :func:`mean_attention_distance`).

    Returns:
        the matplotlib axis.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.2))
    d = distances.detach().cpu().numpy()
    layers, heads = d.shape
    for head in range(heads):
        ax.scatter(np.arange(1, layers + 1), d[:, head], s=14, alpha=0.8, label=f"head {head}")
    top = d.max()
    for (name, value), style in zip((lines or {}).items(), ("--", ":", "-.")):
        ax.axhline(value, ls=style, c="grey", lw=0.9)
        ax.text(0.6, value, name, fontsize=7, color="grey", va="bottom", ha="left")
        top = max(top, value)
    ax.set_ylim(0, top * 1.05)
    ax.set_xlabel("layer (network depth)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(1, layers + 1))
    ax.set_xlim(0.5, layers + 0.5)
    ax.legend(fontsize=6, ncol=1 if heads <= 6 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.figure.tight_layout()
    return ax


def show_position_similarity(
    pos_embed: torch.Tensor, grid_size: tuple[int, int], title: str | None = None, size: float = 0.6
):
    """Cosine similarity of every patch's position embedding with all others, one small map per patch (ViT Fig. 7, centre).

    Args:
        pos_embed: (gh*gw, D) position embeddings of the patches (drop the prefix tokens first).
        grid_size: (gh, gw).
        title: figure title.
        size: inches per small map.

    Returns:
        matplotlib Figure with a gh x gw grid of (gh, gw) maps: the map at (r, c) shows how similar
        patch (r, c)'s embedding is to every other patch's (yellow: most similar). Colours are scaled per
        map (min to max), so a structure shows even when all similarities are high, as for sinusoids
        whose long wavelengths barely change across a small grid.

    Raises:
        ValueError: ``pos_embed`` does not have gh*gw rows.
    """
    import matplotlib.pyplot as plt

    gh, gw = grid_size
    if pos_embed.dim() != 2 or pos_embed.shape[0] != gh * gw:
        raise ValueError(
            f"pos_embed must be ({gh * gw}, D) for a {gh}x{gw} grid (drop class tokens first), got {tuple(pos_embed.shape)}"
        )
    e = F.normalize(pos_embed.detach().float().cpu(), dim=1)
    sim = (e @ e.T).reshape(gh, gw, gh, gw)  # (gh, gw, gh, gw)
    fig, axes = plt.subplots(gh, gw, figsize=(size * gw, size * gh + (0.4 if title else 0)), squeeze=False)
    for r in range(gh):
        for c in range(gw):
            axes[r, c].imshow(sim[r, c].numpy(), cmap="viridis")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
