"""ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014) and a small
ZFNet-style net for 28x28 images whose features the deconvnet can project back (lecture 04; lecture 05 for the
visualization; seed 003, "ZeilerNet").

Zeiler & Fergus looked at AlexNet's first two layers with their deconvnet (:mod:`cvkit.inspect.deconvnet`) and saw
dead filters and aliasing: the 11x11 kernels at stride 4 skip over fine detail. Their remedy (section 4.1): a 7x7
first layer at stride 2 (and conv2 at stride 2), everything else as in a single-GPU AlexNet. The feature maps then
shrink 224 -> 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6 (the paper's Fig. 3), against AlexNet's 55 -> 27 -> 13 -> 6.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.models.registry import register_model

# (out channels, kernel, stride, padding, contrast normalization and max-pool after), Zeiler & Fergus Fig. 3
ZFNET_LAYERS = [
    (96, 7, 2, 1, True),
    (256, 5, 2, 0, True),
    (384, 3, 1, 1, False),
    (384, 3, 1, 1, False),
    (256, 3, 1, 1, False),
]


class ZFNet(nn.Module):
    """ZFNet for 224x224 RGB images: ``features`` (5 conv layers, 3 overlapping max-pools) and ``classifier``.

    Pooling uses ``ceil_mode=True`` so the maps are the paper's sizes (110 -> 55, 26 -> 13); the local contrast
    normalization after layers 1 and 2 is AlexNet's LRN.

    Args:
        num_classes: K. in_channels: C. width_mult: scales every width (1 is the paper). dropout: before fc6 and fc7.

    Shapes:
        input (B, C, 224, 224); output (B, K) logits.
    """

    def __init__(
        self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.5
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, (out, k, s, p, norm_pool) in enumerate(ZFNET_LAYERS):
            out = max(1, int(round(out * width_mult)))
            layers += [nn.Conv2d(c, out, k, s, p), nn.ReLU()]
            if norm_pool:
                layers += [nn.MaxPool2d(3, 2, ceil_mode=True), nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)]
            c = out
        layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))  # 13 -> 6
        hidden = max(1, int(round(4096 * width_mult)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c * 6 * 6, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "zfnet",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(width_mult=1 / 16),
    reference="Zeiler & Fergus 2014",
)
def zfnet(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0, dropout: float = 0.5) -> ZFNet:
    """ZFNet for 224x224 images (7x7/2 first layer; 62,357,608 parameters at width 1)."""
    return ZFNet(num_classes, in_channels, width_mult, dropout)


class ZFNetMini(nn.Module):
    """A ZFNet-style net for 28x28 grey images, built only of Conv2d, ReLU and MaxPool2d in ``features`` so the
    deconvnet can invert it.

    ``first_kernel``/``first_stride`` set the first layer: ``(7, 1)`` is the ZFNet choice at this scale (fine
    detail kept), ``(11, 2)`` an AlexNet-style coarse first layer (for the comparison of lecture 04).

    Args:
        num_classes: K. in_channels: C. width: channels of the first layer (doubles after each pool).
        first_kernel, first_stride: the first layer's kernel (odd) and stride.

    Shapes:
        input (B, C, 28, 28); output (B, K) logits.
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 1, width: int = 32, first_kernel: int = 7, first_stride: int = 1
    ) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, first_kernel, first_stride, padding=first_kernel // 2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "zfnet_mini",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    smoke_kwargs=dict(width=4),
    reference="Zeiler & Fergus 2014",
)
def zfnet_mini(
    num_classes: int = 10, in_channels: int = 1, width: int = 32, first_kernel: int = 7, first_stride: int = 1
) -> ZFNetMini:
    """A three-conv ZFNet-style net for 28x28 images (conv, ReLU and max-pool only: deconvnet-ready)."""
    return ZFNetMini(num_classes, in_channels, width, first_kernel, first_stride)
