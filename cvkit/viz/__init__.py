"""Static visualizers (matplotlib): images, training curves, annotations, and the lecture-specific pictures.

Analysis lives elsewhere (:mod:`cvkit.inspect` records attention and features, :mod:`cvkit.conv` computes receptive
fields); this package only draws. Every function returns the matplotlib Figure or axis it drew, so notebooks can save or
restyle it; nothing here needs a notebook front end.
"""

from cvkit.viz.activations import plot_activations
from cvkit.segmentation.colormap import PALETTE
from cvkit.viz.annotations import draw_boxes, overlay_mask, show_sample
from cvkit.viz.attention import (
    overlay_attention,
    plot_attention_distance,
    show_attention_heads,
    show_attention_rollout,
    show_position_similarity,
    upsample_map,
)
from cvkit.viz.conv import draw_conv_arithmetic, show_filtered
from cvkit.viz.curves import compare_histories, plot_gan_history, plot_history
from cvkit.viz.diffusion import plot_schedules
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
from cvkit.viz.features import show_feature_maps, show_filters, show_stage_features
from cvkit.viz.geometry import flow_to_rgb, plot_point_cloud
from cvkit.viz.heatmaps import overlay_heatmap, show_heatmaps
from cvkit.viz.images import normalize_for_display, show_images, to_display
from cvkit.viz.optimization import plot_landscape
from cvkit.viz.receptive_field import draw_receptive_field, draw_receptive_field_growth, plot_receptive_field_growth
from cvkit.viz.representations import embed_2d, plot_embedding, plot_embeddings, plot_probe_accuracies
from cvkit.viz.segmentation import add_class_legend, plot_instances, plot_segmentation, show_matrices
from cvkit.viz.vision_language import show_caption_attention, show_similarity_matrix
from cvkit.viz.windows import group_ids, show_block_grid, show_shifted_windows, window_attention_map

__all__ = [
    "PALETTE",
    "add_class_legend",
    "compare_histories",
    "draw_boxes",
    "draw_conv_arithmetic",
    "draw_receptive_field",
    "draw_receptive_field_growth",
    "embed_2d",
    "flow_to_rgb",
    "group_ids",
    "normalize_for_display",
    "overlay_attention",
    "overlay_heatmap",
    "overlay_mask",
    "plot_activations",
    "plot_anchor_matches",
    "plot_anchors",
    "plot_attention_distance",
    "plot_detection_grid",
    "plot_detections",
    "plot_detr_matches",
    "plot_embedding",
    "plot_embeddings",
    "plot_gan_history",
    "plot_history",
    "plot_instances",
    "plot_iou",
    "plot_landscape",
    "plot_nms",
    "plot_precision_recall",
    "plot_probe_accuracies",
    "plot_point_cloud",
    "plot_proposals",
    "plot_receptive_field_growth",
    "plot_roi_bins",
    "plot_schedules",
    "plot_segmentation",
    "show_attention_heads",
    "show_attention_rollout",
    "show_block_grid",
    "show_caption_attention",
    "show_feature_maps",
    "show_filtered",
    "show_filters",
    "show_heatmaps",
    "show_images",
    "show_matrices",
    "show_position_similarity",
    "show_sample",
    "show_shifted_windows",
    "show_similarity_matrix",
    "show_stage_features",
    "to_display",
    "upsample_map",
    "window_attention_map",
]
