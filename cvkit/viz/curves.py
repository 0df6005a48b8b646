"""Training curves: loss and accuracy per epoch, train against validation; a GAN's two losses."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from cvkit.generative.gan import GANHistory
    from cvkit.train.history import History


def plot_history(history: "History", ax=None, title: str | None = None):
    """Draw loss (left) and accuracy (right) against epoch for train and validation.

    Args:
        history: a :class:`cvkit.train.History`.
        ax: two matplotlib axes, or ``None`` for a new 10x3.5-inch figure.
        title: figure title.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: the history is empty.
    """
    import matplotlib.pyplot as plt

    if len(history) == 0:
        raise ValueError("the history is empty: train for at least one epoch first")
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    else:
        fig = ax[0].figure
    epochs = history["epoch"]
    for split, style in (("train", "-o"), ("val", "--s")):
        for i, metric in enumerate(("loss", "accuracy")):
            key = f"{split}_{metric}"
            if key in history.columns:
                values = history[key]
                if not all(math.isnan(v) for v in values):
                    ax[i].plot(epochs, values, style, label=split, markersize=4)
    for i, metric in enumerate(("loss", "accuracy")):
        ax[i].set_xlabel("epoch")
        ax[i].set_ylabel(metric)
        ax[i].grid(alpha=0.3)
        if ax[i].lines:
            ax[i].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_histories(histories: Mapping[str, "History"], key: str = "val_accuracy", ax=None, title: str | None = None):
    """One curve per named run for a single column (e.g. plain vs residual networks).

    Args:
        histories: ``{"run name": History}``.
        key: the column to plot (``"train_loss"``, ``"val_accuracy"``, ...).

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
    else:
        fig = ax.figure
    for name, h in histories.items():
        ax.plot(h["epoch"], h[key], "-o", label=name, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_gan_history(history: "GANHistory"):
    """A GAN's losses (left) and the discriminator's mean outputs D(x), D(G(z)) (right) per epoch.

    Args:
        history: from :func:`cvkit.generative.train_gan`.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    epochs = history.column("epoch")
    a.plot(epochs, history.column("d_loss"), "o-", label="discriminator")
    a.plot(epochs, history.column("g_loss"), "o-", label="generator")
    a.set(xlabel="epoch", ylabel="loss", title="GAN losses")
    a.legend()
    b.plot(epochs, history.column("d_real"), "o-", label="D(real)")
    b.plot(epochs, history.column("d_fake"), "o-", label="D(G(z))")
    b.axhline(0.5, color="grey", lw=0.8, ls="--")
    b.set(xlabel="epoch", ylabel="probability", ylim=(0, 1), title="discriminator outputs")
    b.legend()
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig
