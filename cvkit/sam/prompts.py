"""Simulated prompts: the clicks and boxes a user would give, drawn from ground-truth masks.

SAM is trained by simulating an interactive annotator (Kirillov et al. 2023, appendix A,
"Training algorithm"): the first prompt is a foreground point sampled uniformly inside the target
mask or a box around it with noise (standard deviation 10% of the box side, at most 20 pixels);
here we do the same, and also combine a point with a box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

PromptKind = Literal["point", "box", "point+box"]
PROMPT_KINDS = ("point", "box", "point+box")


@dataclass
class Prompts:
    """A batch of prompts in model-input pixels (any field may be ``None``).

    Attributes:
        points: (B, N, 2) float (x, y) pixels. labels: (B, N) int64, 1 foreground / 0 background.
        boxes: (B, 4) float xyxy pixels.
    """

    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    boxes: torch.Tensor | None = None

    def as_kwargs(self) -> dict:
        """``dict(points=..., labels=..., boxes=...)`` for :meth:`cvkit.sam.model.SmallSAM.decode`."""
        return dict(points=self.points, labels=self.labels, boxes=self.boxes)


def sample_points(masks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One point per mask, uniform over its pixels (the pixel's top-left integer coordinate).

    Args:
        masks: (B, H, W) bool, each non-empty.

    Returns:
        (B, 1, 2) float (x, y) pixels.

    Raises:
        ValueError: an empty mask.
    """
    b, h, w = masks.shape
    flat = masks.reshape(b, -1).float()  # (B, H*W)
    if bool((flat.sum(1) == 0).any()):
        raise ValueError("every mask needs at least one pixel to sample a point from")
    idx = torch.multinomial(flat.cpu(), 1, generator=generator).to(masks.device).squeeze(1)  # (B,)
    return torch.stack([idx % w, idx // w], dim=1).float().unsqueeze(1)  # (B, 1, 2) as (x, y)


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight xyxy boxes (x2, y2 exclusive, like :class:`cvkit.data.ShapesDataset`) of (B, H, W) bool masks -> (B, 4) float."""
    from torchvision.ops import masks_to_boxes as tv_masks_to_boxes

    return tv_masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0], device=masks.device)


def jitter_boxes(
    boxes: torch.Tensor,
    size: int,
    fraction: float = 0.1,
    max_pixels: float = 20.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add Gaussian noise to each coordinate: std ``fraction`` of the box side, clipped to ``max_pixels`` (SAM, appendix A).

    Args:
        boxes: (B, 4) xyxy pixels. size: image side in pixels (boxes are clipped to [0, size]).

    Returns:
        (B, 4) float, still with x1 < x2 and y1 < y2.
    """
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)  # (B, 4): w, h, w, h
    noise = torch.randn(boxes.shape, generator=generator).to(boxes.device) * fraction * wh
    out = (boxes + noise.clamp(-max_pixels, max_pixels)).clamp(0, size)
    x1, x2 = torch.minimum(out[:, 0], out[:, 2] - 1), torch.maximum(out[:, 2], out[:, 0] + 1)
    y1, y2 = torch.minimum(out[:, 1], out[:, 3] - 1), torch.maximum(out[:, 3], out[:, 1] + 1)
    return torch.stack([x1, y1, x2, y2], dim=1)


def simulate_prompts(
    masks: torch.Tensor, kind: PromptKind, *, box_noise: float = 0.1, generator: torch.Generator | None = None
) -> Prompts:
    """Prompts of one kind for a batch of target masks.

    Args:
        masks: (B, H, W) bool target masks (non-empty).
        kind: ``"point"`` (one foreground click), ``"box"`` (a jittered box) or ``"point+box"``.
        box_noise: box jitter as a fraction of its side (0: the tight box).

    Returns:
        :class:`Prompts`.

    Raises:
        ValueError: unknown ``kind`` (choose one of ``PROMPT_KINDS``) or an empty mask.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; choose one of {PROMPT_KINDS}")
    prompts = Prompts()
    if "point" in kind:
        prompts.points = sample_points(masks, generator)
        prompts.labels = torch.ones(masks.shape[0], 1, dtype=torch.long, device=masks.device)
    if "box" in kind:
        boxes = masks_to_boxes(masks)
        prompts.boxes = jitter_boxes(boxes, masks.shape[-1], box_noise, generator=generator) if box_noise > 0 else boxes
    return prompts
