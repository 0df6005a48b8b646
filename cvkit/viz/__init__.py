"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.annotations import PALETTE, draw_boxes, overlay_mask, show_sample
from cvkit.viz.curves import compare_histories, plot_history
from cvkit.viz.images import normalize_for_display, show_images, to_display

__all__ = [
    "PALETTE",
    "compare_histories",
    "draw_boxes",
    "normalize_for_display",
    "overlay_mask",
    "plot_history",
    "show_images",
    "show_sample",
    "to_display",
]
