"""ipywidgets explorers on top of :mod:`cvkit.viz`. Importing this needs no front end:
``ipywidgets`` is imported only when a live explorer is shown, and headless runs draw a static figure.
"""

from cvkit.widgets.anchors import explore_anchors
from cvkit.widgets.click_segment import ClickToSegment, click_to_segment
from cvkit.widgets.conv import conv_arithmetic_explorer
from cvkit.widgets.explorer import Choice, Slider, defaults, explore
from cvkit.widgets.feature_maps import feature_map_explorer
from cvkit.widgets.receptive_field import receptive_field_explorer

__all__ = [
    "Choice",
    "ClickToSegment",
    "Slider",
    "click_to_segment",
    "conv_arithmetic_explorer",
    "defaults",
    "explore",
    "explore_anchors",
    "feature_map_explorer",
    "receptive_field_explorer",
]
