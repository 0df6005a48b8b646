r"""Synthetic shapes: images with ground truth for every task in the course.

Each image holds a few circles, squares and triangles in several colours on a noisy
gradient background. Every sample carries boxes (``xyxy`` pixels), class labels,
colour labels, instance masks, a semantic mask and a caption, so the same data
trains a classifier, a detector (Faster R-CNN, DETR), a segmenter (FCN, U-Net,
Mask R-CNN), a captioner, a small CLIP and a SAM-style model in seconds.

Everything is a pure function of ``(seed, index)``: sample ``i`` of
``ShapesDataset(seed=s)`` is identical on every machine and every call. Use different
seeds for training and held-out data (``seed=0`` vs ``seed=1``).

Example::

    ds = ShapesDataset(n=500, image_size=64, seed=0)
    s = ds[0]
    s.image      # (3, 64, 64) float32 in [0, 1]
    s.boxes      # (K, 4) float32, xyxy pixels
    s.labels     # (K,) int64: 0 circle, 1 square, 2 triangle
    s.masks      # (K, 64, 64) bool, visible pixels of each object
    s.semantic   # (64, 64) int64: 0 background, 1 + label elsewhere
    s.caption    # 'a red circle left of a blue square'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.16, 0.16),
    "green": (0.18, 0.70, 0.25),
    "blue": (0.16, 0.35, 0.90),
    "yellow": (0.95, 0.82, 0.12),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)
BACKGROUND = "background"


@dataclass(frozen=True)
class ShapesSample:
    """One synthetic image and its complete ground truth.

    Attributes:
        image: (3, H, W) float32 in [0, 1].
        boxes: (K, 4) float32, ``xyxy`` in pixels, tight around each object's visible
            pixels: x1, y1 inclusive pixel edges, x2, y2 = last pixel + 1 (so a
            one-pixel object at (x, y) has box (x, y, x + 1, y + 1)).
        labels: (K,) int64 class index into ``SHAPE_CLASSES`` (0 circle, 1 square, 2 triangle).
        colours: (K,) int64 colour index into ``COLOUR_NAMES``.
        masks: (K, H, W) bool, the visible pixels of each object (later objects occlude earlier ones).
        semantic: (H, W) int64, 0 for background and ``1 + label`` on objects
            (so ``num_classes = len(SHAPE_CLASSES) + 1`` for segmentation).
        caption: objects named left to right, e.g. ``'a red circle left of a blue square'``.
        index: position in the dataset; seed: the dataset seed.
    """

    image: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    colours: torch.Tensor
    masks: torch.Tensor
    semantic: torch.Tensor
    caption: str
    index: int = 0
    seed: int = 0

    @property
    def num_objects(self) -> int:
        """K, the number of objects in the image."""
        return int(self.labels.numel())

    def target(self, label_offset: int = 1) -> dict[str, torch.Tensor]:
        """The torchvision detection target for this image.

        torchvision's Faster/Mask R-CNN reserve label 0 for background, hence
        ``label_offset=1``; DETR-style code uses ``label_offset=0``.

        Returns:
            dict with ``boxes`` (K, 4) float32 xyxy pixels, ``labels`` (K,) int64
            (``label + label_offset``) and ``masks`` (K, H, W) uint8 in {0, 1}.
        """
        return {
            "boxes": self.boxes.clone(),
            "labels": self.labels + label_offset,
            "masks": self.masks.to(torch.uint8),
        }


class ShapesDataset(Dataset):
    """A deterministic dataset of synthetic shape images (see the module docstring).

    Args:
        n: number of images.
        image_size: height and width in pixels (>= 32).
        min_shapes, max_shapes: how many objects per image (inclusive range, 1 to 6).
        seed: dataset seed; sample ``i`` depends only on ``(seed, i)`` and the other arguments.
        classes: which shape classes to draw (subset of ``SHAPE_CLASSES``; labels keep their global index).
        colours: which colour names to use (subset of ``COLOUR_NAMES``).
        size_range: object radius as a fraction of ``image_size`` (min, max).
        noise: standard deviation of the Gaussian pixel noise added to the image.
        max_overlap: largest IoU allowed between two objects' boxes when placing them.

    Raises:
        ValueError: on sizes, counts or names out of range (the message says which).
    """

    def __init__(
        self,
        n: int = 1000,
        image_size: int = 64,
        min_shapes: int = 1,
        max_shapes: int = 3,
        seed: int = 0,
        classes: Sequence[str] = SHAPE_CLASSES,
        colours: Sequence[str] = COLOUR_NAMES,
        size_range: tuple[float, float] = (0.12, 0.24),
        noise: float = 0.03,
        max_overlap: float = 0.15,
    ) -> None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        if not 1 <= min_shapes <= max_shapes <= 6:
            raise ValueError(f"need 1 <= min_shapes <= max_shapes <= 6, got {min_shapes} and {max_shapes}")
        unknown = [c for c in classes if c not in SHAPE_CLASSES]
        if unknown or not classes:
            raise ValueError(f"classes must be a non-empty subset of {SHAPE_CLASSES}, got {list(classes)}")
        unknown = [c for c in colours if c not in COLOURS]
        if unknown or not colours:
            raise ValueError(f"colours must be a non-empty subset of {COLOUR_NAMES}, got {list(colours)}")
        lo, hi = size_range
        if not 0.05 <= lo <= hi <= 0.45:
            raise ValueError(f"size_range must satisfy 0.05 <= min <= max <= 0.45, got {size_range}")
        self.n = n
        self.image_size = image_size
        self.min_shapes, self.max_shapes = min_shapes, max_shapes
        self.seed = seed
        self.class_ids = [SHAPE_CLASSES.index(c) for c in classes]
        self.colour_ids = [COLOUR_NAMES.index(c) for c in colours]
        self.size_range = (lo, hi)
        self.noise = noise
        self.max_overlap = max_overlap

    classes = SHAPE_CLASSES
    colour_names = COLOUR_NAMES

    @property
    def num_classes(self) -> int:
        """Number of object classes (3), not counting background."""
        return len(SHAPE_CLASSES)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> ShapesSample:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} out of range for ShapesDataset of {self.n} images")
        index = index % self.n if self.n else index
        rng = np.random.default_rng([self.seed, index])
        return self._render(rng, index)

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(n={self.n}, image_size={self.image_size}, shapes={self.min_shapes}..{self.max_shapes}, "
            f"seed={self.seed})"
        )

    # -- whole-dataset views -------------------------------------------------------------
    def stack(self, indices: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Render many samples into stacked tensors (for on-device training).

        Returns:
            dict with ``images`` (N, 3, H, W) float32 in [0, 1], ``semantic`` (N, H, W) int64,
            and ``first_label`` (N,) int64 (class of the leftmost object; the classification
            label when ``max_shapes == 1``).
        """
        indices = range(self.n) if indices is None else indices
        samples = [self[i] for i in indices]
        return {
            "images": torch.stack([s.image for s in samples])
            if samples
            else torch.empty(0, 3, self.image_size, self.image_size),
            "semantic": torch.stack([s.semantic for s in samples])
            if samples
            else torch.empty(0, self.image_size, self.image_size, dtype=torch.int64),
            "first_label": torch.tensor([int(s.labels[0]) for s in samples], dtype=torch.int64),
        }

    def captions(self) -> list[str]:
        """All captions, in index order."""
        return [self[i].caption for i in range(self.n)]

    # -- rendering -------------------------------------------------------------------------
    def _render(self, rng: np.random.Generator, index: int) -> ShapesSample:
        size = self.image_size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5  # pixel centres

        # background: a random linear gradient between two muted colours, plus noise below
        c0, c1 = rng.uniform(0.25, 0.75, size=(2, 3)).astype(np.float32)
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / size
        ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
        image = c0[:, None, None] * (1 - ramp) + c1[:, None, None] * ramp  # (3, H, W)

        k = int(rng.integers(self.min_shapes, self.max_shapes + 1))
        placed: list[tuple[np.ndarray, int, int, np.ndarray]] = []  # (mask, label, colour, bbox)
        for _ in range(k):
            for _attempt in range(30):
                label = int(rng.choice(self.class_ids))
                colour = int(rng.choice(self.colour_ids))
                radius = rng.uniform(*self.size_range) * size
                cx, cy = rng.uniform(radius, size - radius, size=2)
                theta = rng.uniform(0, 2 * math.pi)
                mask = _shape_mask(SHAPE_CLASSES[label], xx, yy, cx, cy, radius, theta)
                if mask.sum() < 9:
                    continue
                bbox = _mask_box(mask)
                if all(_box_iou(bbox, other[3]) <= self.max_overlap for other in placed):
                    placed.append((mask, label, colour, bbox))
                    break

        # paint in order: later objects occlude earlier ones; colours are jittered a little
        owner = np.full((size, size), -1, dtype=np.int64)
        for i, (mask, _label, colour, _bbox) in enumerate(placed):
            rgb = np.asarray(COLOURS[COLOUR_NAMES[colour]], dtype=np.float32)
            rgb = np.clip(rgb + rng.normal(0, 0.04, size=3).astype(np.float32), 0, 1)
            image[:, mask] = rgb[:, None]
            owner[mask] = i
        image = image + rng.normal(0, self.noise, size=image.shape).astype(np.float32)
        image = np.clip(image, 0, 1)

        # keep objects with enough visible pixels; masks and boxes describe what is visible
        keep = [i for i in range(len(placed)) if (owner == i).sum() >= 9]
        masks = np.stack([owner == i for i in keep]) if keep else np.zeros((0, size, size), bool)
        labels = np.array([placed[i][1] for i in keep], dtype=np.int64)
        colours = np.array([placed[i][2] for i in keep], dtype=np.int64)
        boxes = np.stack([_mask_box(m) for m in masks]).astype(np.float32) if keep else np.zeros((0, 4), np.float32)
        semantic = np.zeros((size, size), dtype=np.int64)
        for m, lab in zip(masks, labels):
            semantic[m] = lab + 1

        order = np.argsort((boxes[:, 0] + boxes[:, 2]) / 2, kind="stable") if keep else np.zeros(0, np.int64)
        caption = describe([(COLOUR_NAMES[colours[i]], SHAPE_CLASSES[labels[i]]) for i in order])
        return ShapesSample(
            image=torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            boxes=torch.from_numpy(boxes[order]),
            labels=torch.from_numpy(labels[order]),
            colours=torch.from_numpy(colours[order]),
            masks=torch.from_numpy(masks[order]),
            semantic=torch.from_numpy(semantic),
            caption=caption,
            index=index,
            seed=self.seed,
        )


def describe(objects: Sequence[tuple[str, str]]) -> str:
    """Caption for objects listed left to right as ``(colour, shape)`` pairs.

    >>> describe([("red", "circle")])
    'a red circle'
    >>> describe([("red", "circle"), ("blue", "square")])
    'a red circle left of a blue square'
    >>> describe([("red", "circle"), ("blue", "square"), ("green", "triangle")])
    'a red circle , a blue square and a green triangle'
    """
    phrases = [f"a {colour} {shape}" for colour, shape in objects]
    if not phrases:
        return "an empty picture"
    if len(phrases) == 1:
        return phrases[0]
    if len(phrases) == 2:
        return f"{phrases[0]} left of {phrases[1]}"
    return " , ".join(phrases[:-1]) + f" and {phrases[-1]}"


# every word a caption can contain, with the usual special tokens first
CAPTION_VOCAB: tuple[str, ...] = (
    ("<pad>", "<bos>", "<eos>", "<unk>", "a", "an", "empty", "picture", "left", "of", ",", "and")
    + COLOUR_NAMES
    + SHAPE_CLASSES
)


def collate_detection(batch: Sequence[ShapesSample], label_offset: int = 1) -> tuple[torch.Tensor, list[dict]]:
    """Collate samples for torchvision detection models.

    Returns:
        images (B, 3, H, W) float32 in [0, 1], and a list of B target dicts
        (see :meth:`ShapesSample.target`).
    """
    return torch.stack([s.image for s in batch]), [s.target(label_offset) for s in batch]


def _shape_mask(kind: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    """Boolean (H, W) mask of one shape with centre (cx, cy), circumradius r, rotation theta."""
    if kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
    corners = {"square": 4, "triangle": 3}[kind]
    # a square's circumradius makes it look larger than a circle of the same r: shrink it a little
    r = r * (0.85 if kind == "square" else 1.1)
    angles = theta + 2 * math.pi * np.arange(corners) / corners
    vx, vy = cx + r * np.cos(angles), cy + r * np.sin(angles)
    inside = np.ones_like(xx, dtype=bool)
    for i in range(corners):  # convex polygon: inside every edge's half-plane
        x0, y0, x1, y1 = vx[i], vy[i], vx[(i + 1) % corners], vy[(i + 1) % corners]
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def _mask_box(mask: np.ndarray) -> np.ndarray:
    """Tight xyxy box of a boolean mask (x2, y2 exclusive pixel edges)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
