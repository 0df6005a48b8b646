"""A small Segment-Anything-style model and its tools (lecture 13), one concept per module.

* :mod:`~cvkit.sam.positional`: random Fourier features for positions (points, boxes, the image grid).
* :mod:`~cvkit.sam.prompt_encoder`: points and boxes to tokens.
* :mod:`~cvkit.sam.image_encoder`: image to a grid of embeddings (once per image).
* :mod:`~cvkit.sam.mask_decoder`: two-way transformer, several masks with predicted IoU.
* :mod:`~cvkit.sam.model`: :class:`SmallSAM`, the three parts together (registered as ``small_sam`` in :mod:`cvkit.models.segment_anything`).
* :mod:`~cvkit.sam.prompts`: simulated point and box prompts from true masks.
* :mod:`~cvkit.sam.training`: SAM's loss, a training step for :func:`cvkit.train.fit`, mIoU per prompt kind
  (masks are compared with :func:`cvkit.segmentation.paired_mask_iou`).
* :mod:`~cvkit.sam.predictor`: ``set_image`` / ``predict``, the interface the widget drives.
* :mod:`~cvkit.sam.official`: Meta's SAM behind the same interface, when installed with weights.
* :mod:`~cvkit.sam.memory`: SAM 2's memory attention, demonstrated on a synthetic video.

Layout: images (B, 3, H, W) float in [0, 1]; points (x, y) pixels; boxes xyxy pixels; masks bool.
"""

from cvkit.sam.memory import (
    MemoryBank,
    TrackResult,
    evaluate_tracking,
    memory_readout,
    moving_object_video,
    track_with_memory,
)
from cvkit.sam.model import SamOutput, SmallSAM
from cvkit.sam.official import OfficialSamPredictor, OfficialSamUnavailable, load_official_sam, try_official_sam
from cvkit.sam.positional import RandomFourierEncoding
from cvkit.sam.predictor import Prediction, PromptablePredictor, SmallSamPredictor
from cvkit.sam.prompt_encoder import PromptEncoder
from cvkit.sam.prompts import PROMPT_KINDS, Prompts, masks_to_boxes, sample_points, simulate_prompts
from cvkit.sam.training import evaluate_prompts, instance_pairs, sam_loss, sam_step

__all__ = [
    "MemoryBank",
    "OfficialSamPredictor",
    "OfficialSamUnavailable",
    "PROMPT_KINDS",
    "Prediction",
    "PromptEncoder",
    "PromptablePredictor",
    "Prompts",
    "RandomFourierEncoding",
    "SamOutput",
    "SmallSAM",
    "SmallSamPredictor",
    "TrackResult",
    "evaluate_prompts",
    "evaluate_tracking",
    "instance_pairs",
    "load_official_sam",
    "masks_to_boxes",
    "memory_readout",
    "moving_object_video",
    "sam_loss",
    "sam_step",
    "sample_points",
    "simulate_prompts",
    "track_with_memory",
    "try_official_sam",
]
