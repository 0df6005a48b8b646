"""An explorer for feature maps: pick a layer and a channel range, see what it computed on the photo."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cvkit.widgets.explorer import Choice, Slider, explore


def feature_map_explorer(
    model: nn.Module, image: torch.Tensor, layers: Sequence[str], *, n: int = 16, static: bool | None = None
):
    """A layer drop-down and a first-channel slider over the feature maps of one image.

    Args:
        model: any conv net.
        image: (C, H, W) float, as the model expects it.
        layers: module names whose (1, C_l, H_l, W_l) outputs to show.
        n: channels per picture.
        static: see :func:`cvkit.widgets.explore`.

    Returns:
        the widget in a live notebook, else the Figure of the first layer's first ``n`` channels.

    Raises:
        ValueError: no layers; KeyError: an unknown layer.
    """
    from cvkit.inspect.hooks import capture_outputs
    from cvkit.viz.features import show_feature_maps

    if not layers:
        raise ValueError("give at least one layer name")
    outputs = capture_outputs(model, image[None] if image.dim() == 3 else image, list(layers))
    widest = max(o.shape[1] for o in outputs.values())

    def draw(layer: str, first: int):
        maps = outputs[layer][0]
        first = min(first, max(maps.shape[0] - n, 0))
        return show_feature_maps(
            maps[first : first + n],
            n=n,
            title=f"{layer}: channels {first}-{first + min(n, maps.shape[0]) - 1} of {maps.shape[0]}",
        )

    return explore(
        draw,
        {"layer": Choice(list(layers)), "first": Slider(0, max(widest - n, 0), n, 0, label="first channel")},
        static=static,
    )
