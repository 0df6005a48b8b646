"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.activations import plot_activations
from cvkit.viz.annotations import PALETTE, draw_boxes, overlay_mask, show_sample
from cvkit.viz.conv import draw_conv_arithmetic, draw_receptive_field_growth, show_filtered
from cvkit.viz.curves import compare_histories, plot_history
from cvkit.viz.features import show_feature_maps, show_filters, show_stage_features
from cvkit.viz.heatmaps import overlay_heatmap, show_heatmaps
from cvkit.viz.images import normalize_for_display, show_images, to_display
from cvkit.viz.optimization import plot_landscape
from cvkit.viz.receptive_field import draw_receptive_field, plot_receptive_field_growth

__all__ = [
    "PALETTE",
    "compare_histories",
    "draw_conv_arithmetic",
    "draw_receptive_field_growth",
    "draw_boxes",
    "draw_receptive_field",
    "normalize_for_display",
    "overlay_heatmap",
    "overlay_mask",
    "plot_activations",
    "plot_history",
    "plot_landscape",
    "plot_receptive_field_growth",
    "show_feature_maps",
    "show_filtered",
    "show_filters",
    "show_heatmaps",
    "show_images",
    "show_sample",
    "show_stage_features",
    "to_display",
]
