"""A small Segment-Anything-style model: image encoder + prompt encoder + two-way mask decoder.

``SmallSAM`` has SAM's three parts (Kirillov et al. 2023, Fig. 4) at toy scale (about 0.1 M
parameters by default, 64x64 images), so it trains on synthetic shapes in a minute on a CPU and every
design idea can be inspected: the image is encoded once (:meth:`SmallSAM.encode`), then any
number of prompts are decoded cheaply (:meth:`SmallSAM.decode`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from cvkit.sam.image_encoder import SamImageEncoder
from cvkit.sam.mask_decoder import MaskDecoder
from cvkit.sam.prompt_encoder import PromptEncoder


class SamOutput(NamedTuple):
    """``masks``: (B, K, H, W) logits (positive = inside); ``iou``: (B, K) predicted IoU of each mask with the intended object."""

    masks: torch.Tensor
    iou: torch.Tensor


class SmallSAM(nn.Module):
    """Promptable segmentation at toy scale.

    Args:
        image_size: H = W of the input images in pixels (divisible by 4).
        embed_dim: D, width of every embedding. depth: two-way transformer blocks.
        num_masks: candidate masks for ambiguous prompts (3 as in SAM).
        encoder_width, encoder_blocks: size of the CNN image encoder (:class:`SamImageEncoder`).

    Shapes:
        images (B, 3, H, W) float in [0, 1]; points (B, N, 2) float (x, y) pixels with labels (B, N)
        int64 (1 foreground, 0 background, -1 padding); boxes (B, 4) float xyxy pixels.
        Output :class:`SamOutput`: K = ``num_masks`` with ``multimask=True``, else K = 1.

    Raises:
        ValueError: images of the wrong size, or no prompt.
    """

    def __init__(
        self,
        image_size: int = 64,
        embed_dim: int = 32,
        depth: int = 2,
        num_masks: int = 3,
        encoder_width: int = 16,
        encoder_blocks: int = 2,
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        self.image_size = image_size
        grid = image_size // SamImageEncoder.stride
        self.image_encoder = SamImageEncoder(embed_dim, encoder_width, encoder_blocks)
        self.prompt_encoder = PromptEncoder(embed_dim, (image_size, image_size), (grid, grid))
        self.mask_decoder = MaskDecoder(embed_dim, depth, num_masks=num_masks)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, D, H/4, W/4) image embeddings (the expensive part: run once per image)."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"images must be {self.image_size}x{self.image_size}, got {tuple(images.shape[-2:])}; resize first"
            )
        return self.image_encoder(images)

    def decode(
        self,
        embeddings: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> SamOutput:
        """Masks for prompts on already-encoded images (cheap: run once per click).

        Returns:
            :class:`SamOutput` with masks (B, K, H, W) and iou (B, K).
        """
        sparse, dense = self.prompt_encoder(points, labels, boxes)
        if embeddings.shape[0] != sparse.shape[0]:
            embeddings = embeddings.expand(sparse.shape[0], -1, -1, -1)  # one image, several prompts
        masks, iou = self.mask_decoder(embeddings, self.prompt_encoder.dense_pe(), sparse, dense)
        if multimask:
            return SamOutput(masks[:, 1:], iou[:, 1:])
        return SamOutput(masks[:, :1], iou[:, :1])

    def forward(self, images, points=None, labels=None, boxes=None, multimask: bool = True) -> SamOutput:
        return self.decode(self.encode(images), points, labels, boxes, multimask)
