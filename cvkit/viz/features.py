"""Looking inside a CNN: feature maps (what a layer computed) and filters (what it looks for)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch

from cvkit.viz.images import normalize_for_display


def show_feature_maps(
    maps: torch.Tensor,
    n: int = 16,
    ncols: int = 8,
    size: float = 1.4,
    cmap: str = "viridis",
    title: str | None = None,
    axes=None,
):
    """The first ``n`` channels of one feature map, each rescaled to [0, 1] on its own.

    Args:
        maps: (C, H, W) or (1, C, H, W), e.g. from :func:`cvkit.inspect.capture_outputs`.
        n: how many channels to show (at most C).
        ncols: grid columns.
        cmap: colour map (feature maps are single-channel).
        title: figure title.
        axes: existing axes to draw into (at least ``n``).

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: ``maps`` is not (C, H, W) or (1, C, H, W).
    """
    import matplotlib.pyplot as plt

    maps = maps.detach().float().cpu()
    if maps.dim() == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"maps must be (C, H, W) or (1, C, H, W), got {tuple(maps.shape)}")
    n = min(n, maps.shape[0])
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    if axes is None:
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False
        )
    else:
        fig = np.asarray(axes).flat[0].figure
    shown = normalize_for_display(maps[:n], per_channel=True)
    for i, ax in enumerate(np.asarray(axes).ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(shown[i].numpy(), cmap=cmap, vmin=0, vmax=1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_stage_features(
    outputs: Mapping[str, torch.Tensor], n: int = 6, size: float = 1.5, cmap: str = "viridis", title: str | None = None
):
    """One row per layer: the ``n`` most active channels of each feature map, with its shape.

    Args:
        outputs: ``{layer name: (1, C, H, W)}`` in network order (e.g. the stages of a ResNet).
        n: channels per row, the ones with the largest mean activation.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(outputs), n, figsize=(size * n, size * len(outputs) + (0.4 if title else 0)), squeeze=False
    )
    for row, (name, fmap) in zip(axes, outputs.items()):
        fmap = fmap.detach().float().cpu()
        fmap = fmap[0] if fmap.dim() == 4 else fmap
        top = fmap.mean(dim=(1, 2)).argsort(descending=True)[:n]
        shown = normalize_for_display(fmap[top], per_channel=True)
        for i, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(top):
                ax.imshow(shown[i].numpy(), cmap=cmap, vmin=0, vmax=1)
        row[0].set_ylabel(f"{name}\n{tuple(fmap.shape)}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_filters(
    weight: torch.Tensor, n: int | None = None, ncols: int = 8, size: float = 0.9, title: str | None = None
):
    """First-layer filters as small images: in colour for RGB filters, grey otherwise.

    Args:
        weight: (K, C, kh, kw) convolution weights, e.g. ``model.conv1.weight``.
        n: how many filters (``None``: all K).
        ncols: grid columns.

    Returns:
        matplotlib Figure. Each filter is min-max rescaled on its own (colours keep their ratios);
        a filter of C channels other than 3 is shown as its channel mean.

    Raises:
        ValueError: ``weight`` is not 4-D.
    """
    import matplotlib.pyplot as plt

    w = weight.detach().float().cpu()
    if w.dim() != 4:
        raise ValueError(f"weight must be (K, C, kh, kw), got {tuple(w.shape)}")
    w = w[: n or w.shape[0]]
    if w.shape[1] != 3:
        w = w.mean(dim=1, keepdim=True)
    k = w.shape[0]
    ncols = min(ncols, k)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False)
    lo = w.flatten(1).amin(1)[:, None, None, None]
    hi = w.flatten(1).amax(1)[:, None, None, None]
    w = (w - lo) / (hi - lo).clamp_min(1e-12)  # per filter, all channels together
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < k:
            img = w[i].permute(1, 2, 0).numpy()  # (kh, kw, C)
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
