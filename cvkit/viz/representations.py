"""Pictures for judging learned representations: 2-D embedding plots (one encoder, or several side by side) and a
bar chart of probe accuracies."""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np
import torch

from cvkit.segmentation.colormap import PALETTE


def embed_2d(features: torch.Tensor | np.ndarray, method: Literal["pca", "tsne"] = "pca", seed: int = 0) -> np.ndarray:
    """Project (N, D) features to (N, 2) with scikit-learn's PCA or t-SNE (perplexity 30, PCA init).

    Raises:
        ValueError: an unknown method or features that are not 2-D.
    """
    x = (
        features.detach().float().cpu().numpy()
        if isinstance(features, torch.Tensor)
        else np.asarray(features, dtype=np.float32)
    )
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(
            n_components=2, perplexity=min(30.0, max(5.0, (len(x) - 1) / 3)), init="pca", random_state=seed
        ).fit_transform(x)
    raise ValueError(f"method must be one of 'pca', 'tsne', got {method!r}")


def plot_embedding(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    method: Literal["pca", "tsne"] = "pca",
    ax=None,
    title: str | None = None,
    seed: int = 0,
    point_size: float = 6,
):
    """Scatter plot of features projected to 2-D, one colour per class.

    Args:
        features: (N, D).
        labels: (N,) int class indices.
        class_names: names for the legend, indexed by label.
        method: ``"pca"`` (linear, fast) or ``"tsne"`` (non-linear neighbourhoods, seconds for a few thousand points).
        ax: matplotlib axis (``None``: a new 4.5x4.5-inch figure).
        title: axis title.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    xy = embed_2d(features, method, seed)
    y = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
    else:
        fig = ax.figure
    for c in np.unique(y):
        sel = y == c
        name = class_names[c] if class_names is not None and c < len(class_names) else str(c)
        ax.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=point_size,
            color=PALETTE[int(c) % len(PALETTE)],
            label=name,
            alpha=0.8,
            linewidths=0,
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or method.upper(), fontsize=10)
    return fig


def plot_embeddings(
    encoders: Mapping[str, "torch.nn.Module"],
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    method: Literal["pca", "tsne"] = "pca",
    size: float = 4.0,
):
    """The features of several encoders on the same images, projected to 2-D side by side (one panel per encoder).

    The lectures' comparison of representations: random init against a pre-trained encoder against a supervised one.

    Args:
        encoders: ``{"name": encoder}``, each mapping (B, C, H, W) to (B, D) features; drawn left to right.
        images: (N, C, H, W) uint8 in [0, 255] or float in [0, 1] (features come from
            :func:`cvkit.ssl.probe.extract_features`, in eval mode).
        labels: (N,) int class indices. class_names: names for the legend, indexed by label.
        method: ``"pca"`` or ``"tsne"`` (see :func:`embed_2d`). size: inches per panel.

    Returns:
        matplotlib Figure (the legend beside the last panel).

    Raises:
        ValueError: no encoders, or ``labels`` not as many as ``images``.
    """
    import matplotlib.pyplot as plt

    from cvkit.ssl.probe import extract_features

    if not encoders:
        raise ValueError("give at least one encoder: {'name': encoder}")
    if len(labels) != len(images):
        raise ValueError(f"labels ({len(labels)}) and images ({len(images)}) must be as many")
    fig, axes = plt.subplots(1, len(encoders), figsize=(size * len(encoders), size), squeeze=False)
    for ax, (name, encoder) in zip(axes[0], encoders.items()):
        plot_embedding(
            extract_features(encoder, images), labels, class_names, method=method, ax=ax, title=f"{name} ({method})"
        )
    axes[0, -1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def plot_probe_accuracies(
    accuracies: Mapping[str, float], baselines: Sequence[str] = (), ax=None, title: str = "linear-probe test accuracy"
):
    """Horizontal bars of accuracy per method; the named baselines are drawn grey.

    Args:
        accuracies: ``{"method": accuracy in [0, 1]}``, drawn top to bottom in order.
        baselines: names of the baseline rows (e.g. ``"random init"``, ``"supervised"``).
        ax: matplotlib axis (``None``: a new figure).

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    names = list(accuracies)
    values = [100 * accuracies[k] for k in names]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(names) + 1))
    else:
        fig = ax.figure
    colours = ["#999999" if n in baselines else PALETTE[0] for n in names]
    ax.barh(range(len(names)), values, color=colours)
    for i, v in enumerate(values):
        ax.text(v + 0.3, i, f"{v:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    lo = max(0.0, min(values) - 10)
    ax.set_xlim(lo, min(100.0, max(values) + 5))
    ax.set_xlabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
