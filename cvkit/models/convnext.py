"""ConvNeXt (Liu et al., CVPR 2022): a ResNet modernised towards the Swin Transformer.

A "patchify" stem (a 4x4 conv with stride 4, like ViT's patch embedding), four stages of
:class:`~cvkit.layers.convnext.ConvNeXtBlock` separated by LayerNorm + 2x2/2 conv
downsampling layers, global average pooling, LayerNorm and a linear head. ConvNeXt-T is
depths (3, 3, 9, 3) and widths (96, 192, 384, 768) with 28,589,128 parameters, the same
as torchvision's ``convnext_tiny``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.layers.convnext import ConvNeXtBlock, LayerNorm2d
from cvkit.models.registry import register_model


class ConvNeXt(nn.Module):
    """Patchify stem, stages of ConvNeXt blocks with downsampling between, pooled LayerNorm head.

    Args:
        depths: blocks per stage.
        dims: width of each stage.
        num_classes: K.
        in_channels: C of the input.
        stem_stride: side and stride of the patchify conv (4 for ImageNet, 2 for 28x28 images).
        kernel_size: depthwise kernel of every block (7).
        drop_path: the largest stochastic-depth rate, reached linearly at the last block.
        layer_scale: initial layer-scale value (1e-6).

    Shapes:
        input (B, C, H, W) with H, W divisible by ``stem_stride * 2**(len(depths) - 1)``; output (B, K).

    Raises:
        ValueError: ``depths`` and ``dims`` of different lengths.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        stem_stride: int = 4,
        kernel_size: int = 7,
        drop_path: float = 0.0,
        layer_scale: float = 1e-6,
    ) -> None:
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths and dims need one entry per stage, got {len(depths)} and {len(dims)}")
        n = sum(depths)
        rates = [drop_path * i / max(n - 1, 1) for i in range(n)]  # linear in depth, 0 at the first block
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(in_channels, dims[0], stem_stride, stem_stride), LayerNorm2d(dims[0], eps=1e-6))
        ]
        k = 0
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(
                nn.Sequential(
                    *[
                        ConvNeXtBlock(dim, kernel_size, layer_scale=layer_scale, drop_path=rates[k + j])
                        for j in range(depth)
                    ]
                )
            )
            k += depth
            if i + 1 < len(dims):
                layers.append(nn.Sequential(LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], num_classes)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)))


@register_model(
    "convnext_tiny",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(dims=(8, 16, 32, 64), depths=(1, 1, 2, 1)),
    reference="Liu et al. 2022",
)
def convnext_tiny(
    num_classes: int = 1000, depths: Sequence[int] = (3, 3, 9, 3), dims: Sequence[int] = (96, 192, 384, 768), **kwargs
) -> ConvNeXt:
    """ConvNeXt-T for 224x224 images."""
    return ConvNeXt(depths, dims, num_classes, **kwargs)


@register_model(
    "convnext_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Liu et al. 2022"
)
def convnext_mini(
    num_classes: int = 10, in_channels: int = 1, depths: Sequence[int] = (2, 2), dims: Sequence[int] = (32, 64)
) -> ConvNeXt:
    """A two-stage ConvNeXt for 28x28 images (2x2 patchify stem, 14x14 then 7x7)."""
    return ConvNeXt(depths, dims, num_classes, in_channels=in_channels, stem_stride=2, layer_scale=0.1)
