r"""SAM 2's memory attention, demonstrated: segment an object through a video from one prompt.

SAM 2 (Ravi et al. 2024, "SAM 2: Segment Anything in Images and Videos", sec. 4) adds a *memory*
to SAM. After each frame, a memory encoder fuses the frame's image embedding with the predicted
mask and stores it in a memory bank (the N most recent frames plus the prompted ones). For the
next frame, **memory attention** conditions the current embedding on the bank by
cross-attention: every position of the current frame (query) looks up similar positions in past
frames (keys) and reads out what was stored there (values). The decoder then segments the
conditioned embedding, so the object is found again without a new click.

Here the same mechanism runs without any extra training, on the small SAM's image embeddings:
the values are the stored masks, so the readout

.. math::  \hat m_t(p) = \sum_{j \in \text{memory}} \operatorname{softmax}_j\Big(\frac{q_p \cdot k_j}{\tau\sqrt D}\Big)\, m(j)

is a soft mask of the object in the new frame, which becomes a point-and-box prompt for the
decoder. (SAM 2 *learns* its memory attention, with self-attention and several cross-attention
layers; the readout is the idea in its simplest form.)
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from cvkit.sam.model import SmallSAM
from cvkit.segmentation.metrics import paired_mask_iou


def memory_readout(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Cross-attention of current-frame tokens to memory tokens: :math:`\operatorname{softmax}(QK^\top/(\tau\sqrt D))\,V`.

    Args:
        query: (N, D) tokens of the current frame. keys: (M, D) memory tokens. values: (M, C) what each memory token stores.
        temperature: :math:`\tau` (below 1 sharpens the attention).

    Returns:
        readout (N, C) and attention weights (N, M) (rows sum to 1).

    Raises:
        ValueError: mismatched widths or counts.
    """
    if query.shape[-1] != keys.shape[-1] or keys.shape[0] != values.shape[0]:
        raise ValueError(
            f"need query (N, D), keys (M, D), values (M, C); got {tuple(query.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}"
        )
    scores = query @ keys.T / (temperature * math.sqrt(query.shape[-1]))  # (N, M)
    weights = scores.softmax(dim=-1)
    return weights @ values, weights


@dataclass
class MemoryBank:
    """A FIFO of (embedding, mask) pairs from past frames, as SAM 2 keeps the N most recent.

    Attributes:
        max_frames: N, how many recent frames are kept (SAM 2 uses 6, plus the prompted frames).
        keep_first: always keep the first (prompted) frame, as SAM 2 does.
    """

    max_frames: int = 4
    keep_first: bool = True
    first: tuple[torch.Tensor, torch.Tensor] | None = None
    recent: deque = field(default_factory=deque)

    def add(self, embedding: torch.Tensor, mask: torch.Tensor) -> None:
        """Store one frame: embedding (D, h, w) and its mask (h, w) float in [0, 1] at the embedding's resolution."""
        if self.keep_first and self.first is None:
            self.first = (embedding, mask)
            return
        self.recent.append((embedding, mask))
        while len(self.recent) > self.max_frames:
            self.recent.popleft()

    def __len__(self) -> int:
        return len(self.recent) + (self.first is not None)

    def tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys (M, D) and values (M, 1) of every stored position (M = frames * h * w).

        Raises:
            RuntimeError: the bank is empty.
        """
        items = ([self.first] if self.first is not None else []) + list(self.recent)
        if not items:
            raise RuntimeError("the memory bank is empty: add the prompted frame first")
        keys = torch.cat([e.flatten(1).T for e, _ in items])  # (frames * h * w, D)
        values = torch.cat([m.reshape(-1, 1) for _, m in items])  # (frames * h * w, 1)
        return keys, values


def moving_object_video(
    image: torch.Tensor, mask: torch.Tensor, frames: int = 6, velocity: tuple[int, int] = (4, 2)
) -> tuple[torch.Tensor, torch.Tensor]:
    """A short synthetic video: one object slides across a still scene.

    The object's pixels are removed (the hole filled by harmonic inpainting,
    :func:`cvkit.generative.lowlevel.classical_baseline`) and pasted ``t * velocity`` pixels away in frame t
    (wrapping around the border).

    Args:
        image: (3, H, W) float in [0, 1]. mask: (H, W) bool, the object. frames: T. velocity: (dx, dy) pixels per frame.

    Returns:
        frames (T, 3, H, W) and masks (T, H, W) bool, the object's true mask in each frame.
    """
    from cvkit.generative.lowlevel import classical_baseline

    m = mask.float()[None]  # (1, H, W)
    background = classical_baseline(torch.cat([image * (1 - m), m])[None], "inpaint", iterations=300)[0]
    obj = image * m
    video, masks = [], []
    for t in range(frames):
        shift = (t * velocity[1], t * velocity[0])  # (dy, dx) for the (H, W) axes
        mt = torch.roll(m, shift, dims=(1, 2))
        video.append(background * (1 - mt) + torch.roll(obj, shift, dims=(1, 2)))
        masks.append(mt[0].bool())
    return torch.stack(video), torch.stack(masks)


@dataclass
class TrackResult:
    """Output of :func:`track_with_memory`: ``masks`` (T, H, W) bool predictions, ``readouts`` (T, h, w)
    soft masks from memory attention (frame 0: the prompt's mask), ``scores`` (T,) predicted IoU."""

    masks: torch.Tensor
    readouts: torch.Tensor
    scores: torch.Tensor


@torch.no_grad()
def track_with_memory(
    model: SmallSAM,
    frames: torch.Tensor,
    first_box: torch.Tensor,
    max_frames: int = 4,
    temperature: float = 0.1,
) -> TrackResult:
    """Segment one object through a video from a box on the first frame, SAM 2 style.

    Frame 0 is segmented from the box. For every later frame: embed it, read the object's soft
    mask out of the memory bank (:func:`memory_readout`), turn the readout into a prompt (a
    foreground point at its peak and the box around its confident part), decode, and store the
    frame's embedding and predicted mask in the bank.

    Args:
        model: a trained :class:`SmallSAM`. frames: (T, 3, S, S) float in [0, 1], S = ``model.image_size``.
        first_box: (4,) xyxy pixels around the object in frame 0.
        max_frames: recent frames kept in the bank (besides frame 0).
        temperature: divides the cosine similarity of L2-normalised embeddings (0.1: sharp, a
            near-nearest-neighbour lookup; 1: a blurry average over the memory).

    Returns:
        :class:`TrackResult`.
    """
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    bank = MemoryBank(max_frames)
    masks, readouts, scores = [], [], []
    s = model.image_size
    try:
        for t in range(frames.shape[0]):
            emb = model.encode(frames[t : t + 1].to(device))  # (1, D, h, w)
            d, h, w = emb.shape[1:]
            if t == 0:
                out = model.decode(emb, boxes=first_box.view(1, 4).float().to(device), multimask=False)  # boxes (1, 4)
                readout = None
            else:
                keys, values = bank.tokens()
                query = emb[0].flatten(1).T  # (h*w, D)
                soft, _ = memory_readout(
                    F.normalize(query, dim=1), F.normalize(keys, dim=1), values, temperature / math.sqrt(d)
                )
                readout = soft.view(h, w)  # (h*w, 1) -> (h, w)
                point, box = _prompt_from_readout(readout, s)
                out = model.decode(
                    emb,
                    points=point.to(device),
                    labels=torch.ones(1, 1, dtype=torch.long, device=device),
                    boxes=box.to(device),
                    multimask=False,
                )
            mask = out.masks[0, 0] > 0  # (S, S)
            small = F.adaptive_avg_pool2d(mask.float()[None, None], (h, w))[0, 0]  # (h, w) fraction of each cell inside
            bank.add(emb[0], small)
            masks.append(mask.cpu())
            readouts.append((small if readout is None else readout).cpu())
            scores.append(out.iou[0, 0].item())
    finally:
        model.train(was)
    return TrackResult(torch.stack(masks), torch.stack(readouts), torch.tensor(scores))


def _prompt_from_readout(readout: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (1, 1, 2) point at the readout's peak and a (1, 4) box around cells above half the peak, in pixels of a ``size`` image."""
    h, w = readout.shape
    cell = torch.tensor([size / w, size / h])
    idx = int(readout.argmax())
    point = (torch.tensor([idx % w, idx // w], dtype=torch.float32) + 0.5) * cell
    ys, xs = torch.nonzero(readout >= 0.5 * readout.max(), as_tuple=True)
    box = torch.stack(
        [xs.min() * cell[0], ys.min() * cell[1], (xs.max() + 1) * cell[0], (ys.max() + 1) * cell[1]]
    ).float()
    return point.view(1, 1, 2), box.view(1, 4)  # (B=1, N=1, xy), (B=1, xyxy)


def evaluate_tracking(
    model: SmallSAM,
    dataset,
    frames: int = 6,
    velocity: tuple[int, int] | None = None,
    max_frames: int = 3,
    temperature: float = 0.1,
) -> torch.Tensor:
    """SAM 2-style tracking quality: the mean IoU per frame over one video per image of ``dataset``.

    Each image's first object slides across its scene (:func:`moving_object_video`); frame 0 is prompted with the
    object's box, later frames only through memory attention (:func:`track_with_memory`).

    Args:
        model: a trained :class:`SmallSAM`.
        dataset: a :class:`cvkit.data.ShapesDataset` (or a list of its samples) of ``model.image_size`` images.
        frames: T, frames per video.
        velocity: (dx, dy) pixels per frame (default: (S / 16, S / 32), at least 1, as in lesson 13).
        max_frames, temperature: of :func:`track_with_memory`.

    Returns:
        (T,) float32: the IoU of predicted and true masks in frame t, averaged over the videos.

    Raises:
        ValueError: an empty dataset.
    """
    if len(dataset) == 0:
        raise ValueError("need at least one image to make a video from")
    s = model.image_size
    velocity = velocity or (max(1, s // 16), max(1, s // 32))
    ious = []
    for i in range(len(dataset)):
        sample = dataset[i]
        video, truth = moving_object_video(sample.image, sample.masks[0], frames=frames, velocity=velocity)
        track = track_with_memory(model, video, sample.boxes[0], max_frames=max_frames, temperature=temperature)
        ious.append(paired_mask_iou(track.masks, truth))  # (T,)
    return torch.stack(ious).mean(0)
