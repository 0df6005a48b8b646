"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.annotations import PALETTE, draw_boxes, overlay_mask, show_sample
from cvkit.viz.conv import draw_conv_arithmetic, draw_receptive_field_growth, show_filtered
from cvkit.viz.curves import compare_histories, plot_history
from cvkit.viz.images import normalize_for_display, show_images, to_display
from cvkit.viz.optimization import plot_landscape

__all__ = [
    "PALETTE",
    "compare_histories",
    "draw_conv_arithmetic",
    "draw_receptive_field_growth",
    "draw_boxes",
    "normalize_for_display",
    "overlay_mask",
    "plot_history",
    "plot_landscape",
    "show_filtered",
    "show_images",
    "show_sample",
    "to_display",
]
