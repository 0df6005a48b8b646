"""Receptive fields drawn on a real image: the box a unit sees, and how it grows layer by layer (lectures 02, 04, 05)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from cvkit.conv.receptive_field import receptive_field_chain
from cvkit.viz.heatmaps import overlay_heatmap
from cvkit.viz.images import to_display

if TYPE_CHECKING:  # pragma: no cover
    from cvkit.conv.empirical import EmpiricalReceptiveField
    from cvkit.conv.receptive_field import ReceptiveField, ReceptiveFieldTable


def draw_receptive_field(
    image: torch.Tensor,
    field: "ReceptiveField",
    unit: tuple[int, int] | None = None,
    *,
    empirical: "EmpiricalReceptiveField | None" = None,
    ax=None,
    colour: str = "yellow",
    title: str | None = None,
    show_padding: bool = True,
):
    """Show the input pixels one unit of a layer sees, on the image itself.

    The analytic field is a solid box clipped to the image, with its full extent (reaching into
    the zero padding, drawn grey when ``show_padding``) dashed; the unit's centre is a cross. With ``empirical``, the measured
    input-gradient magnitude is overlaid (square-root scale, so the faint tails show).

    Args:
        image: (C, H, W) float in [0, 1], the network's input size.
        field: one row of :func:`cvkit.conv.receptive_fields`.
        unit: (y, x) in the layer's grid (``None``: the centre unit).
        empirical: the matching :func:`cvkit.conv.empirical_receptive_field` result.
        ax: a matplotlib axis (``None``: a new figure).
        colour: box colour.
        title: axis title (default: layer name, RF size and stride).
        show_padding: when the field reaches past the image, zoom out to show all of it.

    Returns:
        the matplotlib axis.

    Raises:
        ValueError: ``field`` is global (it has no box) or ``unit`` is outside its grid.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if field.is_global or field.grid is None:
        raise ValueError(f"{field.name} is global: every unit sees the whole image; pick an earlier layer")
    gh, gw = field.grid
    y, x = unit if unit is not None else (gh // 2, gw // 2)
    if not (0 <= y < gh and 0 <= x < gw):
        raise ValueError(f"unit {(y, x)} is outside the {gh}x{gw} grid of {field.name}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    h, w = image.shape[-2:]
    if empirical is not None:
        heat = empirical.gradient.sqrt()  # square root: the faint tails of the field stay visible
        ax.imshow(overlay_heatmap(image, heat, alpha=0.6, cmap="inferno"))
    else:
        ax.imshow(to_display(image), cmap="gray")
    x1, y1, x2, y2 = field.box(y, x)
    ax.add_patch(
        Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linestyle="--", linewidth=1)
    )
    cx1, cy1, cx2, cy2 = field.box(y, x, clip=(h, w))
    ax.add_patch(Rectangle((cx1 - 0.5, cy1 - 0.5), cx2 - cx1, cy2 - cy1, fill=False, edgecolor=colour, linewidth=2))
    cy, cx = field.center(y, x)
    ax.plot([cx], [cy], marker="+", color=colour, markersize=10, mew=2)
    if show_padding and (
        x1 < 0 or y1 < 0 or x2 > w or y2 > h
    ):  # zoom out: the zero padding the unit also sees, in grey
        ax.set_xlim(min(x1, 0) - 2.5, max(x2, w) + 1.5)
        ax.set_ylim(max(y2, h) + 1.5, min(y1, 0) - 2.5)
        ax.set_facecolor("0.85")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    else:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.axis("off")
    ax.set_title(title or f"{field.name}: RF {field.size[0]}, stride {field.stride[0]}", fontsize=9)
    return ax


def plot_receptive_field_growth(
    table: "ReceptiveFieldTable",
    names: Sequence[str],
    labels: Sequence[str] | None = None,
    image_size: int | None = None,
    ax=None,
    title: str | None = None,
):
    """Receptive-field size and effective stride of chosen layers, in network order.

    Args:
        table: from :func:`cvkit.conv.receptive_fields`.
        names: layers or containers to plot (e.g. the stages).
        labels: x tick labels (default: the names).
        image_size: draw the input size as a horizontal line.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    fields = [table[n] for n in names]
    xs = range(len(fields))
    ax.plot(xs, [f.size[0] for f in fields], "-o", label="RF size (pixels)")
    ax.plot(xs, [f.stride[0] for f in fields], "-s", label="effective stride")
    if image_size:
        ax.axhline(image_size, color="grey", linestyle=":", label=f"input size {image_size}")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels or names, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log", base=2)
    ax.set_ylabel("input pixels")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def draw_receptive_field_growth(
    image: torch.Tensor, layers: Sequence[tuple[int, int]], centre: tuple[int, int] | None = None, ax=None
):
    """Draw, on a photo, the receptive field of one unit after each layer of a plain conv chain.

    Args:
        image: (C, H, W) float in [0, 1].
        layers: ``(kernel_size, stride)`` per layer (see :func:`cvkit.conv.receptive_field_chain`).
        centre: (row, column) in pixels of the unit's centre (default: image centre).
        ax: matplotlib axis or ``None``.

    Returns:
        matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    ax.imshow(to_display(image), cmap="gray")
    h, w = image.shape[-2:]
    cy, cx = centre if centre is not None else (h // 2, w // 2)
    rows = receptive_field_chain(layers)
    colours = plt.cm.viridis(np.linspace(0, 1, len(rows)))
    for i, (row, colour) in enumerate(zip(rows, colours)):
        r = row["size"]
        ax.add_patch(
            Rectangle(
                (cx - r / 2, cy - r / 2),
                r,
                r,
                fill=False,
                edgecolor=colour,
                linewidth=2,
                label=f"layer {i + 1}: {r}x{r}",
            )
        )
    ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax.axis("off")
    ax.set_title("receptive field after each layer")
    fig.tight_layout()
    return fig
