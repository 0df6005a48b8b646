"""cvkit.widgets.explore without a front end: the live explorer redraws its image when a control moves.

The browser tests (tests/test_widgets_browser.py) show the same in JupyterLab 4 and classic Notebook 6.5; these
run in a second and pin down the contract: every change of a control replaces the PNG, an error is shown
instead of a figure, and no ipywidgets ``Output`` (whose capture nbclient mishandles, issue 13) is involved.
"""

import io

import ipywidgets
import matplotlib.pyplot as plt
import pytest
from PIL import Image

from cvkit.widgets import Choice, Slider, conv_arithmetic_explorer, explore


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def draw_line(slope=1, colour="k"):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, slope], colour)
    ax.set_ylim(-3, 3)
    return fig


def test_live_explorer_redraws_when_a_control_moves():
    ui = explore(draw_line, {"slope": Slider(-2, 2, 1, default=1), "colour": Choice(["k", "r"])}, static=False)
    image = next(w for w in _walk(ui) if isinstance(w, ipywidgets.Image))
    first = image.value
    assert Image.open(io.BytesIO(first)).format == "PNG"
    ui.controls["slope"].value = -2
    assert image.value != first
    second = image.value
    ui.controls["colour"].value = "r"
    assert image.value not in (first, second)
    ui.controls["slope"].value, ui.controls["colour"].value = 1, "k"
    assert image.value == first  # the same settings draw the same picture
    assert not any(isinstance(w, ipywidgets.Output) for w in _walk(ui))
    assert plt.get_fignums() == []  # every drawn figure was closed


def test_live_explorer_shows_an_error_and_keeps_the_last_picture():
    def draw(n=1):
        if n > 2:
            raise ValueError("n must be at most 2")
        return draw_line(n)

    ui = explore(draw, {"n": Slider(1, 3, 1)}, static=False)
    message = next(w for w in _walk(ui) if isinstance(w, ipywidgets.HTML))
    image = next(w for w in _walk(ui) if isinstance(w, ipywidgets.Image))
    before = image.value
    ui.controls["n"].value = 3
    assert "n must be at most 2" in message.value and image.value == before
    ui.controls["n"].value = 2
    assert message.value == "" and image.value != before


def test_conv_explorer_has_six_sliders_and_static_figure_headless():
    ui = conv_arithmetic_explorer(static=False)
    assert sum(isinstance(w, ipywidgets.IntSlider) for w in _walk(ui)) == 6
    fig = conv_arithmetic_explorer(static=True)
    assert hasattr(fig, "savefig")
    with pytest.raises(TypeError, match="unknown setting"):
        conv_arithmetic_explorer(static=True, kernel=3)
