"""An explorer for receptive fields: pick a layer and a unit, see what it sees on the photo."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cvkit.widgets.explorer import Choice, Slider, explore


def receptive_field_explorer(
    model: nn.Module,
    image: torch.Tensor,
    layers: Sequence[str],
    *,
    model_input: torch.Tensor | None = None,
    gradient: bool = True,
    static: bool | None = None,
):
    """Sliders for layer, unit row and unit column; draws the unit's field on the image.

    Args:
        model: a conv net that :func:`cvkit.conv.receptive_fields` can trace.
        image: (C, H, W) float in [0, 1], shown under the field.
        layers: module names to choose from (e.g. ``["layer1", "layer2", "layer3", "layer4"]``).
        model_input: what the model gets (e.g. the normalized image); ``None``: ``image``.
        gradient: overlay the unit's input gradient (the effective receptive field).
        static: see :func:`cvkit.widgets.explore` (``None``: static when headless).

    Returns:
        the widget in a live notebook, else the Figure drawn for the last layer's centre unit.

    Raises:
        ValueError: no layers, or a layer whose field is global.
    """
    import matplotlib.pyplot as plt

    from cvkit.conv.empirical import empirical_receptive_field
    from cvkit.conv.receptive_field import receptive_fields
    from cvkit.viz.receptive_field import draw_receptive_field

    if not layers:
        raise ValueError("give at least one layer name")
    x = model_input if model_input is not None else image
    table = receptive_fields(model, tuple(x.shape[-3:]))

    def draw(layer: str, row: float, col: float):
        field = table[layer]
        gh, gw = field.grid or (1, 1)
        unit = (round(row * (gh - 1)), round(col * (gw - 1)))
        emp = empirical_receptive_field(model, layer, unit, image=x, mode="gradient") if gradient else None
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        draw_receptive_field(
            image,
            field,
            unit,
            empirical=emp,
            ax=ax,
            title=f"{layer} unit {unit}: RF {field.size[0]}, stride {field.stride[0]}",
        )
        return fig

    controls = {
        "layer": Choice(list(layers), default=list(layers)[-1]),
        "row": Slider(0.0, 1.0, 0.05, 0.5, label="unit row"),
        "col": Slider(0.0, 1.0, 0.05, 0.5, label="unit col"),
    }
    return explore(draw, controls, static=static)
