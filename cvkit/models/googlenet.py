"""GoogLeNet (Szegedy et al., "Going deeper with convolutions", CVPR 2015) and a small Inception net.

:data:`GOOGLENET_TABLE` is Table 1 of the paper: for each Inception module its input
width and the six numbers #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, and the
parameter count the paper lists (in units of 1024 weights, biases not counted). The
auxiliary classifiers used only in training are left out.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct
from cvkit.layers.inception import InceptionModule
from cvkit.models.registry import register_model

# name -> (in channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, paper's "params" column in K)
GOOGLENET_TABLE: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32, 159),
    "inception3b": (256, 128, 128, 192, 32, 96, 64, 380),
    "inception4a": (480, 192, 96, 208, 16, 48, 64, 364),
    "inception4b": (512, 160, 112, 224, 24, 64, 64, 437),
    "inception4c": (512, 128, 128, 256, 24, 64, 64, 463),
    "inception4d": (512, 112, 144, 288, 32, 64, 64, 580),
    "inception4e": (528, 256, 160, 320, 32, 128, 128, 840),
    "inception5a": (832, 256, 160, 320, 32, 128, 128, 1072),
    "inception5b": (832, 384, 192, 384, 48, 128, 128, 1388),
}
_POOL_AFTER = {"inception3b", "inception4e"}  # a 3x3/2 max-pool follows these


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1) without the auxiliary classifiers.

    Args:
        num_classes: K.
        in_channels: C of the input.
        norm: ``"none"`` (2014) or ``"batch"`` (BN after every conv, trains far more easily).
        width_mult: scale every width in Table 1 (1 is the paper).
        dropout: before the classifier (0.4 in the paper).

    Shapes:
        input (B, C, 224, 224) (any H, W >= 32 works); output (B, K) logits.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        norm: Literal["batch", "none"] = "none",
        width_mult: float = 1.0,
        dropout: float = 0.4,
    ) -> None:
        super().__init__()
        w = lambda c: max(1, round(c * width_mult))  # noqa: E731
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, w(64), 7, 2, 3, norm=norm),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            ConvBNAct(w(64), w(64), 1, norm=norm),
            ConvBNAct(w(64), w(192), 3, norm=norm),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        c = w(192)
        for name, (_, *widths, _paper) in GOOGLENET_TABLE.items():
            module = InceptionModule(c, *[w(x) for x in widths], norm=norm)
            self.add_module(name, module)
            c = module.out_channels
            if name in _POOL_AFTER:
                self.add_module(name.replace("inception", "pool"), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in GOOGLENET_TABLE:
            x = getattr(self, name)(x)
            if name in _POOL_AFTER:
                x = getattr(self, name.replace("inception", "pool"))(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


@register_model(
    "googlenet",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(width_mult=1 / 16, norm="batch"),
    reference="Szegedy et al. 2015",
)
def googlenet(
    num_classes: int = 1000,
    in_channels: int = 3,
    norm: Literal["batch", "none"] = "none",
    width_mult: float = 1.0,
    dropout: float = 0.4,
) -> GoogLeNet:
    """GoogLeNet (Inception v1), Table 1 of the paper, without auxiliary classifiers."""
    return GoogLeNet(num_classes, in_channels, norm, width_mult, dropout)


@register_model(
    "googlenet_mini",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    reference="Szegedy et al. 2015",
)
def googlenet_mini(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> nn.Sequential:
    """An Inception net for 28x28 images: a 3x3 stem and three Inception modules (with BN) between max-pools."""
    w = width
    a = InceptionModule(2 * w, w, w, 2 * w, w // 4, w // 2, w // 2)  # 28x28 -> 4w channels
    b = InceptionModule(a.out_channels, 2 * w, 2 * w, 3 * w, w // 2, w, w)  # 14x14 -> 7w
    c = InceptionModule(b.out_channels, 3 * w, 2 * w, 4 * w, w // 2, w, w)  # 7x7 -> 9w
    return nn.Sequential(
        ConvBNAct(in_channels, 2 * w, 3),
        a,
        nn.MaxPool2d(2),
        b,
        nn.MaxPool2d(2),
        c,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c.out_channels, num_classes),
    )
