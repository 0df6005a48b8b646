"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.annotations import PALETTE, draw_boxes, overlay_mask, show_sample
from cvkit.viz.conv import draw_conv_arithmetic, draw_receptive_field_growth, show_filtered
from cvkit.viz.curves import compare_histories, plot_history
from cvkit.viz.images import normalize_for_display, show_images, to_display
from cvkit.viz.optimization import plot_landscape
from cvkit.viz.representations import embed_2d, plot_embedding, plot_probe_accuracies
from cvkit.viz.vision_language import overlay_heatmap, show_caption_attention, show_similarity_matrix

__all__ = [
    "PALETTE",
    "compare_histories",
    "draw_conv_arithmetic",
    "draw_receptive_field_growth",
    "draw_boxes",
    "embed_2d",
    "normalize_for_display",
    "overlay_heatmap",
    "overlay_mask",
    "plot_embedding",
    "plot_history",
    "plot_landscape",
    "plot_probe_accuracies",
    "show_caption_attention",
    "show_filtered",
    "show_images",
    "show_sample",
    "show_similarity_matrix",
    "to_display",
]
