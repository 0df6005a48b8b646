"""Looking inside a network (lectures 03-07): what a layer computed, how big it is, what it attends to.

* :mod:`~cvkit.inspect.hooks`: intermediate outputs through forward hooks.
* :mod:`~cvkit.inspect.model_summary`: per-layer output shapes, parameters and multiply-accumulates.
* :mod:`~cvkit.inspect.attribution`: saliency maps and Grad-CAM.
* :mod:`~cvkit.inspect.attention`: the attention maps of vision transformers, rollout, mean attention distance, and the
  size of Swin's attention logits (dot product vs cosine).
* :mod:`~cvkit.inspect.deconvnet`: Zeiler & Fergus's deconvnet projections.

Nothing here draws: the pictures are in :mod:`cvkit.viz` (``show_feature_maps``, ``show_heatmaps``,
``show_attention_heads``, ...).
"""

from cvkit.inspect.attention import (
    HEAD_FUSIONS,
    attention_inside_mask,
    attention_maps,
    attention_rollout,
    cls_attention,
    mean_attention_distance,
    record_attention,
    vit_token_layout,
    window_attention_logits,
)
from cvkit.inspect.attribution import GradCAMResult, grad_cam, saliency_map
from cvkit.inspect.hooks import capture_outputs, get_module, recording
from cvkit.inspect.model_summary import LayerRow, ModelSummary, conv_macs, count_macs, summary

__all__ = [
    "HEAD_FUSIONS",
    "GradCAMResult",
    "LayerRow",
    "ModelSummary",
    "attention_inside_mask",
    "attention_maps",
    "window_attention_logits",
    "attention_rollout",
    "capture_outputs",
    "cls_attention",
    "conv_macs",
    "count_macs",
    "get_module",
    "grad_cam",
    "mean_attention_distance",
    "record_attention",
    "recording",
    "saliency_map",
    "summary",
    "vit_token_layout",
]
