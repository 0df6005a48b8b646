"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.annotations import PALETTE, draw_boxes, overlay_mask, show_sample
from cvkit.viz.conv import draw_conv_arithmetic, draw_receptive_field_growth, show_filtered
from cvkit.viz.curves import compare_histories, plot_history
from cvkit.viz.detection import (
    plot_anchor_matches,
    plot_anchors,
    plot_detection_grid,
    plot_detections,
    plot_detr_matches,
    plot_iou,
    plot_nms,
    plot_precision_recall,
    plot_proposals,
    plot_roi_bins,
)
from cvkit.viz.images import normalize_for_display, show_images, to_display
from cvkit.viz.optimization import plot_landscape
from cvkit.viz.segmentation import add_class_legend, plot_instances, plot_segmentation, show_matrices

__all__ = [
    "PALETTE",
    "add_class_legend",
    "compare_histories",
    "draw_conv_arithmetic",
    "draw_receptive_field_growth",
    "draw_boxes",
    "normalize_for_display",
    "overlay_mask",
    "plot_anchor_matches",
    "plot_anchors",
    "plot_detection_grid",
    "plot_detections",
    "plot_detr_matches",
    "plot_history",
    "plot_instances",
    "plot_iou",
    "plot_landscape",
    "plot_nms",
    "plot_precision_recall",
    "plot_proposals",
    "plot_roi_bins",
    "plot_segmentation",
    "show_filtered",
    "show_images",
    "show_matrices",
    "show_sample",
    "to_display",
]
