r"""Synthetic videos of moving shapes, with ground truth for tracking and optical flow (lectures 00 and 11).

One :class:`cvkit.data.ShapesDataset` sample gives the objects (their pixels and colours); each object then moves
with its own constant velocity over a fresh noisy background, drawn in the sample's order (later objects occlude
earlier ones). Every frame comes with the visible mask and box of every object and its identity, and every pair of
consecutive frames with the true optical flow: the displacement, in pixels, of the surface seen at each pixel of
the first frame (the object's velocity on its visible pixels, 0 on the static background).

Everything is a pure function of the arguments (the background noise is seeded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from cvkit.data.shapes import ShapesSample


@dataclass
class ShapesVideo:
    """A rendered video.

    Attributes:
        frames: (T, 3, H, W) float32 in [0, 1].
        masks: (T, K, H, W) bool, the visible pixels of object k in frame t (may be empty when occluded or gone).
        boxes: (T, K, 4) float32 xyxy pixels of the visible pixels (zeros when invisible).
        visible: (T, K) bool, whether object k has at least one visible pixel in frame t.
        labels: (K,) int64 shape classes; colours: (K,) int64 colour indices (identities are the indices k).
        flow: (T - 1, 2, H, W) float32, (dx, dy) pixels from frame t to t + 1 at every pixel of frame t.
        velocities: (K, 2) float32, (vx, vy) pixels per frame.
    """

    frames: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    visible: torch.Tensor
    labels: torch.Tensor
    colours: torch.Tensor
    flow: torch.Tensor
    velocities: torch.Tensor

    def __len__(self) -> int:
        return self.frames.shape[0]


def _shift(t: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Shift the last two dims by whole pixels, filling with zeros (no wrap-around)."""
    h, w = t.shape[-2:]
    out = torch.zeros_like(t)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = t[..., ys, xs]
    return out


def moving_shapes(
    sample: ShapesSample,
    frames: int = 8,
    velocities: Sequence[tuple[int, int]] | torch.Tensor | None = None,
    background: tuple[float, float, float] = (0.5, 0.5, 0.5),
    noise: float = 0.03,
    seed: int = 0,
) -> ShapesVideo:
    """Make the objects of one shapes sample move.

    Args:
        sample: a :class:`cvkit.data.ShapesSample` (its objects' masks give the pixels to move).
        frames: T >= 2.
        velocities: (K, 2) integer pixels per frame, one (vx, vy) per object; ``None``: drawn from [-3, 3] with the
            seed, never (0, 0).
        background: RGB of the static background. noise: standard deviation of the per-frame pixel noise.
        seed: seeds the velocities and the noise.

    Returns:
        :class:`ShapesVideo`.

    Raises:
        ValueError: ``frames`` < 2, a sample without objects, or velocities of the wrong shape.
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    k = sample.num_objects
    if k == 0:
        raise ValueError("the sample has no objects to move")
    g = torch.Generator().manual_seed(seed)
    if velocities is None:
        v = torch.randint(-3, 4, (k, 2), generator=g)
        v[(v == 0).all(1)] = torch.tensor([2, 1])
    else:
        v = torch.as_tensor(velocities).round().long()
        if v.shape != (k, 2):
            raise ValueError(f"velocities must be ({k}, 2), one (vx, vy) per object, got {tuple(v.shape)}")
    _, h, w = sample.image.shape
    colour_of = [(sample.image * m).sum((1, 2)) / m.sum() for m in sample.masks]  # mean colour of each object
    bg = torch.tensor(background).view(3, 1, 1).expand(3, h, w)
    out_frames, out_masks, flows = [], [], []
    for t in range(frames):
        frame = bg.clone()
        owner = torch.full((h, w), -1, dtype=torch.int64)
        for i in range(k):
            m = _shift(sample.masks[i], int(v[i, 0]) * t, int(v[i, 1]) * t)
            frame[:, m] = colour_of[i][:, None]
            owner[m] = i
        frame = (frame + noise * torch.randn(frame.shape, generator=g)).clamp(0, 1)
        out_frames.append(frame)
        out_masks.append(torch.stack([owner == i for i in range(k)]))
        fl = torch.zeros(2, h, w)
        for i in range(k):
            fl[:, owner == i] = v[i].float()[:, None]
        flows.append(fl)
    masks = torch.stack(out_masks)  # (T, K, H, W)
    visible = masks.flatten(2).any(2)
    boxes = torch.zeros(frames, k, 4)
    for t in range(frames):
        for i in range(k):
            if visible[t, i]:
                ys, xs = masks[t, i].nonzero(as_tuple=True)
                boxes[t, i] = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
    return ShapesVideo(
        torch.stack(out_frames),
        masks,
        boxes,
        visible,
        sample.labels.clone(),
        sample.colours.clone(),
        torch.stack(flows[:-1]),
        v.float(),
    )


def flow_pairs(
    n: int, image_size: int = 48, seed: int = 0, max_speed: int = 3, min_shapes: int = 1, max_shapes: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` consecutive-frame pairs of moving shapes with their true flow, for training a flow network.

    Args:
        n: pairs. image_size: H = W. seed: the shapes (``ShapesDataset(seed=seed)``) and the motions.
        max_speed: velocities are drawn from [-max_speed, max_speed] pixels per frame.
        min_shapes, max_shapes: objects per image.

    Returns:
        pairs (n, 6, H, W) float32 in [0, 1] (frame 1's RGB then frame 2's) and flow (n, 2, H, W) float32 pixels.
    """
    from cvkit.data.shapes import ShapesDataset

    ds = ShapesDataset(n=n, image_size=image_size, min_shapes=min_shapes, max_shapes=max_shapes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    pairs, flows = [], []
    for i in range(n):
        s = ds[i]
        v = torch.randint(-max_speed, max_speed + 1, (s.num_objects, 2), generator=g)
        video = moving_shapes(s, frames=2, velocities=v, seed=seed * 100003 + i)
        pairs.append(torch.cat([video.frames[0], video.frames[1]]))
        flows.append(video.flow[0])
    return torch.stack(pairs), torch.stack(flows)
