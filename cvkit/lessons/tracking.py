"""Lesson 11_4 (UniTrack): one frozen appearance model, two tracking tasks, on moving-shapes videos.

UniTrack (Wang et al., "Do Different Tracking Tasks Require Different Appearance Models?", NeurIPS 2021) takes any
pre-trained encoder, freezes it, and solves several tracking tasks with task-agnostic primitives on its features. The
lesson measures two of them with :mod:`cvkit.tracking`:

* **propagation** (video object segmentation): the first frame's mask of one object is carried to every later frame by
  feature affinity (:func:`cvkit.tracking.propagate_mask`); scored by the region similarity J of the DAVIS benchmark,
  the IoU of the predicted and the true mask, averaged over frames 1..T-1 and objects;
* **association** (multi-object tracking): every frame's true boxes are embedded by RoIAlign on the feature map and
  matched to the tracks by the Hungarian algorithm (:func:`cvkit.tracking.track_by_appearance`); scored by the share
  of detections after frame 0 that keep their identity (:func:`cvkit.tracking.identity_accuracy`).

Encoders see the frames grey (the course encoders were trained on grey Fashion-MNIST), upsampled so that every model
has one feature cell per 4 x 4 pixels. The "pixels" appearance model is the colour frame itself, cut into 4 x 4
patches: the baseline every learned model has to beat.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data import ShapesDataset
from cvkit.data.video import ShapesVideo, moving_shapes
from cvkit.tracking import embed_boxes, identity_accuracy, propagate_mask, track_by_appearance

CELL = 4  # image pixels per feature cell, for every appearance model


def tracking_videos(n: int, frames: int = 8, image_size: int = 48, seed: int = 0) -> list[ShapesVideo]:
    """``n`` moving-shapes videos of two or three objects (:func:`cvkit.data.video.moving_shapes`), seeded.

    Returns:
        ``n`` :class:`cvkit.data.video.ShapesVideo`: frames (T, 3, image_size, image_size) float32 in [0, 1], masks
        (T, K, H, W) bool, boxes (T, K, 4) xyxy pixels; velocities drawn per object in [-3, 3] pixels per frame.

    Raises:
        ValueError: ``n`` < 1 or ``frames`` < 2.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    samples = ShapesDataset(n=n, image_size=image_size, min_shapes=2, max_shapes=3, seed=seed)
    return [moving_shapes(samples[i], frames=frames, seed=seed * 1000 + i) for i in range(n)]


@torch.no_grad()
def frame_features(encoder: nn.Module | None, frames: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The appearance model's feature map of every frame, one cell per :data:`CELL` x :data:`CELL` image pixels.

    Args:
        encoder: a ``conv_encoder`` (its ``forward_map``; the frames are upsampled so that its stride covers
            :data:`CELL` pixels), CPC's :class:`cvkit.ssl.PatchGridEncoder` (its ``grid`` of 8-pixel patches every 4
            pixels, taken as tiling the image in cells of 4: 2 pixels off their true centres), or ``None`` for the
            pixels baseline: every 4 x 4 patch of the colour frame as a 48-number vector.
        frames: (T, 3, H, W) float32 in [0, 1]. Encoders see them grey, as the course encoders saw Fashion-MNIST.

    Returns:
        ``(features (T, D, h, w), stride)``: image pixels per cell.

    Raises:
        TypeError: an encoder with neither ``forward_map`` nor ``grid``.
    """
    if encoder is None:
        t, c, h, w = frames.shape
        patches = F.unfold(frames, CELL, stride=CELL)  # (T, 3 * CELL * CELL, cells)
        return patches.view(t, -1, h // CELL, w // CELL), float(CELL)
    grey = frames.mean(1, keepdim=True)  # (T, 1, H, W)
    was_training = encoder.training
    encoder.eval()
    try:
        device = next(encoder.parameters()).device
        if hasattr(encoder, "grid"):  # CPC's patch grid
            return encoder.grid(grey.to(device)).cpu(), float(encoder.stride)
        if hasattr(encoder, "forward_map"):
            scale = encoder.stride / CELL
            big = F.interpolate(grey, scale_factor=scale, mode="bilinear", align_corners=False) if scale > 1 else grey
            return encoder.forward_map(big.to(device)).cpu(), float(encoder.stride / max(scale, 1.0))
    finally:
        encoder.train(was_training)
    raise TypeError(f"{type(encoder).__name__} has neither forward_map nor grid: no feature map to track with")


def _to_grid(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """An (H, W) bool mask as the share of each cell of an (h, w) feature grid it covers: (h, w) float in [0, 1]."""
    return F.adaptive_avg_pool2d(mask[None, None].float(), size)[0, 0]


def _to_image(grid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, h, w) probabilities upsampled bilinearly to (T, H, W)."""
    return F.interpolate(grid[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def propagated_masks(
    video: ShapesVideo, encoder: nn.Module | None, context: int = 3, temperature: float = 0.01, topk: int = 5
) -> torch.Tensor:
    """Every object's frame-0 mask carried through the video by :func:`cvkit.tracking.propagate_mask` on the
    appearance model's features (the lesson's temperature and top-k, chosen on videos of seed 0).

    Args:
        video: a :class:`cvkit.data.video.ShapesVideo` (frame 0's masks are the given ones).
        encoder: as in :func:`frame_features` (``None``: pixels).
        context, temperature, topk: see :func:`cvkit.tracking.propagate_mask`.

    Returns:
        (T, K, H, W) bool, frame 0 the true masks at the feature grid's resolution, upsampled.
    """
    feats, _ = frame_features(encoder, video.frames)
    size = tuple(video.frames.shape[-2:])
    out = []
    for k in range(video.masks.shape[1]):
        first = _to_grid(video.masks[0, k], tuple(feats.shape[-2:]))
        out.append(_to_image(propagate_mask(feats, first, context, temperature, topk), size) > 0.5)  # (T, H, W)
    return torch.stack(out, dim=1)


def _mean_j(videos: Sequence[ShapesVideo], predict) -> float:
    """Mean IoU of ``predict(video)`` ((T, K, H, W) bool) with the true masks over frames 1..T-1 where the object is
    visible, over every object of every video."""
    scores = []
    for video in videos:
        predicted = predict(video)
        for k in range(video.masks.shape[1]):
            for t in range(1, len(video)):
                if video.visible[t, k]:
                    p, truth = predicted[t, k], video.masks[t, k]
                    scores.append(((p & truth).sum() / (p | truth).sum()).item())
    if not scores:
        raise ValueError("no object is visible after frame 0 in these videos: nothing to score")
    return sum(scores) / len(scores)


def propagation_j(videos: Sequence[ShapesVideo], encoder: nn.Module | None, **options) -> float:
    """Region similarity J (IoU, as in DAVIS) of :func:`propagated_masks`.

    Args:
        videos: :class:`cvkit.data.video.ShapesVideo` clips (e.g. :func:`tracking_videos`).
        encoder: as in :func:`frame_features` (``None``: pixels).
        **options: ``context``, ``temperature``, ``topk`` of :func:`propagated_masks`.

    Returns:
        the mean IoU in [0, 1] over frames 1..T-1 where the object is visible, over every object of every video.

    Raises:
        ValueError: no object is visible after frame 0.
    """
    return _mean_j(videos, lambda video: propagated_masks(video, encoder, **options))


def static_mask_j(videos: Sequence[ShapesVideo]) -> float:
    """J of the "nothing moves" baseline: frame 0's true mask kept for every frame (same averaging and errors as
    :func:`propagation_j`)."""
    return _mean_j(videos, lambda video: video.masks[:1].expand_as(video.masks))


def association_accuracy(videos: Sequence[ShapesVideo], encoder: nn.Module | None, max_cost: float = 0.5) -> float:
    """Share of detections after frame 0 that keep their identity when the true boxes are matched by appearance.

    Args:
        videos: :class:`cvkit.data.video.ShapesVideo` clips, each tracked on its own.
        encoder: as in :func:`frame_features` (``None``: pixels); boxes (xyxy, pixels) are embedded by
            :func:`cvkit.tracking.embed_boxes` on its feature map.
        max_cost: see :func:`cvkit.tracking.associate`.

    Returns:
        a float in [0, 1], pooled over the detections of all videos (1.0 when there is none after frame 0).
    """
    hits = total = 0
    for video in videos:
        feats, stride = frame_features(encoder, video.frames)
        embeddings, truth = [], []
        for t in range(len(video)):
            ids = video.visible[t].nonzero().flatten()
            embeddings.append(embed_boxes(feats[t], video.boxes[t, ids], stride))
            truth.append(ids)
        n = sum(len(ids) for ids in truth[1:])
        hits += identity_accuracy(track_by_appearance(embeddings, max_cost), truth) * n
        total += n
    return hits / total if total else 1.0
