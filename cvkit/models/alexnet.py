"""AlexNet (Krizhevsky, Sutskever & Hinton, NIPS 2012) and a small AlexNet-style net for 28x28 images.

The 2012 network: five convolutional and three fully connected layers, ReLU, local
response normalization after conv1 and conv2, overlapping 3x3/2 max pooling, dropout in
the classifier, and convolutions split in two groups (conv2, conv4, conv5) because the
network was spread over two GPUs. It has 60,965,224 parameters ("60 million").
``variant="torchvision"`` builds the single-GPU variant torchvision ships (Krizhevsky's
"One weird trick" paper, 2014: 64-192-384-256-256 channels, no LRN, no groups;
61,100,840 parameters).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.conv import ConvBNAct
from cvkit.models.registry import register_model

# (out channels, kernel, stride, padding, groups, LRN after, max-pool after) per conv layer
ALEXNET_LAYERS = {
    "original": [
        (96, 11, 4, 2, 1, True, True),
        (256, 5, 1, 2, 2, True, True),
        (384, 3, 1, 1, 1, False, False),
        (384, 3, 1, 1, 2, False, False),
        (256, 3, 1, 1, 2, False, True),
    ],
    "torchvision": [
        (64, 11, 4, 2, 1, False, True),
        (192, 5, 1, 2, 1, False, True),
        (384, 3, 1, 1, 1, False, False),
        (256, 3, 1, 1, 1, False, False),
        (256, 3, 1, 1, 1, False, True),
    ],
}


def _scaled(c: int, mult: float, groups: int = 1) -> int:
    return max(groups, int(round(c * mult / groups)) * groups)


class AlexNet(nn.Module):
    """AlexNet for 224x224 RGB images (``features``, ``avgpool`` to 6x6, ``classifier``).

    Args:
        num_classes: K.
        variant: ``"original"`` (2012, grouped convs and LRN) or ``"torchvision"``.
        in_channels: C of the input.
        width_mult: scale every width (convs and the 4096-wide fully connected layers); 1 is the paper.
        dropout: dropout probability before the first two fully connected layers.

    Shapes:
        input (B, C, H, W), H and W >= 63 (224 in the paper); output (B, K) logits.

    Raises:
        ValueError: unknown variant.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        variant: Literal["original", "torchvision"] = "original",
        in_channels: int = 3,
        width_mult: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if variant not in ALEXNET_LAYERS:
            raise ValueError(f"variant must be one of {sorted(ALEXNET_LAYERS)}, got {variant!r}")
        layers: list[nn.Module] = []
        c = in_channels
        for out, k, s, p, g, lrn, pool in ALEXNET_LAYERS[variant]:
            out = _scaled(out, width_mult, 2 * g)
            layers += [nn.Conv2d(c, out, k, s, p, groups=g), nn.ReLU()]
            if lrn:
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))  # section 3.3
            if pool:
                layers.append(nn.MaxPool2d(3, 2))  # overlapping pooling, section 3.4
            c = out
        hidden = _scaled(4096, width_mult)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c * 36, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model(
    "alexnet",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(width_mult=1 / 16),
    reference="Krizhevsky et al. 2012",
)
def alexnet(
    num_classes: int = 1000,
    variant: Literal["original", "torchvision"] = "original",
    in_channels: int = 3,
    width_mult: float = 1.0,
    dropout: float = 0.5,
) -> AlexNet:
    """AlexNet for 224x224 images (60,965,224 parameters in the 2012 variant)."""
    return AlexNet(num_classes, variant, in_channels, width_mult, dropout)


@register_model(
    "alexnet_mini",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    reference="Krizhevsky et al. 2012",
)
def alexnet_mini(num_classes: int = 10, in_channels: int = 1, width: int = 32, dropout: float = 0.5) -> nn.Sequential:
    """An AlexNet-style net for 28x28 images: 5 conv layers (ReLU, BN), 3 max-pools, a dropout MLP head."""
    w = width
    return nn.Sequential(
        ConvBNAct(in_channels, w, 5),
        nn.MaxPool2d(2),  # 14x14
        ConvBNAct(w, 2 * w, 5),
        nn.MaxPool2d(2),  # 7x7
        ConvBNAct(2 * w, 3 * w, 3),
        ConvBNAct(3 * w, 3 * w, 3),
        ConvBNAct(3 * w, 2 * w, 3),
        nn.MaxPool2d(3, 2),  # 3x3, overlapping as in AlexNet
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(2 * w * 9, 8 * w),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(8 * w, 8 * w),
        nn.ReLU(),
        nn.Linear(8 * w, num_classes),
    )
