"""A CNN that classifies one region and regresses its box: classification + localization, and R-CNN's per-region network.

Two uses in lecture 08, one network:

* **classification + localization** (one object per image): the "region" is the whole image;
  one head gives class scores (cross-entropy), the other four numbers locating the object
  (a regression loss): "two heads, a sum of losses";
* **R-CNN** (Girshick et al. 2014): every region proposal is warped to a fixed size and
  classified into K classes **or background**; the box head predicts the correction
  (dx, dy, dw, dh) from the proposal to the object (:func:`cvkit.detection.encode_boxes`).

In both cases the box output is a correction relative to the input region (for the whole
image, relative to the image box), so one decoding function serves both.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.models.registry import register_model
from cvkit.models.small_backbone import SmallBackbone


class RegionCNN(nn.Module):
    """Backbone, pooling to a ``pool`` x ``pool`` grid, a shared fully connected layer, then a class head and a box-correction head.

    The pooled grid keeps *where* things are (global average pooling would not, and the box
    head needs it), as R-CNN's fully connected layers read a 6x6 grid of AlexNet features.

    Args:
        num_classes: number of outputs of the class head (include background when it is a class).
        widths: backbone stage widths.
        in_channels: C of the input images.
        hidden: width of the shared fully connected layer.
        pool: side of the pooled feature grid.

    Shapes:
        input (B, C, H, W) float (any H, W >= 2**len(widths)); output dict with ``logits`` (B, num_classes)
        and ``deltas`` (B, 4) float: (dx, dy, dw, dh) of the object relative to the input region.
    """

    def __init__(
        self,
        num_classes: int = 4,
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 3,
        hidden: int = 128,
        pool: int = 3,
    ) -> None:
        super().__init__()
        self.backbone = SmallBackbone(in_channels, widths)
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * pool * pool, hidden), nn.ReLU(inplace=True))
        self.cls_head = nn.Linear(hidden, num_classes)
        self.box_head = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.fc(self.pool(list(self.backbone(x).values())[-1]))  # (B, C, pool, pool) -> (B, hidden)
        return {"logits": self.cls_head(h), "deltas": self.box_head(h)}


@register_model(
    "region_cnn",
    task="detection",
    input_shape=(3, 32, 32),
    output_shape=(4,),
    smoke_kwargs={"widths": (8, 16)},
    reference="Girshick et al. 2014",
)
def region_cnn(
    num_classes: int = 4, widths: Sequence[int] = (16, 32, 64), in_channels: int = 3, hidden: int = 128, pool: int = 3
) -> RegionCNN:
    """Classify a region (K classes or background) and regress its box correction (R-CNN's per-region CNN)."""
    return RegionCNN(num_classes, widths, in_channels, hidden, pool)
