"""A multilayer perceptron on flattened images: the first classifier of the course (lecture 01)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.models.registry import register_model


class MLP(nn.Module):
    """Flatten, then Linear-ReLU layers, then a linear classifier.

    Args:
        in_features: C * H * W of the input images (784 for Fashion-MNIST).
        hidden: widths of the hidden layers.
        num_classes: K, the number of outputs.
        dropout: dropout probability after each hidden layer.

    Shapes:
        input (B, C, H, W) float32 with C * H * W = ``in_features``; output (B, K) logits.

    Raises:
        ValueError: an input whose flattened size is not ``in_features``.
    """

    def __init__(
        self, in_features: int = 784, hidden: Sequence[int] = (256, 128), num_classes: int = 10, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.in_features = in_features
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.in_features:
            raise ValueError(f"MLP expects inputs with {self.in_features} values per image, got shape {tuple(x.shape)}")
        return self.net(x)


@register_model(
    "mlp", task="classification", input_shape=(1, 28, 28), output_shape=(10,), reference="Rumelhart et al. 1986"
)
def mlp(in_features: int = 784, hidden: Sequence[int] = (256, 128), num_classes: int = 10, dropout: float = 0.0) -> MLP:
    """A two-hidden-layer MLP for 28x28 grey images."""
    return MLP(in_features, hidden, num_classes, dropout)
