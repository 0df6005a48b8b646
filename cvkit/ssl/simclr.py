"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020).

Two augmentations of every image go through the same encoder f and projection head g;
NT-Xent (:func:`cvkit.ssl.losses.nt_xent`) pulls the two views of an image together and
pushes them away from the 2B - 2 views of the other images in the batch. No memory bank,
no momentum encoder: the negatives are the rest of the batch, so bigger batches help.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.losses import nt_xent


class SimCLR(nn.Module):
    """Encoder f, projection head g, NT-Xent on two views.

    Args:
        encoder: backbone mapping (B, C, H, W) images to (B, D) features; must have ``feature_dim`` = D.
        projection_dim: output width of g (SimCLR: 128).
        hidden_dim: hidden width of g (default: D).
        temperature: tau of NT-Xent.

    Attributes:
        encoder: the backbone (what a linear probe evaluates).
        num_views: 2, the views :meth:`forward` takes.

    Shapes:
        ``forward(view1, view2)``: two (B, C, H, W) float batches -> scalar loss.

    Raises:
        TypeError: the encoder has no ``feature_dim``.
    """

    num_views = 2

    def __init__(
        self, encoder: nn.Module, projection_dim: int = 128, hidden_dim: int | None = None, temperature: float = 0.5
    ) -> None:
        super().__init__()
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.projector = mlp_head(dim, hidden_dim or dim, projection_dim)
        self.temperature = temperature

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        z = self.projector(self.encoder(torch.cat([view1, view2])))  # (2B, P): one pass, BN sees both views
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.temperature)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"
