"""VGG (Simonyan & Zisserman, ICLR 2015): very deep networks of 3x3 convolutions.

:data:`VGG_CONFIGS` is the paper's Table 1, column by column: ``64`` is a conv3-64 layer,
``("conv1", 256)`` a 1x1 conv1-256 (configuration C), ``"LRN"`` local response
normalization (A-LRN) and ``"M"`` a 2x2 max-pool. :func:`vgg` builds any column (or a
list of your own) and :func:`vgg_config_table` prints the table back from the same data,
so lecture 04 can put the measured parameter counts (Table 2: 133, 133, 133, 134, 138,
144 million) under the configurations that produce them.

The classifier is torchvision's: adaptive average pooling to 7x7 (an identity at 224x224),
then FC-4096, FC-4096, FC-K with ReLU and dropout; so configurations A, B, D, E have exactly
the parameters of torchvision's vgg11, vgg13, vgg16 and vgg19.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct
from cvkit.models.registry import register_model

Layer = Union[int, str, tuple]

VGG_CONFIGS: dict[str, list[Layer]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        ("conv1", 256),
        "M",
        512,
        512,
        ("conv1", 512),
        "M",
        512,
        512,
        ("conv1", 512),
        "M",
    ],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# the networks people call VGG-11/13/16/19
VGG_DEPTHS = {11: "A", 13: "B", 16: "D", 19: "E"}
# a VGG-style net for 28x28 images: three stages of two 3x3 convs
VGG_MINI = [32, 32, "M", 64, 64, "M", 128, 128, "M"]


def _check_config(config: Sequence[Layer]) -> None:
    for item in config:
        ok = (
            (isinstance(item, int) and item > 0)
            or item in ("M", "LRN")
            or (isinstance(item, tuple) and len(item) == 2 and item[0] == "conv1" and isinstance(item[1], int))
        )
        if not ok:
            raise ValueError(f"bad VGG layer {item!r}: use an int (conv3-N), ('conv1', N), 'M' (max-pool) or 'LRN'")


class VGG(nn.Module):
    """A VGG network: ``features`` (convs and pools), ``avgpool``, ``classifier``.

    Args:
        config: a key of :data:`VGG_CONFIGS` (``"A"`` ... ``"E"``) or a list in the same format.
        num_classes: K.
        in_channels: C of the input.
        batch_norm: BN after every conv (the later "vgg16_bn"; the paper has none).
        width_mult: scale every conv width and the hidden width.
        hidden: width of the two hidden fully connected layers (4096 in the paper).
        pool_size: side of the adaptive average pool before the classifier (7 for 224x224 inputs).
        dropout: dropout probability in the classifier.

    Shapes:
        input (B, C, H, W); output (B, K) logits.

    Raises:
        ValueError: unknown configuration name or malformed layer list.
    """

    def __init__(
        self,
        config: str | Sequence[Layer] = "D",
        num_classes: int = 1000,
        *,
        in_channels: int = 3,
        batch_norm: bool = False,
        width_mult: float = 1.0,
        hidden: int = 4096,
        pool_size: int = 7,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if isinstance(config, str):
            if config not in VGG_CONFIGS:
                raise ValueError(
                    f"unknown VGG configuration {config!r}; choose one of {list(VGG_CONFIGS)} or pass a list"
                )
            config = VGG_CONFIGS[config]
        _check_config(config)
        norm = "batch" if batch_norm else "none"
        layers: list[nn.Module] = []
        c = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif item == "LRN":
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
            else:
                k, out = (1, item[1]) if isinstance(item, tuple) else (3, item)
                out = max(1, round(out * width_mult))
                block = ConvBNAct(c, out, k, norm=norm)
                layers += list(block)  # flat like torchvision: conv, [bn,] relu
                c = out
        hidden = max(1, round(hidden * width_mult))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(
            nn.Linear(c * pool_size * pool_size, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg(config: str | Sequence[Layer] = "D", num_classes: int = 1000, **kwargs) -> VGG:
    """Build a VGG column (see :class:`VGG` for the keyword arguments)."""
    return VGG(config, num_classes, **kwargs)


def weight_layers(config: str | Sequence[Layer]) -> int:
    """Number of weight layers (convs + 3 fully connected) of a configuration: 11, 13, 16 or 19 in Table 1."""
    config = VGG_CONFIGS[config] if isinstance(config, str) else config
    return sum(1 for item in config if item not in ("M", "LRN")) + 3


def vgg_config_table(names: Sequence[str] = tuple(VGG_CONFIGS), params: dict[str, int] | None = None) -> str:
    """Table 1 of the paper as Markdown, generated from :data:`VGG_CONFIGS`.

    Args:
        names: which columns.
        params: optional measured parameter counts per column, added as a last row in millions (Table 2).

    Returns:
        A Markdown table: one column per configuration, one row per block between max-pools.
    """
    columns = {n: VGG_CONFIGS[n] for n in names}
    blocks: dict[str, list[list[str]]] = {}
    for n, cfg in columns.items():
        groups: list[list[str]] = [[]]
        for item in cfg:
            if item == "M":
                groups.append([])
            elif item == "LRN":
                groups[-1].append("LRN")
            elif isinstance(item, tuple):
                groups[-1].append(f"conv1-{item[1]}")
            else:
                groups[-1].append(f"conv3-{item}")
        blocks[n] = [g for g in groups if g]
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines.append("| " + " | ".join(f"{weight_layers(n)} weight layers" for n in names) + " |")
    lines.append("| " + " | ".join("input (224x224 RGB image)" for _ in names) + " |")
    for b in range(max(len(v) for v in blocks.values())):
        lines.append("| " + " | ".join("<br>".join(blocks[n][b]) if b < len(blocks[n]) else "" for n in names) + " |")
        lines.append("| " + " | ".join("maxpool" for _ in names) + " |")
    for row in ("FC-4096", "FC-4096", "FC-1000", "soft-max"):
        lines.append("| " + " | ".join(row for _ in names) + " |")
    if params is not None:
        lines.append("| " + " | ".join(f"**{params[n] / 1e6:.0f}M params**" for n in names) + " |")
    return "\n".join(lines)


def _register(depth: int, config: str) -> None:
    @register_model(
        f"vgg{depth}",
        task="classification",
        input_shape=(3, 224, 224),
        output_shape=(1000,),
        smoke_kwargs=dict(width_mult=1 / 32),
        reference="Simonyan & Zisserman 2015",
        description=f"VGG-{depth} (configuration {config} of Table 1)",
    )
    def builder(num_classes: int = 1000, **kwargs) -> VGG:
        return VGG(config, num_classes, **kwargs)


# VGG-11/13/19 are one call away (``vgg("A")``); registering VGG-16 keeps the registry test quick
_register(16, "D")


@register_model(
    "vgg_mini",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    reference="Simonyan & Zisserman 2015",
)
def vgg_mini(num_classes: int = 10, in_channels: int = 1, width_mult: float = 1.0, dropout: float = 0.3) -> VGG:
    """A VGG-style net for 28x28 images: 3 stages of two conv3 + BN, then FC-256, FC-256, FC-K."""
    return VGG(
        VGG_MINI,
        num_classes,
        in_channels=in_channels,
        batch_norm=True,
        width_mult=width_mult,
        hidden=256,
        pool_size=3,
        dropout=dropout,
    )
