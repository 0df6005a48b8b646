"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998): the first CNN of the course.

C1 (6 maps 5x5) - S2 (2x2 subsampling) - C3 (16 maps 5x5) - S4 - C5 (120 maps 5x5) - F6 (84) - output.
The paper's input is 32x32 with the largest character about 20x20; Fashion-MNIST's 28x28
images are zero-padded by 2 pixels to get the same 32x32 geometry.

Two simplifications, both usual: C3 connects to all 6 maps of S2 (the paper's connection
table links each C3 map to 3, 4 or 6 of them, 1,516 weights instead of 2,416), and S2/S4
are plain average pools followed by the activation (the paper's have a trainable coefficient
and bias per map). The output layer is linear (the paper's is a layer of RBF units).
With the defaults the network has 61,706 parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.activations import ActivationName, make_activation
from cvkit.models.registry import register_model


class LeNet5(nn.Module):
    """LeNet-5 with named layers ``c1, s2, c3, s4, c5, f6, output``.

    Args:
        num_classes: K outputs.
        in_channels: 1 for grey images.
        act: activation after every layer but the last (``"tanh"`` as in 1998, or ``"relu"``).
        pool: ``"avg"`` (subsampling as in the paper) or ``"max"``.
        padding: zero padding of C1 (2 turns 28x28 into the paper's 32x32; use 0 for 32x32 inputs).

    Shapes:
        input (B, C, 28, 28) with padding 2, or (B, C, 32, 32) with padding 0; output (B, K) logits.

    Raises:
        ValueError: unknown ``pool``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        act: ActivationName = "tanh",
        pool: Literal["avg", "max"] = "avg",
        padding: int = 2,
    ) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        Pool = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, 6, 5, padding=padding),
                act1=make_activation(act),  # (B, 6, 28, 28)
                s2=Pool(2),
                c3=nn.Conv2d(6, 16, 5),
                act3=make_activation(act),  # (B, 16, 10, 10)
                s4=Pool(2),
                c5=nn.Conv2d(16, 120, 5),
                act5=make_activation(act),  # (B, 120, 1, 1)
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                f6=nn.Linear(120, 84),
                act6=make_activation(act),
                output=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model(
    "lenet5", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="LeCun et al. 1998"
)
def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    act: ActivationName = "tanh",
    pool: Literal["avg", "max"] = "avg",
    padding: int = 2,
) -> LeNet5:
    """LeNet-5 for 28x28 grey images (61,706 parameters)."""
    return LeNet5(num_classes, in_channels, act, pool, padding)
