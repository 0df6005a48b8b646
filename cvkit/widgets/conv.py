"""The convolution-arithmetic explorer: sliders for input size, kernel, stride, padding and dilation."""

from __future__ import annotations

from cvkit.viz.conv import draw_conv_arithmetic
from cvkit.widgets.explorer import Slider, explore


def _draw_or_explain(input_size, kernel_size, stride, padding, dilation, output_index):
    try:
        return draw_conv_arithmetic(input_size, kernel_size, stride, padding, dilation, output_index)
    except ValueError as exc:  # an impossible combination: say why instead of failing the widget
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, str(exc), ha="center", va="center", wrap=True, fontsize=10)
        return fig


def conv_arithmetic_explorer(static: bool | None = None, **start):
    """Explore how kernel size, stride, padding and dilation set a convolution's output size.

    Args:
        static: force the static figure (True) or the sliders (False); ``None``: sliders only in a live notebook.
        **start: starting values (``input_size``, ``kernel_size``, ``stride``, ``padding``, ``dilation``,
            ``output_index``), e.g. ``conv_arithmetic_explorer(input_size=7, padding=1, stride=2)``.

    Returns:
        the ipywidgets object (live) or the Figure (static).

    Raises:
        TypeError: an unknown starting value.
    """
    controls = {
        "input_size": Slider(3, 9, 1, 5),
        "kernel_size": Slider(1, 5, 1, 3),
        "stride": Slider(1, 3, 1, 1),
        "padding": Slider(0, 3, 1, 0),
        "dilation": Slider(1, 3, 1, 1),
        "output_index": Slider(0, 80, 1, 0),
    }
    unknown = set(start) - set(controls)
    if unknown:
        raise TypeError(f"unknown setting(s) {sorted(unknown)}; choose from {sorted(controls)}")
    for name, value in start.items():
        c = controls[name]
        controls[name] = Slider(c.lo, max(c.hi, value), c.step, value)
    return explore(_draw_or_explain, controls, static=static)
