"""Registry entry of the small Segment-Anything-style model (lecture 13); the model itself is :mod:`cvkit.sam`."""

from __future__ import annotations

import torch

from cvkit.models.registry import register_model
from cvkit.sam.model import SmallSAM


def _example_inputs(batch_size: int) -> tuple:
    g = torch.Generator().manual_seed(0)
    points = torch.rand(batch_size, 2, 2, generator=g) * 64
    labels = torch.tensor([[1, 0]]).expand(batch_size, -1)
    boxes = torch.tensor([[8.0, 10.0, 40.0, 50.0]]).expand(batch_size, -1)
    return torch.rand(batch_size, 3, 64, 64, generator=g), points, labels, boxes


@register_model(
    "small_sam",
    task="promptable-segmentation",
    example_inputs=_example_inputs,
    output_shape=(3, 64, 64),
    # the single-mask token and hypernetwork (index 0) are unused when multimask=True, and vice versa
    unused_parameters=("mask_decoder.hypernetworks.0.",),
    reference="Kirillov et al. 2023 (Segment Anything)",
)
def small_sam(
    image_size: int = 64,
    embed_dim: int = 32,
    depth: int = 2,
    num_masks: int = 3,
    encoder_width: int = 16,
    encoder_blocks: int = 2,
) -> SmallSAM:
    """A small SAM-style promptable segmenter for 64x64 images (points and boxes, several masks with IoU)."""
    return SmallSAM(image_size, embed_dim, depth, num_masks, encoder_width, encoder_blocks)
