"""Fast R-CNN (Girshick, ICCV 2015) sized for synthetic shapes: one backbone pass per image, RoI pooling of every
proposal from the feature map, two fully connected layers, a (K + 1)-way classifier and class-specific box
regressors (sec. 2; lecture 08).

Compared with R-CNN (:mod:`cvkit.models.region_cnn`), the CNN no longer runs once per warped proposal: the
proposals share the convolutional features of their image, and only the small head runs per region. The training
loss and the sampling of RoIs are in :mod:`cvkit.detection.fast_rcnn`.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torchvision.ops

from cvkit.models.registry import register_model
from cvkit.models.small_backbone import SmallBackbone


class FastRCNN(nn.Module):
    """Backbone once per image, RoI pooling to ``pool`` x ``pool``, fc-fc, then class scores and per-class boxes.

    Args:
        num_classes: K object classes (the classifier has K + 1 outputs, 0 = background).
        widths: backbone stage widths (stride ``2 ** len(widths)``).
        pool: RoI pooling grid (7 in the paper, for a stride-16 VGG map and large images; 4 here).
        hidden: width of the two fully connected layers (4096 in the paper).
        pooling: ``"pool"`` (Fast R-CNN's RoI max pooling) or ``"align"`` (RoIAlign, Mask R-CNN).

    Shapes:
        ``forward(images (B, 3, H, W), rois (R, 5) rows (batch index, x1, y1, x2, y2) in pixels)`` ->
        ``{"logits": (R, K + 1), "deltas": (R, K + 1, 4)}`` ((dx, dy, dw, dh) of the box of each class
        relative to the RoI; row 0, background, is never trained).

    Raises:
        ValueError: an unknown ``pooling``, or rois that are not (R, 5).
    """

    def __init__(
        self,
        num_classes: int = 3,
        widths: Sequence[int] = (32, 64),
        pool: int = 4,
        hidden: int = 256,
        pooling: Literal["pool", "align"] = "pool",
    ) -> None:
        super().__init__()
        if pooling not in ("pool", "align"):
            raise ValueError(f"pooling must be 'pool' or 'align', got {pooling!r}")
        self.num_classes, self.pool, self.pooling = num_classes, pool, pooling
        self.backbone = SmallBackbone(3, widths)
        self.stride = self.backbone.strides[-1]
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.cls_head = nn.Linear(hidden, num_classes + 1)
        self.box_head = nn.Linear(hidden, 4 * (num_classes + 1))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last backbone map (B, C, H / stride, W / stride): computed once per image."""
        return list(self.backbone(images).values())[-1]

    def head(self, fmap: torch.Tensor, rois: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pool every RoI from ``fmap`` and run the per-region layers (see the class docstring for shapes)."""
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be (R, 5) rows (batch index, x1, y1, x2, y2), got {tuple(rois.shape)}")
        scale = 1.0 / self.stride
        # pool in float32: under bf16 autocast (GPU training) bf16 box coordinates would be off by up to 0.25 px
        fmap32, rois32 = fmap.float(), rois.to(device=fmap.device, dtype=torch.float32)
        if self.pooling == "pool":
            pooled = torchvision.ops.roi_pool(fmap32, rois32, self.pool, scale)  # (R, C, pool, pool)
        else:
            pooled = torchvision.ops.roi_align(fmap32, rois32, self.pool, scale, 2, True)
        pooled = pooled.to(fmap.dtype)
        h = self.fc(pooled)  # (R, hidden)
        return {"logits": self.cls_head(h), "deltas": self.box_head(h).view(-1, self.num_classes + 1, 4)}

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head(self.features(images), rois)


def _example_inputs(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    rois = torch.tensor([[i, 4.0, 4.0, 40.0, 30.0] for i in range(batch_size)])
    return torch.rand(batch_size, 3, 64, 64), rois


@register_model(
    "fast_rcnn",
    task="detection",
    example_inputs=_example_inputs,
    smoke_kwargs=dict(widths=(8, 16), hidden=32),
    reduce=lambda out: out["logits"].sum() + out["deltas"][:, 1:].sum(),
    reference="Girshick 2015",
)
def fast_rcnn(
    num_classes: int = 3,
    widths: Sequence[int] = (32, 64),
    pool: int = 4,
    hidden: int = 256,
    pooling: Literal["pool", "align"] = "pool",
) -> FastRCNN:
    """Fast R-CNN on a two-stage backbone (stride 4) for 64 x 64 shapes images."""
    return FastRCNN(num_classes, widths, pool, hidden, pooling)
