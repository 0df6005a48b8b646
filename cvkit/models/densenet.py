"""DenseNet (Huang et al., CVPR 2017): DenseNet-121 for ImageNet and a small DenseNet for 28x28 images.

DenseNet-BC: dense blocks of bottleneck layers (growth rate k), transitions with
compression 0.5. DenseNet-121 is k = 32, blocks of (6, 12, 24, 16) layers after a 7x7/2
conv and a 3x3/2 max-pool (Table 1); it has the same 7,978,856 parameters as torchvision's.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal, Sequence

import torch
import torch.nn as nn

from cvkit.layers.dense import DenseBlock, Transition
from cvkit.models.registry import register_model


class DenseNet(nn.Module):
    """Stem, dense blocks joined by transitions, BN-ReLU, global average pooling, a classifier.

    Args:
        growth_rate: k.
        block_config: layers per dense block.
        init_features: channels out of the stem (2k in the paper).
        bn_size: bottleneck factor of each dense layer (4).
        compression: theta, the fraction of channels a transition keeps (0.5).
        num_classes: K.
        in_channels: C of the input.
        stem: ``"imagenet"`` (7x7/2 conv, BN, ReLU, 3x3/2 max-pool) or ``"small"`` (one 3x3 conv).

    Shapes:
        input (B, C, H, W); output (B, K) logits.

    Raises:
        ValueError: unknown stem.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        num_classes: int = 1000,
        in_channels: int = 3,
        stem: Literal["imagenet", "small"] = "imagenet",
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            layers: list[tuple[str, nn.Module]] = [
                ("conv0", nn.Conv2d(in_channels, init_features, 7, 2, 3, bias=False)),
                ("norm0", nn.BatchNorm2d(init_features)),
                ("relu0", nn.ReLU()),
                ("pool0", nn.MaxPool2d(3, 2, 1)),
            ]
        elif stem == "small":
            layers = [("conv0", nn.Conv2d(in_channels, init_features, 3, padding=1, bias=False))]
        else:
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        c = init_features
        for i, n in enumerate(block_config):
            block = DenseBlock(n, c, growth_rate, bn_size)
            layers.append((f"denseblock{i + 1}", block))
            c = block.out_channels
            if i + 1 < len(block_config):
                out = int(c * compression)
                layers.append((f"transition{i + 1}", Transition(c, out)))
                c = out
        layers += [(f"norm{len(block_config) + 1}", nn.BatchNorm2d(c)), ("relu", nn.ReLU())]
        self.features = nn.Sequential(OrderedDict(layers))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model(
    "densenet121",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(growth_rate=4, init_features=8, block_config=(2, 2, 2, 2)),
    reference="Huang et al. 2017",
)
def densenet121(
    num_classes: int = 1000,
    growth_rate: int = 32,
    init_features: int = 64,
    in_channels: int = 3,
    block_config: Sequence[int] = (6, 12, 24, 16),
) -> DenseNet:
    """DenseNet-121 (k = 32, blocks 6-12-24-16; other ``block_config`` give its shallower or deeper siblings)."""
    return DenseNet(growth_rate, block_config, init_features, num_classes=num_classes, in_channels=in_channels)


@register_model(
    "densenet_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Huang et al. 2017"
)
def densenet_mini(
    num_classes: int = 10, in_channels: int = 1, growth_rate: int = 12, block_config: Sequence[int] = (4, 4, 4)
) -> DenseNet:
    """A DenseNet-BC for 28x28 images: a 3x3 stem and three dense blocks (k = 12)."""
    return DenseNet(
        growth_rate, block_config, 2 * growth_rate, num_classes=num_classes, in_channels=in_channels, stem="small"
    )
