"""The networks of lecture 13's UniDetector experiment: region features (a small backbone, RoIAlign on given boxes, an
MLP) and :class:`LabelSpaceDetector`, those features scored against the class names of several label spaces
(:class:`cvkit.detection.label_spaces.LabelSpaceClassifier`)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torchvision.ops

from cvkit.detection.label_spaces import LabelSpaceClassifier
from cvkit.models.registry import register_model
from cvkit.models.small_backbone import SmallBackbone


class RegionFeatureNet(nn.Module):
    """Backbone once per image, RoIAlign of every box, two fully connected layers.

    Args:
        widths: backbone stage widths (stride ``2 ** len(widths)``). dim: output width. pool: RoIAlign grid.

    Shapes:
        ``forward(images (B, 3, H, W), rois (R, 5) rows (batch index, x1, y1, x2, y2) pixels)`` -> (R, dim).

    Raises:
        ValueError: rois that are not (R, 5).
    """

    def __init__(self, widths: Sequence[int] = (32, 64), dim: int = 128, pool: int = 4) -> None:
        super().__init__()
        self.backbone = SmallBackbone(3, widths)
        self.stride, self.pool, self.feature_dim = self.backbone.strides[-1], pool, dim
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[-1] * pool * pool, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim)
        )

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be (R, 5) rows (batch index, x1, y1, x2, y2), got {tuple(rois.shape)}")
        fmap = list(self.backbone(images).values())[-1]
        pooled = torchvision.ops.roi_align(
            fmap, rois.to(fmap), self.pool, 1.0 / self.stride, 2, True
        )  # (R, C, pool, pool)
        return self.mlp(pooled)


def _example(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch_size, 3, 48, 48), torch.tensor([[i, 2.0, 2.0, 30.0, 30.0] for i in range(batch_size)])


@register_model(
    "region_feature_net",
    task="embedding",
    example_inputs=_example,
    output_shape=(128,),
    smoke_kwargs=dict(widths=(8, 16)),
    reference="Wang et al. 2023 (UniDetector), region features",
)
def region_feature_net(widths: Sequence[int] = (32, 64), dim: int = 128, pool: int = 4) -> RegionFeatureNet:
    """Backbone + RoIAlign + MLP: one feature per region (UniDetector's region features, small)."""
    return RegionFeatureNet(widths, dim, pool)


class LabelSpaceDetector(nn.Module):
    """Region features and a :class:`cvkit.detection.label_spaces.LabelSpaceClassifier` over several label spaces.

    Args:
        label_spaces: ``{space: [class names]}`` (``"background"`` among them). widths, dim: of the
            :class:`RegionFeatureNet`. embed_dim: of the name embeddings.

    Shapes:
        ``forward(images, rois)`` -> (R, |union of names|) logits; ``regions(images, rois)`` -> (R, dim).
    """

    def __init__(
        self, label_spaces: dict, widths: Sequence[int] = (32, 64), dim: int = 128, embed_dim: int = 64
    ) -> None:
        super().__init__()
        self.regions = RegionFeatureNet(widths, dim)
        self.classifier = LabelSpaceClassifier(dim, label_spaces, embed_dim)

    def forward(self, images: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.regions(images, rois))
