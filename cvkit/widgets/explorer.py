"""A slider explorer that degrades to a static figure when nobody can click it.

Every explorer in the kit is ``draw(**settings) -> Figure`` plus a description of its
controls. In a live notebook :func:`explore` shows ipywidgets sliders that redraw the
figure (as a PNG in an ``ipywidgets.Image``; works with ipywidgets 7 and 8); headless (papermill, CI, a plain Python script; see
:func:`cvkit.runtime.headless`) it draws the figure once with the default settings,
so executed notebooks still show the picture and never wait for input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cvkit.runtime import headless


@dataclass(frozen=True)
class Slider:
    """An integer or float slider: ``Slider(1, 7, 2, default=3)``.

    Raises:
        ValueError: ``default`` outside [lo, hi] or a non-positive step.
    """

    lo: float
    hi: float
    step: float = 1
    default: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        d = self.lo if self.default is None else self.default
        if not self.lo <= d <= self.hi:
            raise ValueError(f"default {d} outside [{self.lo}, {self.hi}]")

    @property
    def value(self) -> float:
        """The starting value."""
        return self.lo if self.default is None else self.default


@dataclass(frozen=True)
class Choice:
    """A drop-down over fixed options: ``Choice(["sobel", "box"], default="sobel")``.

    Raises:
        ValueError: no options, or ``default`` not among them.
    """

    options: Sequence[Any]
    default: Any = None
    label: str = ""

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("Choice needs at least one option")
        if self.default is not None and self.default not in self.options:
            raise ValueError(f"default {self.default!r} is not one of {list(self.options)}")

    @property
    def value(self) -> Any:
        """The starting value."""
        return self.options[0] if self.default is None else self.default


Control = Slider | Choice


def defaults(controls: Mapping[str, Control]) -> dict[str, Any]:
    """The starting value of every control (what the static figure uses)."""
    return {name: c.value for name, c in controls.items()}


def figure_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib Figure to PNG bytes and close it (it is not shown a second time).

    Args:
        fig: a matplotlib Figure. dpi: pixels per inch of the PNG.

    Returns:
        the PNG file's bytes.
    """
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def explore(draw: Callable[..., Any], controls: Mapping[str, Control], *, static: bool | None = None, dpi: int = 80):
    """Show ``draw`` with sliders in a live notebook, or draw it once headless.

    The live explorer is ipywidgets sliders and drop-downs above an ``ipywidgets.Image`` that holds the
    figure as a PNG; every change redraws it and replaces the image. No ``Output`` widget captures
    anything, so it behaves the same with ipywidgets 7 (Colab, Kaggle, classic Notebook) and 8
    (JupyterLab 4): ipywidgets 7's ``interactive`` showed the figure once and no sliders in classic
    Notebook 6.5 (issue 13). A ``draw`` that raises shows its error above the image instead of a figure.

    Args:
        draw: ``draw(**settings)`` returning a matplotlib Figure.
        controls: ``{argument name: Slider | Choice}``.
        static: force the static figure (True) or the widget (False); ``None`` decides with
            :func:`cvkit.runtime.headless`.
        dpi: resolution of the live figure.

    Returns:
        the live ipywidgets ``VBox`` (controls, message, image; ``.redraw()`` and ``.controls`` attached), or
        the Figure drawn with the defaults (static).

    Raises:
        TypeError: a control is not a Slider or Choice.
    """
    for name, c in controls.items():
        if not isinstance(c, (Slider, Choice)):
            raise TypeError(f"control {name!r} must be a Slider or Choice, got {type(c).__name__}")
    if static if static is not None else headless():
        return draw(**defaults(controls))

    import ipywidgets as widgets
    from IPython.display import display

    inputs = {}
    for name, c in controls.items():
        label = c.label or name
        style = {"description_width": "initial"}
        if isinstance(c, Choice):
            inputs[name] = widgets.Dropdown(options=list(c.options), value=c.value, description=label, style=style)
        elif all(float(v).is_integer() for v in (c.lo, c.hi, c.step, c.value)):
            inputs[name] = widgets.IntSlider(
                min=int(c.lo),
                max=int(c.hi),
                step=int(c.step),
                value=int(c.value),
                description=label,
                continuous_update=False,
                style=style,
            )
        else:
            inputs[name] = widgets.FloatSlider(
                min=c.lo, max=c.hi, step=c.step, value=c.value, description=label, continuous_update=False, style=style
            )
    image = widgets.Image(format="png")
    message = widgets.HTML("")
    ui = widgets.VBox([*inputs.values(), message, image])
    ui.add_class("cvkit-explorer")

    def redraw(*_):
        settings = {name: w.value for name, w in inputs.items()}
        try:
            png = figure_png(draw(**settings), dpi)
        except Exception as exc:  # noqa: BLE001 - shown to the student; the sliders stay usable
            message.value = f"<pre style='color:#b00'>{type(exc).__name__}: {exc}</pre>"
            return
        message.value = ""
        image.value = png

    for w in inputs.values():
        w.observe(redraw, names="value")
    redraw()
    ui.redraw = redraw
    ui.controls = inputs
    display(ui)
    return ui
