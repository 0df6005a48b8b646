"""A small convolutional encoder: the backbone of the captioning, CLIP and self-supervised lectures.

Stride-2 3x3 convolutions, each followed by BatchNorm and ReLU, halve the resolution at
every stage, so a 28x28 Fashion-MNIST image becomes a 4x4 grid after three stages and a
64x64 shapes image an 8x8 grid. Cheap enough to train for a few hundred steps on two CPU
cores, which is what the fast profile of lectures 10 and 11 needs.

Two outputs, for the two ways the lectures use a backbone::

    enc = ConvEncoder(in_channels=1, widths=(32, 64, 128))
    enc.forward_map(x)   # (B, 128, 4, 4): a grid of region features (captioning attends over it)
    enc(x)               # (B, 128): global-average-pooled features (SSL, linear probes, CLIP)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn


class ConvEncoder(nn.Module):
    """Stacked ``Conv3x3 -> BatchNorm -> ReLU`` stages, each with stride 2, then global average pooling.

    Args:
        in_channels: C of the input images (1 for Fashion-MNIST, 3 for shapes and photos).
        widths: output channels of each stage; the number of stages is ``len(widths)``.
        extra_convs: stride-1 3x3 conv-BN-ReLU layers added after each strided one (depth without downsampling).

    Attributes:
        feature_dim: D = ``widths[-1]``, the length of the pooled feature vector.
        stride: total downsampling factor, ``2 ** len(widths)``.

    Shapes:
        input (B, C, H, W) float32; :meth:`forward_map` returns (B, D, ceil(H / stride), ceil(W / stride)),
        :meth:`forward` returns (B, D).

    Raises:
        ValueError: no stages or a non-positive width (constructor); an input whose channel count is not
            ``in_channels`` (forward).
    """

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = (32, 64, 128), extra_convs: int = 0) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) <= 0:
            raise ValueError(f"widths must be a non-empty sequence of positive channel counts, got {widths}")
        if extra_convs < 0:
            raise ValueError(f"extra_convs must be >= 0, got {extra_convs}")
        self.in_channels = in_channels
        self.widths = widths
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += _conv_bn_relu(c, w, stride=2)
            for _ in range(extra_convs):
                layers += _conv_bn_relu(w, w, stride=1)
            c = w
        self.features = nn.Sequential(*layers)
        self.feature_dim = widths[-1]
        self.stride = 2 ** len(widths)

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, (B, D, H / stride, W / stride)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ConvEncoder expects (B, {self.in_channels}, H, W) images, got shape {tuple(x.shape)}; "
                f"build it with in_channels={x.shape[1] if x.dim() == 4 else '?'} for these images"
            )
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled features, (B, D)."""
        return self.forward_map(x).mean(dim=(2, 3))  # (B, D, h, w) -> (B, D)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, widths={self.widths}, feature_dim={self.feature_dim}"


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    # no conv bias: BatchNorm's shift makes it redundant (Ioffe & Szegedy 2015, sec. 3.2)
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
