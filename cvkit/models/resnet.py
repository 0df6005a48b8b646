"""Residual networks (He et al., CVPR 2016) and the variants lecture 04 builds from the same blocks.

One class, :class:`ResNet`, builds them all from a stem, stages of blocks and a head:

* ImageNet ResNet-18/34/50/101/152 (Table 1 of the paper; :data:`RESNET_DEPTHS`), with the
  stride of a bottleneck in its 3x3 conv (torchvision, "v1.5") or in its first 1x1 conv
  (the paper, whose FLOPs row 1.8, 3.6, 3.8, 7.6, 11.3 x 10^9 lecture 04 reproduces);
* ResNeXt (Xie et al. 2017: grouped 3x3 convs), SE-ResNet (Hu et al. 2018), SKNet (Li et al. 2019);
* the CIFAR networks of section 4.2: a 3x3 stem, three stages of 2n layers with 16, 32, 64
  filters, 6n + 2 layers in all, with option-A shortcuts, and their *plain* twins
  (``shortcut="none"``) for the degradation experiment;
* small variants for 28x28 Fashion-MNIST images (``*_mini``).

Stages are named ``layer1`` ... like torchvision's (the paper's conv2_x ... conv5_x), and
parameters come in torchvision's order, so torchvision weights can be copied over one to one.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct
from cvkit.layers.residual import BasicBlock, Bottleneck, Shortcut
from cvkit.models.registry import register_model

# depth -> (block, blocks per stage): Table 1 of He et al. 2016
RESNET_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """Stem, stages of residual (or plain) blocks, global average pooling, a linear classifier.

    Args:
        block: ``"basic"`` (two 3x3) or ``"bottleneck"`` (1x1, 3x3, 1x1).
        layers: blocks per stage, e.g. (3, 4, 6, 3); stage i has width ``width * 2**i`` (x4 at the
            output of a bottleneck) and stride 2 except the first.
        num_classes: K.
        in_channels: C of the input.
        width: width of the first stage (64 for ImageNet, 16 for CIFAR).
        stem: ``"imagenet"`` (7x7/2 conv and 3x3/2 max-pool: /4) or ``"small"`` (one 3x3 conv, no downsampling).
        shortcut: ``"projection"`` (option B), ``"pad"`` (option A) or ``"none"`` (a plain network).
        groups, width_per_group: ResNeXt's cardinality and per-group width (bottleneck only; the
            3x3 width is ``int(planes * width_per_group / 64) * groups``).
        stride_in: ``"3x3"`` (torchvision) or ``"1x1"`` (the paper) for bottlenecks.
        se_reduction: add squeeze-and-excitation to every block (``None``: no).
        spatial: ``"conv"`` or ``"sk"`` (selective-kernel 3x3, bottleneck only).
        zero_init_residual: start every block's last BN at gamma = 0, so each block starts as the
            identity (Goyal et al. 2017); only meaningful with shortcuts.

    Shapes:
        input (B, C, H, W); output (B, K) logits. ``forward_features`` returns the last stage's map.

    Raises:
        ValueError: unknown block or stem, or an empty ``layers``.
    """

    def __init__(
        self,
        block: Literal["basic", "bottleneck"] = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        width: int = 64,
        stem: Literal["imagenet", "small"] = "imagenet",
        shortcut: Shortcut = "projection",
        groups: int = 1,
        width_per_group: int = 64,
        stride_in: Literal["3x3", "1x1"] = "3x3",
        se_reduction: int | None = None,
        spatial: Literal["conv", "sk"] = "conv",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        if not layers or min(layers) < 1:
            raise ValueError(f"layers must be a non-empty list of positive block counts, got {layers}")
        if stem == "imagenet":
            self.stem = nn.Sequential(ConvBNAct(in_channels, width, 7, 2, 3), nn.MaxPool2d(3, 2, 1))
        elif stem == "small":
            self.stem = nn.Sequential(ConvBNAct(in_channels, width, 3))
        else:
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        c = width
        for i, n in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                if block == "basic":
                    blocks.append(BasicBlock(c, planes, stride, shortcut=shortcut, se_reduction=se_reduction))
                    c = planes
                else:
                    mid = int(planes * width_per_group / 64) * groups
                    blocks.append(
                        Bottleneck(
                            c,
                            planes * 4,
                            stride,
                            mid_channels=mid,
                            groups=groups,
                            stride_in=stride_in,
                            shortcut=shortcut,
                            se_reduction=se_reduction,
                            spatial=spatial,
                        )
                    )
                    c = planes * 4
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.num_features = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He et al. 2015
        if zero_init_residual and shortcut != "none":
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    last = m.conv3 if isinstance(m, Bottleneck) else m.conv2
                    nn.init.zeros_(last.bn.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (B, num_features, H', W')."""
        x = self.stem(x)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x))
        return self.fc(torch.flatten(x, 1))


def resnet(depth: int = 50, num_classes: int = 1000, **kwargs) -> ResNet:
    """An ImageNet ResNet of the paper's Table 1 (depth 18, 34, 50, 101 or 152).

    Raises:
        ValueError: another depth (the message lists the valid ones).
    """
    if depth not in RESNET_DEPTHS:
        raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}, got {depth}")
    block, layers = RESNET_DEPTHS[depth]
    return ResNet(block, layers, num_classes, **kwargs)


def _register_imagenet(depth: int) -> None:
    @register_model(
        f"resnet{depth}",
        task="classification",
        input_shape=(3, 224, 224),
        output_shape=(1000,),
        smoke_kwargs=dict(width=4),
        reference="He et al. 2016",
        description=f"ResNet-{depth} for ImageNet",
    )
    def builder(num_classes: int = 1000, **kwargs) -> ResNet:
        return resnet(depth, num_classes, **kwargs)


# ResNet-34/101/152 are one call away (``resnet(101)``); registering two keeps the registry test quick
for _depth in (18, 50):
    _register_imagenet(_depth)


@register_model(
    "resnext50_32x4d",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(width=8, groups=2, width_per_group=16),
    reference="Xie et al. 2017",
)
def resnext50_32x4d(num_classes: int = 1000, groups: int = 32, width_per_group: int = 4, **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50 with 32 groups of width 4 in every 3x3 conv."""
    return resnet(50, num_classes, groups=groups, width_per_group=width_per_group, **kwargs)


@register_model(
    "se_resnet50",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(width=4, se_reduction=4),
    reference="Hu et al. 2018",
)
def se_resnet50(num_classes: int = 1000, se_reduction: int = 16, **kwargs) -> ResNet:
    """SE-ResNet-50: ResNet-50 with a squeeze-and-excitation gate (r = 16) in every block."""
    return resnet(50, num_classes, se_reduction=se_reduction, **kwargs)


def cifar_resnet(
    depth: int = 20,
    num_classes: int = 10,
    *,
    in_channels: int = 3,
    width: int = 16,
    shortcut: Shortcut = "pad",
    **kwargs,
) -> ResNet:
    """The CIFAR network of He et al. section 4.2: 6n + 2 weight layers, widths 16-32-64.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110 in the paper; 8 is the smallest).
        shortcut: ``"pad"`` (option A, the paper's), ``"projection"``, or ``"none"`` for the plain net.
        width: the first stage's width (16); stages have width, 2 width, 4 width.

    Raises:
        ValueError: ``depth`` is not 6n + 2 with n >= 1.
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), got {depth}")
    n = (depth - 2) // 6
    return ResNet(
        "basic", (n, n, n), num_classes, in_channels=in_channels, width=width, stem="small", shortcut=shortcut, **kwargs
    )


@register_model(
    "resnet_cifar",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=dict(depth=8, width=4),
    reference="He et al. 2016, section 4.2",
)
def resnet_cifar(
    depth: int = 20, num_classes: int = 10, in_channels: int = 3, width: int = 16, shortcut: Shortcut = "pad", **kwargs
) -> ResNet:
    """A CIFAR-style residual network of depth 6n + 2 (ResNet-20 by default)."""
    return cifar_resnet(depth, num_classes, in_channels=in_channels, width=width, shortcut=shortcut, **kwargs)


@register_model(
    "plain_cifar",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=dict(depth=8, width=4),
    reference="He et al. 2016, section 4.2",
)
def plain_cifar(depth: int = 20, num_classes: int = 10, in_channels: int = 3, width: int = 16, **kwargs) -> ResNet:
    """The plain twin of ``resnet_cifar``: the same layers without shortcuts."""
    return cifar_resnet(depth, num_classes, in_channels=in_channels, width=width, shortcut="none", **kwargs)


@register_model(
    "resnext_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Xie et al. 2017"
)
def resnext_mini(
    num_classes: int = 10, in_channels: int = 1, width: int = 16, groups: int = 8, width_per_group: int = 8
) -> ResNet:
    """A ResNeXt for 28x28 images: 3x3 stem, three stages of two grouped bottlenecks (cardinality 8)."""
    return ResNet(
        "bottleneck",
        (2, 2, 2),
        num_classes,
        in_channels=in_channels,
        width=width,
        stem="small",
        groups=groups,
        width_per_group=width_per_group,
    )


@register_model(
    "se_resnet_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Hu et al. 2018"
)
def se_resnet_mini(num_classes: int = 10, in_channels: int = 1, width: int = 16, se_reduction: int = 4) -> ResNet:
    """A ResNet-8 for 28x28 images with a squeeze-and-excitation gate in every block."""
    return ResNet(
        "basic", (1, 1, 1), num_classes, in_channels=in_channels, width=width, stem="small", se_reduction=se_reduction
    )


@register_model(
    "sknet_mini", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Li et al. 2019"
)
def sknet_mini(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> ResNet:
    """An SKNet for 28x28 images: three stages of two bottlenecks whose 3x3 conv is a two-branch selective-kernel unit."""
    return ResNet(
        "bottleneck", (2, 2, 2), num_classes, in_channels=in_channels, width=width, stem="small", spatial="sk"
    )
