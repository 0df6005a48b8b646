"""Training and evaluating detectors on synthetic shapes with :func:`cvkit.train.fit`.

Detection batches are not ``(images, labels)`` tensors: every image has its own number of
boxes. :class:`DetectionBatches` yields ``(images (B, 3, H, W), [target dict per image])``;
the step functions turn a model's losses into :class:`cvkit.train.StepOutput`, so the kit's
one training loop trains torchvision's Faster/Mask R-CNN and the small DETR alike::

    batches = DetectionBatches(ShapesDataset(n=500, seed=0), batch_size=8)
    fit(model, batches, step=torchvision_detection_step, epochs=10, lr=1e-3)
    evaluate_detector(model, ShapesDataset(n=100, seed=1))   # {'map': ..., 'map_50': ..., ...}
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from cvkit.detection.matching import MatchCostWeights, match_batch
from cvkit.detection.metrics import mean_average_precision
from cvkit.detection.set_loss import SetLossWeights, set_prediction_loss
from cvkit.train.loop import StepOutput


class DetectionBatches:
    """Shuffled batches of shapes samples in torchvision's detection format.

    Args:
        samples: a :class:`cvkit.data.ShapesDataset` or a list of its samples (rendered once, kept).
        batch_size: images per batch (the last, smaller batch is kept).
        shuffle: reshuffle every epoch (the order depends only on ``seed`` and the epoch).
        flip: flip half of the images left-right (boxes and masks follow): augmentation for longer runs.
        label_offset: added to the shape labels; 1 for torchvision's R-CNNs (0 is background),
            0 for DETR.
        masks: include the instance ``masks`` (K, H, W) uint8 in the targets (Mask R-CNN).
        seed: seed of the shuffling and flipping.

    Yields:
        ``(images, targets)``: (B, 3, H, W) float32 in [0, 1] and B dicts with ``boxes`` (K, 4) float
        xyxy pixels, ``labels`` (K,) int64 (and ``masks``).

    Raises:
        ValueError: no samples or a non-positive batch size.
    """

    def __init__(
        self,
        samples,
        batch_size: int = 8,
        *,
        shuffle: bool = True,
        flip: bool = False,
        label_offset: int = 1,
        masks: bool = False,
        seed: int = 0,
    ) -> None:
        self.samples = [samples[i] for i in range(len(samples))]
        if not self.samples or batch_size < 1:
            raise ValueError(
                f"need at least one sample and batch_size >= 1, got {len(self.samples)} samples, batch_size {batch_size}"
            )
        self.batch_size, self.shuffle, self.flip = batch_size, shuffle, flip
        self.label_offset, self.masks, self.seed = label_offset, masks, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch (``fit`` calls it, so a resumed run sees the same batches)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.samples) + self.batch_size - 1) // self.batch_size  # ceil: the last batch may be short

    def __iter__(self) -> Iterator[tuple[torch.Tensor, list[dict[str, torch.Tensor]]]]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.samples), generator=g) if self.shuffle else torch.arange(len(self.samples))
        flips = (
            torch.rand(len(self.samples), generator=g) < 0.5
            if self.flip
            else torch.zeros(len(self.samples), dtype=torch.bool)
        )
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size].tolist()
            images, targets = [], []
            for i in idx:
                image, target = self._target(self.samples[i], bool(flips[i]))
                images.append(image)
                targets.append(target)
            yield torch.stack(images), targets

    def _target(self, sample, flip: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        target = {"boxes": sample.boxes.clone(), "labels": sample.labels + self.label_offset}
        image = sample.image
        if self.masks:
            target["masks"] = sample.masks.to(torch.uint8)
        if flip:
            width = image.shape[-1]
            image = image.flip(-1)
            target["boxes"] = torch.stack(
                [
                    width - target["boxes"][:, 2],
                    target["boxes"][:, 1],
                    width - target["boxes"][:, 0],
                    target["boxes"][:, 3],
                ],
                dim=1,
            )
            if self.masks:
                target["masks"] = target["masks"].flip(-1)
        return image, target


def torchvision_detection_step(model: nn.Module, batch) -> StepOutput:
    """One training step of a torchvision detector: the sum of its loss dict (RPN and RoI-head terms)."""
    images, targets = batch
    losses = model(list(images), list(targets))
    return StepOutput(loss=sum(losses.values()), count=len(targets))


def detr_step(model: nn.Module, batch, weights: SetLossWeights = SetLossWeights()) -> StepOutput:
    """One training step of :class:`cvkit.models.detr.DETR`: the set loss after the last and every auxiliary decoder layer.

    The outputs of all decoder layers are matched in one :func:`~cvkit.detection.matching.match_batch` call (one copy
    to the CPU per step), then each layer's loss uses its own matches.
    """
    images, targets = batch
    out = model(images)
    size = tuple(images.shape[-2:])
    # the last decoder layer, then the auxiliary ones; matched and scored in float32 (under bf16 autocast the boxes
    # would be rounded to 0.25 px steps above 32 px, ground truth included)
    layers = [{k: out_l[k].float() for k in ("logits", "boxes")} for out_l in (out, *out["aux"])]
    matches = match_batch(
        torch.cat([layer["logits"] for layer in layers]).detach(),
        torch.cat([layer["boxes"] for layer in layers]).detach(),
        list(targets) * len(layers),
        size,
        MatchCostWeights(weights.cls, weights.l1, weights.giou),
    )
    n = len(targets)
    loss = sum(
        set_prediction_loss(layer["logits"], layer["boxes"], targets, size, weights, matches[i * n : (i + 1) * n])[
            "loss"
        ]
        for i, layer in enumerate(layers)
    )
    return StepOutput(loss=loss, count=n)


@torch.no_grad()
def predict_detections(model: nn.Module, images: torch.Tensor, batch_size: int = 32) -> list[dict[str, torch.Tensor]]:
    """Detections for (N, 3, H, W) images, on the CPU: a list of N dicts with ``boxes`` (xyxy pixels),
    ``scores``, ``labels`` (and ``masks`` for Mask R-CNN). Uses ``model.predict`` when the model has one
    (DETR), else the torchvision convention ``model(list_of_images)`` in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[dict[str, torch.Tensor]] = []
    try:
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size].to(device)
            preds = model.predict(chunk) if hasattr(model, "predict") else model(list(chunk))
            out.extend({k: v.detach().cpu() for k, v in p.items()} for p in preds)
    finally:
        model.train(was_training)
    return out


def evaluate_detector(
    model: nn.Module, samples, label_offset: int = 1, batch_size: int = 32
) -> dict[str, torch.Tensor]:
    """COCO AP of a detector on shapes samples (:func:`cvkit.detection.mean_average_precision`).

    Args:
        model: a torchvision detector or a DETR.
        samples: a :class:`cvkit.data.ShapesDataset` or a list of its samples.
        label_offset: what the model adds to the shape labels (1 for the R-CNNs, 0 for DETR).

    Returns:
        the dict of :func:`~cvkit.detection.metrics.mean_average_precision` (``map``, ``map_50``, ``map_75``, ...),
        plus ``predictions`` (the list of detections) and ``targets``.
    """
    items = [samples[i] for i in range(len(samples))]
    images = torch.stack([s.image for s in items])
    predictions = predict_detections(model, images, batch_size)
    targets = [{"boxes": s.boxes, "labels": s.labels + label_offset} for s in items]
    result: dict = dict(mean_average_precision(predictions, targets))
    result.update(predictions=predictions, targets=targets)
    return result


@torch.no_grad()
def query_specialisation(
    model: nn.Module, images: torch.Tensor, threshold: float = 0.5, min_count: int = 5, batch_size: int = 64
) -> dict:
    """Do DETR's object queries specialise (Carion et al. 2020, Fig. 7), or has each collapsed onto a fixed guess?

    For every query, the box centres it predicts with P(object) > ``threshold`` over ``images``. A specialised query
    fires on some images only, in its own region: the spread of its centres (RMS distance to their mean) is well below
    the spread of all confident centres. A collapsed one fires on (nearly) every image at one spot, whatever the image
    shows; its spread is also small, so read ``spread_ratio`` together with ``max_firing``.

    Args:
        model: a DETR (its forward returns ``logits`` (B, Q, K + 1), the last class "no object", and ``boxes``
            (B, Q, 4) xyxy pixels).
        images: (N, 3, H, W) float in [0, 1].
        threshold: P(object) above which a prediction counts as confident.
        min_count: queries with fewer confident predictions are left out of ``spread_ratio``.

    Returns:
        dict with ``p_object`` (N, Q) and ``centres`` (N, Q, 2) (x, y pixels) on the CPU, ``firing`` (Q,) the fraction
        of images on which each query is confident, ``spread`` (Q,) RMS distance of each query's confident centres to
        their mean (NaN below ``min_count``), ``spread_ratio`` (float: the count-weighted mean of ``spread`` over the
        spread of all confident centres; NaN when nothing is confident) and ``max_firing`` (float).

    Raises:
        ValueError: ``images`` is not (N, 3, H, W) with N >= 1.
    """
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must be (N, 3, H, W) with N >= 1, got {tuple(images.shape)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    p_parts, c_parts = [], []
    try:
        for chunk in images.split(batch_size):
            out = model(chunk.to(device))
            p_parts.append(1 - out["logits"].softmax(-1)[..., -1].cpu())  # (B, Q)
            c_parts.append(((out["boxes"][..., :2] + out["boxes"][..., 2:]) / 2).cpu())  # (B, Q, 2)
    finally:
        model.train(was_training)
    p_object, centres = torch.cat(p_parts), torch.cat(c_parts)  # (N, Q), (N, Q, 2)
    confident = p_object > threshold
    firing = confident.float().mean(0)  # (Q,)
    spread = torch.full((p_object.shape[1],), float("nan"))
    weighted, count = 0.0, 0
    for q in range(p_object.shape[1]):
        pts = centres[confident[:, q], q]  # (n_q, 2)
        if len(pts) >= min_count:
            spread[q] = (pts - pts.mean(0)).pow(2).sum(1).mean().sqrt()
            weighted += float(spread[q]) * len(pts)
            count += len(pts)
    everything = centres[confident]  # (n, 2)
    overall = float((everything - everything.mean(0)).pow(2).sum(1).mean().sqrt()) if len(everything) else float("nan")
    ratio = weighted / count / overall if count and overall > 0 else float("nan")
    return {
        "p_object": p_object,
        "centres": centres,
        "firing": firing,
        "spread": spread,
        "spread_ratio": ratio,
        "max_firing": float(firing.max()),
    }


def format_ap(result: Mapping[str, torch.Tensor], names: Sequence[str] | None = None) -> str:
    """One line: ``AP 0.512  AP50 0.873  AP75 0.540`` (plus per class when ``names`` are given)."""
    line = f"AP {float(result['map']):.3f}  AP50 {float(result['map_50']):.3f}  AP75 {float(result['map_75']):.3f}"
    if names is not None and "map_per_class" in result:
        line += (
            "  ("
            + ", ".join(
                f"{names[int(c)] if int(c) < len(names) else int(c)} {float(a):.3f}"
                for c, a in zip(result["classes"], result["map_per_class"])
            )
            + ")"
        )
    return line


@torch.no_grad()
def rpn_proposals(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The region proposals of a torchvision two-stage detector, best objectness first.

    Runs the model's transform, backbone and region proposal network (eval mode: the test-time
    ``pre/post_nms_top_n``) and maps the proposals back to input pixels.

    Args:
        model: a torchvision ``FasterRCNN`` or ``MaskRCNN``.
        images: (N, 3, H, W) float in [0, 1].

    Returns:
        N tensors (P_i, 4) xyxy pixels, sorted by decreasing objectness (as the RPN's NMS leaves them).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        batch = [img.to(device) for img in images]
        original = [tuple(img.shape[-2:]) for img in batch]
        image_list, _ = model.transform(batch)
        features = model.backbone(image_list.tensors)
        features = features if isinstance(features, dict) else {"0": features}
        proposals, _ = model.rpn(image_list, features)
        resized = model.transform.postprocess([{"boxes": p} for p in proposals], image_list.image_sizes, original)
    finally:
        model.train(was_training)
    return [r["boxes"].cpu() for r in resized]
