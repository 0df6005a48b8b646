"""Synthetic shapes as (image, caption) pairs: the training data of the captioning and CLIP lectures."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cvkit.data.shapes import COLOUR_NAMES, SHAPE_CLASSES, ShapesDataset
from cvkit.vl.tokenizer import CaptionTokenizer


@dataclass
class CaptionedImages:
    """Images with their captions, rendered once and kept as tensors.

    Attributes:
        images: (N, 3, H, W) uint8 in [0, 255] (feed :class:`cvkit.data.DeviceLoader`, which scales to [0, 1]).
        tokens: (N, T) int64 caption ids (``<bos> ... <eos> <pad>...``).
        captions: N strings.
        objects: per image, the ``(colour, shape)`` names of its objects, left to right.
        boxes: per image, (K, 4) float32 ``xyxy`` pixel boxes of those objects, same order.
        masks: per image, (K, H, W) bool visible pixels of those objects, same order.
    """

    images: torch.Tensor
    tokens: torch.Tensor
    captions: list[str]
    objects: list[list[tuple[str, str]]]
    boxes: list[torch.Tensor]
    masks: list[torch.Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]

    def float_images(self) -> torch.Tensor:
        """(N, 3, H, W) float32 in [0, 1]."""
        return self.images.float().div(255)


def captioned_shapes(
    n: int,
    image_size: int = 48,
    seed: int = 0,
    min_shapes: int = 1,
    max_shapes: int = 3,
    tokenizer: CaptionTokenizer | None = None,
    max_len: int | None = None,
) -> CaptionedImages:
    """Render ``n`` synthetic shapes images with their captions (see :class:`cvkit.data.ShapesDataset`).

    Args:
        n: number of images.
        image_size: side in pixels (>= 32).
        seed: dataset seed (use different seeds for training and held-out data).
        min_shapes, max_shapes: objects per image.
        tokenizer: encodes the captions (default: :class:`CaptionTokenizer` over the shapes vocabulary).
        max_len: padded token length (default: the longest caption + 2).

    Returns:
        :class:`CaptionedImages`.
    """
    tokenizer = tokenizer or CaptionTokenizer()
    ds = ShapesDataset(n=n, image_size=image_size, min_shapes=min_shapes, max_shapes=max_shapes, seed=seed)
    samples = [ds[i] for i in range(n)]
    images = (torch.stack([s.image for s in samples]) * 255).round().to(torch.uint8)
    captions = [s.caption for s in samples]
    objects = [
        [(COLOUR_NAMES[c], SHAPE_CLASSES[k]) for c, k in zip(s.colours.tolist(), s.labels.tolist())] for s in samples
    ]
    return CaptionedImages(
        images,
        tokenizer.encode(captions, max_len),
        captions,
        objects,
        [s.boxes for s in samples],
        [s.masks for s in samples],
    )
