"""ipywidgets explorers on top of :mod:`cvkit.viz`. Importing this needs no front end:
``ipywidgets`` is imported only when a live explorer is shown, and headless runs draw a static figure.
"""

from cvkit.widgets.conv import conv_arithmetic_explorer
from cvkit.widgets.explorer import Choice, Slider, defaults, explore

__all__ = ["Choice", "Slider", "conv_arithmetic_explorer", "defaults", "explore"]
