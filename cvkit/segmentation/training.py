"""Training and evaluating semantic segmenters with :func:`cvkit.train.fit`.

A segmenter maps (B, C, H, W) images to (B, K, H, W) logits; the loss is the cross-entropy of
every pixel, and the "accuracy" ``fit`` reports is the pixel accuracy::

    loader = DeviceLoader(data["images"], data["semantic"], batch_size=32)
    fit(create_model("unet"), loader, step=segmentation_step, epochs=10)
    evaluate_segmenter(model, val["images"], val["semantic"], num_classes=4).miou()
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.segmentation.metrics import SegmentationMeter
from cvkit.train.loop import StepOutput


def segmentation_step(model: nn.Module, batch) -> StepOutput:
    """Per-pixel cross-entropy on ``(images (B, C, H, W), masks (B, H, W) int64)``; ``correct`` sums per-image pixel accuracies.

    Raises:
        ValueError: the model's logits do not match the masks' size.
    """
    images, masks = batch[0], batch[1]
    logits = model(images)  # (B, K, H, W)
    if logits.dim() != 4 or logits.shape[0] != masks.shape[0] or logits.shape[-2:] != masks.shape[-2:]:
        raise ValueError(
            f"segmentation_step expects logits (B, K, H, W) matching masks {tuple(masks.shape)}, got {tuple(logits.shape)}"
        )
    loss = F.cross_entropy(logits.float(), masks)
    correct = (logits.argmax(1) == masks).float().mean(dim=(1, 2)).sum()  # pixel accuracy, summed over images
    return StepOutput(loss, masks.shape[0], correct)


@torch.no_grad()
def predict_masks(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """(N, H, W) int64 predicted class per pixel, on the CPU (eval mode, in batches)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [model(images[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def evaluate_segmenter(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, num_classes: int, batch_size: int = 64
) -> SegmentationMeter:
    """A :class:`SegmentationMeter` filled with the model's predictions on ``images`` against ``masks``
    (read ``.miou()``, ``.iou()``, ``.dice()``, ``.pixel_accuracy()``)."""
    meter = SegmentationMeter(num_classes)
    meter.update(predict_masks(model, images, batch_size), masks)
    return meter
