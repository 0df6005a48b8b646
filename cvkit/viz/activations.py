"""Activation functions and their derivatives, side by side (lecture 03)."""

from __future__ import annotations

from typing import Sequence

import torch


def plot_activations(
    names: Sequence[str] = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu"),
    lo: float = -4.0,
    hi: float = 4.0,
    axes=None,
):
    """Plot f(x) and f'(x) for named activations; the derivative comes from autograd.

    Args:
        names: keys of :data:`cvkit.layers.ACTIVATIONS`.
        lo, hi: the x range.
        axes: two matplotlib axes (``None``: a new 10x3.5-inch figure).

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: an unknown activation name.
    """
    import matplotlib.pyplot as plt

    from cvkit.layers.activations import make_activation

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    else:
        fig = axes[0].figure
    x = torch.linspace(lo, hi, 801, requires_grad=True)
    for name in names:
        f = make_activation(name)
        y = f(x)
        (dy,) = torch.autograd.grad(y.sum(), x)  # elementwise: d sum / dx_i = f'(x_i)
        axes[0].plot(x.detach(), y.detach(), label=name)
        axes[1].plot(x.detach(), dy, label=name)
    for ax, t in zip(axes, ("f(x)", "f'(x)")):
        ax.axhline(0, color="black", linewidth=0.5)
        ax.axvline(0, color="black", linewidth=0.5)
        ax.set_title(t)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
