"""Loss landscapes with optimiser paths drawn on them (lecture 01)."""

from __future__ import annotations

from typing import Callable, Mapping

import torch


def plot_landscape(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    paths: Mapping[str, torch.Tensor] | None = None,
    xlim: tuple[float, float] = (-2.0, 2.0),
    ylim: tuple[float, float] = (-2.0, 2.0),
    resolution: int = 200,
    ax=None,
    title: str | None = None,
):
    """Contour plot of a two-variable loss with optimiser paths on top.

    Args:
        loss_fn: ``loss_fn(w)`` for ``w`` of shape (..., 2) float64, returning (...) losses
            (it must broadcast over leading axes, e.g. ``lambda w: (w ** 2).sum(-1)``).
        paths: ``{"name": (T, 2) tensor}`` of visited points (see :func:`cvkit.train.optim.trace_optimizer`).
        xlim, ylim: plotted ranges.
        resolution: grid points per axis.
        ax: matplotlib axis or ``None``.
        title: axis title.

    Returns:
        matplotlib Figure.

    Raises:
        ValueError: a path is not (T, 2).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    xs = torch.linspace(*xlim, resolution, dtype=torch.float64)
    ys = torch.linspace(*ylim, resolution, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (R, R, 2)
    with torch.no_grad():
        z = loss_fn(grid).numpy()
    cs = ax.contourf(xs.numpy(), ys.numpy(), z, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="loss")
    for name, path in (paths or {}).items():
        path = torch.as_tensor(path).detach().cpu()
        if path.dim() != 2 or path.shape[1] != 2:
            raise ValueError(f"path {name!r} must be (T, 2), got {tuple(path.shape)}")
        ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), "-", marker=".", markersize=3, linewidth=1.5, label=name)
        ax.plot(path[0, 0].item(), path[0, 1].item(), "wo", markersize=6)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$w_1$")
    ax.set_ylabel("$w_2$")
    if paths:
        ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
