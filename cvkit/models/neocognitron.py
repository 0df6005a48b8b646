r"""The Neocognitron (Fukushima, Biological Cybernetics 1980): the first convolutional network (lecture 02; seed 003).

Fukushima built Hubel & Wiesel's hierarchy (:mod:`cvkit.conv.cortex`) into a network of alternating layers:

* **S-layers** (simple cells): planes of cells that all apply the *same* input weights at every position, each
  plane one feature; a cell fires when its input window matches the feature (a template match with a threshold).
  One plane is a convolution followed by rectification, one S-layer a convolutional layer.
* **C-layers** (complex cells): each cell pools a neighbourhood of one S-plane and saturates, so a feature that
  moves a little still excites the same C-cell: tolerance to shifts grows layer after layer.

This module follows that structure: S1 is a fixed bank of oriented Gabor edge detectors (the fixed first layer
of Fukushima's later versions), C1/C2 are overlapping average pools with Fukushima's saturation
:math:`\psi(x) = x / (1 + x)`, S2 is learned, and a linear read-out classifies the last C-layer. Fukushima
trained S2 without labels (winner-take-all self-organisation); here it is trained by backpropagation, which is the
step LeCun et al. (1989) took to get LeNet.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.conv.cortex import gabor_bank
from cvkit.models.registry import register_model


class CLayer(nn.Module):
    r"""A C-layer: average over a ``pool`` x ``pool`` neighbourhood (stride ``pool // 2 + 1``, overlapping),
    then :math:`\psi(x) = x / (1 + x)` (Fukushima 1980, eq. 5's saturation).

    Shapes:
        (B, K, H, W) non-negative -> (B, K, H', W') in [0, 1).
    """

    def __init__(self, pool: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.pool, self.stride = pool, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x, self.pool, self.stride, padding=self.pool // 2, count_include_pad=False)
        return x / (1 + x)


class Neocognitron(nn.Module):
    """S1 (fixed Gabor) - C1 - S2 (learned) - C2 - linear read-out, for grey images.

    Args:
        num_classes: K outputs.
        orientations: S1 planes (one even-phase Gabor per orientation; 8 planes with both phases is ``phases=2``).
        s2_planes: learned S2 feature planes. s2_kernel: S2 window (odd).
        gain: multiplies S1 (Gabor responses are small; the saturation needs inputs of order 1).

    Shapes:
        images (B, 1, H, W) float in [0, 1] -> (B, K) logits; :meth:`layers` returns every layer's maps.

    Raises:
        ValueError: an input that is not (B, 1, H, W).
    """

    def __init__(
        self, num_classes: int = 10, orientations: int = 4, s2_planes: int = 16, s2_kernel: int = 5, gain: float = 8.0
    ) -> None:
        super().__init__()
        bank = gabor_bank(7, frequency=0.2, sigma=2.0, orientations=orientations, aspect=0.5, phases=(0.0, math.pi))
        self.register_buffer("s1_kernels", bank * gain)  # (2 * orientations, 1, 7, 7): light and dark bars, fixed
        self.c1 = CLayer()
        self.s2 = nn.Conv2d(bank.shape[0], s2_planes, s2_kernel, padding=s2_kernel // 2)
        self.c2 = CLayer()
        self.readout = nn.Linear(s2_planes * 16, num_classes)  # C2 averaged over a 4 x 4 grid of regions

    def layers(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output: ``{"S1": (B, 2K, H, W), "C1": ..., "S2": ..., "C2": ...}``."""
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(f"expected grey images (B, 1, H, W), got {tuple(images.shape)}")
        s1 = F.relu(F.conv2d(images, self.s1_kernels, padding=self.s1_kernels.shape[-1] // 2))
        c1 = self.c1(s1)
        s2 = F.relu(self.s2(c1))
        c2 = self.c2(s2)
        return {"S1": s1, "C1": c1, "S2": s2, "C2": c2}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c2 = self.layers(images)["C2"]  # (B, P, H/4, W/4)
        # each feature's mean response in a 4 x 4 grid of regions: a global maximum (one number per feature) kept too
        # little to classify Fashion-MNIST (0.28-0.38 test accuracy after 2 epochs on 4,000 images, against 0.63)
        return self.readout(F.adaptive_avg_pool2d(c2, 4).flatten(1))


@register_model(
    "neocognitron",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    smoke_kwargs=dict(s2_planes=4),
    reference="Fukushima 1980",
)
def neocognitron(
    num_classes: int = 10, orientations: int = 4, s2_planes: int = 16, s2_kernel: int = 5, gain: float = 8.0
) -> Neocognitron:
    """A two-stage Neocognitron (fixed Gabor S1, learned S2) for 28x28 grey images."""
    return Neocognitron(num_classes, orientations, s2_planes, s2_kernel, gain)
