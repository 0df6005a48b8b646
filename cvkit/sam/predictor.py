"""The predictor interface: set an image once, then ask for masks for any prompt.

This mirrors ``segment_anything.SamPredictor`` (``set_image`` then ``predict``), in the kit's
layout: images (3, H, W) float in [0, 1], points (N, 2) (x, y) pixels, boxes xyxy pixels, masks
(K, H, W) bool at the image's own resolution. The click-to-segment widget drives anything with
this interface: :class:`SmallSamPredictor` (our model) or
:class:`cvkit.sam.official.OfficialSamPredictor` (Meta's SAM, when its weights are present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from cvkit.sam.model import SmallSAM


@dataclass
class Prediction:
    """Mask candidates for one prompt, best first.

    Attributes:
        masks: (K, H, W) bool at the image's resolution.
        scores: (K,) float, the model's predicted IoU of each mask, sorted descending.
        logits: (K, H, W) float mask logits (positive = inside), same order.
    """

    masks: torch.Tensor
    scores: torch.Tensor
    logits: torch.Tensor


@runtime_checkable
class PromptablePredictor(Protocol):
    """Anything the click-to-segment widget can drive."""

    def set_image(self, image: torch.Tensor) -> None:
        """Encode (3, H, W) float in [0, 1]."""

    def predict(
        self,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        box: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> Prediction:
        """Masks for points (N, 2) xy pixels with labels (N,) and/or a box (4,) xyxy pixels."""


def check_prompt(
    points, labels, box, height: int, width: int
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Validate and convert one image's prompt to float/int64 tensors.

    Returns:
        points (N, 2) float32 or None, labels (N,) int64 or None, box (4,) float32 or None.

    Raises:
        ValueError: no prompt, mismatched points/labels, labels outside {0, 1}, a box that is not
            (4,) with x1 < x2 and y1 < y2, or coordinates outside the image.
    """
    if points is None and box is None:
        raise ValueError("give a prompt: points (N, 2) with labels (N,), or a box (4,) xyxy")
    if points is not None:
        points = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)  # (N, 2)
        labels = (
            torch.ones(len(points), dtype=torch.long)
            if labels is None
            else torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        )
        if labels.shape[0] != points.shape[0]:
            raise ValueError(f"got {points.shape[0]} points but {labels.shape[0]} labels")
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise ValueError("point labels must be 1 (foreground) or 0 (background)")
        if bool((points < 0).any() | (points[:, 0] > width).any() | (points[:, 1] > height).any()):
            raise ValueError(
                f"points must lie inside the {width}x{height} image (x in [0, {width}], y in [0, {height}])"
            )
    if box is not None:
        box = torch.as_tensor(box, dtype=torch.float32).reshape(-1)  # (4,)
        if box.shape != (4,) or not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"box must be (x1, y1, x2, y2) pixels with x1 < x2 and y1 < y2, got {box.tolist()}")
    return points, labels, box


class SmallSamPredictor:
    """:class:`PromptablePredictor` for a trained :class:`SmallSAM`.

    The image is resized to the model's square input (aspect ratio is not kept: the toy model
    has no padding logic), prompts are scaled the same way, and masks are resized back.

    Args:
        model: the trained model (used in eval mode).

    Raises:
        RuntimeError: ``predict`` before ``set_image``.
    """

    def __init__(self, model: SmallSAM) -> None:
        self.model = model
        self.embedding: torch.Tensor | None = None
        self.size: tuple[int, int] | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Encode one image: (3, H, W) float in [0, 1], any size.

        Raises:
            ValueError: not a (3, H, W) float tensor.
        """
        if (
            not isinstance(image, torch.Tensor)
            or image.dim() != 3
            or image.shape[0] != 3
            or not image.is_floating_point()
        ):
            raise ValueError(
                f"image must be a (3, H, W) float tensor in [0, 1], got {getattr(image, 'shape', type(image).__name__)}"
            )
        s = self.model.image_size
        self.size = (image.shape[1], image.shape[2])
        small = F.interpolate(
            image[None].to(self.device), size=(s, s), mode="bilinear", antialias=True, align_corners=False
        )
        self.model.eval()
        self.embedding = self.model.encode(small.clamp(0, 1))

    @torch.no_grad()
    def predict(self, points=None, labels=None, box=None, multimask: bool = True) -> Prediction:
        """Mask candidates for one prompt (see :class:`PromptablePredictor`), sorted by predicted IoU."""
        if self.embedding is None or self.size is None:
            raise RuntimeError("an image must be set with .set_image(image) before .predict(...)")
        h, w = self.size
        points, labels, box = check_prompt(points, labels, box, h, w)
        s = self.model.image_size
        scale = torch.tensor([s / w, s / h], device=self.device)
        kwargs = {}
        if points is not None:
            kwargs.update(points=(points.to(self.device) * scale)[None], labels=labels.to(self.device)[None])
        if box is not None:
            kwargs.update(
                boxes=(box.to(self.device).view(2, 2) * scale).view(1, 4)
            )  # corners (2, xy) scaled, back to (1, 4)
        out = self.model.decode(self.embedding, multimask=multimask, **kwargs)
        logits = F.interpolate(out.masks, size=(h, w), mode="bilinear", align_corners=False)[0].cpu()  # (K, H, W)
        scores = out.iou[0].cpu()
        order = scores.argsort(descending=True)
        return Prediction(masks=logits[order] > 0, scores=scores[order], logits=logits[order])
