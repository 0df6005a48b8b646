r"""Training and running Fast R-CNN (Girshick, ICCV 2015, sec. 2.3 and 3; lecture 08).

* **Mini-batch sampling** (sec. 2.3): each batch holds N images and R RoIs drawn from their proposals, a quarter of
  them foreground (IoU >= 0.5 with an object) and the rest background (IoU < 0.5; R-CNN's 0.3 lower bound is kept
  here, with the band in between ignored, :func:`cvkit.detection.region_targets`). RoIs of the same image share
  the forward pass of its features: that sharing is Fast R-CNN's whole speed-up.
* **Multi-task loss** (eq. 1): :math:`L = L_{cls}(p, u) + \lambda [u \ge 1] L_{loc}(t^u, v)`, the cross-entropy over
  K + 1 classes plus a smooth-L1 loss on the box correction of the *true* class only (the class-specific
  regressors), for foreground RoIs only.
* **Detection** (sec. 3): one forward pass per image, per-class box decoding, a score threshold and per-class NMS.

The model is :class:`cvkit.models.fast_rcnn.FastRCNN`; anything with its ``features``/``head`` interface works.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.detection.box_coder import decode_boxes
from cvkit.detection.boxes import clip_boxes
from cvkit.detection.nms import batched_nms
from cvkit.detection.regions import region_targets
from cvkit.train.loop import StepOutput


class RoIBatches:
    """Fast R-CNN mini-batches: ``(images (N, 3, H, W), rois (R, 5), labels (R,), deltas (R, 4))``.

    Args:
        samples: shapes samples (``image``, ``boxes``, ``labels``), e.g. a :class:`cvkit.data.ShapesDataset`.
        proposals: ``proposals(i, sample) -> (P, 4)`` candidate boxes of sample ``i`` (xyxy pixels); called once
            per sample, at construction.
        images_per_batch: N (2 in the paper). rois_per_image: R / N (64 in the paper).
        fg_fraction: the foreground share of each image's RoIs (0.25).
        seed: seeds the shuffling and the sampling (``set_epoch`` reseeds per epoch).

    Raises:
        ValueError: no samples, or sizes < 1.
    """

    def __init__(
        self,
        samples,
        proposals: Callable[[int, object], torch.Tensor],
        images_per_batch: int = 8,
        rois_per_image: int = 32,
        fg_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.samples = [samples[i] for i in range(len(samples))]
        if not self.samples or images_per_batch < 1 or rois_per_image < 1:
            raise ValueError("need at least one sample, images_per_batch >= 1 and rois_per_image >= 1")
        self.images_per_batch, self.rois_per_image, self.fg_fraction, self.seed, self.epoch = (
            images_per_batch,
            rois_per_image,
            fg_fraction,
            seed,
            0,
        )
        self.targets = []
        for i, s in enumerate(self.samples):
            boxes = torch.cat([proposals(i, s), s.boxes])  # the ground truth is a proposal too (sec. 2.3)
            labels, deltas = region_targets(boxes, s.boxes, s.labels)
            self.targets.append((boxes, labels, deltas))

    def set_epoch(self, epoch: int) -> None:
        """Reseed the order and the RoI sampling for ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.samples) + self.images_per_batch - 1) // self.images_per_batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(len(self.samples), generator=g).tolist()
        for start in range(0, len(order), self.images_per_batch):
            chosen = order[start : start + self.images_per_batch]
            rois, labels, deltas = [], [], []
            for b, i in enumerate(chosen):
                boxes, lab, delta = self.targets[i]
                fg, bg = (lab > 0).nonzero().squeeze(1), (lab == 0).nonzero().squeeze(1)
                n_fg = min(len(fg), int(self.fg_fraction * self.rois_per_image))
                n_bg = min(len(bg), self.rois_per_image - n_fg)
                pick = torch.cat(
                    [fg[torch.randperm(len(fg), generator=g)[:n_fg]], bg[torch.randperm(len(bg), generator=g)[:n_bg]]]
                )
                rois.append(torch.cat([torch.full((len(pick), 1), float(b)), boxes[pick]], dim=1))  # (r, 5)
                labels.append(lab[pick])
                deltas.append(delta[pick])
            images = torch.stack([self.samples[i].image for i in chosen])
            yield images, torch.cat(rois), torch.cat(labels), torch.cat(deltas)


def fast_rcnn_loss(
    logits: torch.Tensor, deltas: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, box_weight: float = 1.0
) -> torch.Tensor:
    r"""Fast R-CNN's multi-task loss (eq. 1): cross-entropy + :math:`\lambda\,[u \ge 1]` smooth-L1 on the true class's box.

    Args:
        logits: (R, K + 1). deltas: (R, K + 1, 4) per-class corrections. labels: (R,) int64 in [0, K] (0 background).
        targets: (R, 4) true corrections (ignored where ``labels == 0``). box_weight: :math:`\lambda` (1 in the paper).

    Returns:
        scalar: the mean classification loss plus :math:`\lambda` times the box loss summed over foreground RoIs
        and divided by R (torchvision's normalisation).

    Raises:
        ValueError: shapes that do not fit together.
    """
    if (
        logits.dim() != 2
        or deltas.shape != (*logits.shape, 4)
        or labels.shape != logits.shape[:1]
        or targets.shape != (len(labels), 4)
    ):
        raise ValueError(
            f"expected logits (R, K+1), deltas (R, K+1, 4), labels (R,), targets (R, 4); got "
            f"{tuple(logits.shape)}, {tuple(deltas.shape)}, {tuple(labels.shape)}, {tuple(targets.shape)}"
        )
    cls = F.cross_entropy(logits, labels)
    fg = labels > 0
    if not bool(fg.any()):
        return cls + 0 * deltas.sum()
    chosen = deltas[fg, labels[fg]]  # (F, 4): the regressor of each RoI's true class
    box = F.smooth_l1_loss(chosen, targets[fg], beta=1 / 9, reduction="sum") / len(labels)
    return cls + box_weight * box


def fast_rcnn_step(model: nn.Module, batch) -> StepOutput:
    """``fit`` step for :class:`RoIBatches` batches: the multi-task loss; counts correctly classified RoIs."""
    images, rois, labels, targets = batch
    out = model(images, rois)
    loss = fast_rcnn_loss(out["logits"], out["deltas"], labels, targets)
    return StepOutput(loss, len(labels), (out["logits"].argmax(1) == labels).sum())


@torch.no_grad()
def fast_rcnn_detect(
    model: nn.Module,
    image: torch.Tensor,
    proposals: torch.Tensor,
    score_threshold: float = 0.05,
    nms_threshold: float = 0.3,
) -> dict[str, torch.Tensor]:
    """Detect with Fast R-CNN: features once, every proposal through the head, per-class decoding and NMS (sec. 3).

    Args:
        model: a :class:`cvkit.models.fast_rcnn.FastRCNN`. image: (3, H, W) in [0, 1].
        proposals: (P, 4) candidate boxes, xyxy pixels.
        score_threshold, nms_threshold: as in :func:`cvkit.detection.classify_regions`.

    Returns:
        dict with ``boxes`` (D, 4), ``scores`` (D,), ``labels`` (D,) int64 in [0, K), and ``backbone_passes``: 1.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        fmap = model.features(image[None].to(device))
        rois = torch.cat([torch.zeros(len(proposals), 1), proposals.float()], dim=1).to(device)
        out = model.head(fmap, rois) if len(proposals) else None
    finally:
        model.train(was_training)
    if out is None:
        return {
            "boxes": torch.zeros(0, 4),
            "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.int64),
            "backbone_passes": torch.tensor(1),
        }
    prob = out["logits"].softmax(1).cpu()[:, 1:]  # (P, K) object classes
    k = prob.shape[1]
    deltas = out["deltas"].cpu()[:, 1:]  # (P, K, 4)
    boxes = decode_boxes(deltas.reshape(-1, 4), proposals.float().repeat_interleave(k, 0)).view(-1, k, 4)  # (P, K, 4)
    boxes = clip_boxes(boxes.reshape(-1, 4), image.shape[-2:])
    scores, labels = prob.reshape(-1), torch.arange(k).repeat(len(proposals))
    keep = scores >= score_threshold
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = batched_nms(boxes, scores, labels, nms_threshold)
    return {"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep], "backbone_passes": torch.tensor(1)}


def jittered_proposals(
    boxes: torch.Tensor,
    image_size: Sequence[int],
    copies: int = 8,
    std: float = 2.5,
    windows: torch.Tensor | None = None,
    random_windows: int = 24,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Cheap training proposals: jittered copies of the ground-truth boxes plus random sliding windows (what lecture
    08's R-CNN trains on).

    Args:
        boxes: (M, 4) ground truth, xyxy pixels. image_size: (H, W).
        copies: jittered copies per box. std: jitter in pixels.
        windows: (W, 4) candidate windows to draw from (``None``: none). random_windows: how many to draw.
        generator: seeds the jitter and the draw.

    Returns:
        (copies * M + min(random_windows, W), 4) float boxes inside the image.
    """
    h, w = image_size
    jittered = boxes.repeat(copies, 1) + torch.randn(copies * len(boxes), 4, generator=generator) * std
    jittered = torch.cat(
        [torch.minimum(jittered[:, :2], jittered[:, 2:]), torch.maximum(jittered[:, :2], jittered[:, 2:])], 1
    )
    jittered = torch.stack(
        [
            jittered[:, 0].clamp(0, w),
            jittered[:, 1].clamp(0, h),
            jittered[:, 2].clamp(0, w),
            jittered[:, 3].clamp(0, h),
        ],
        1,
    )
    if windows is None or random_windows == 0:
        return jittered
    return torch.cat([jittered, windows[torch.randperm(len(windows), generator=generator)[:random_windows]]])
