r"""BYOL: Bootstrap Your Own Latent (Grill et al., NeurIPS 2020): self-distillation without negative pairs.

An online network (encoder, projector, **predictor**) learns to predict a target
network's projection of another view of the same image. The target is a moving average
of the online network and receives no gradient (stop-gradient). Without negatives,
what keeps the representation from collapsing to a constant is this asymmetry: the
predictor plus the slowly moving target.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.losses import byol_loss
from cvkit.ssl.momentum import ema_update_, frozen_copy


class BYOL(nn.Module):
    """Online encoder + projector + predictor; target encoder + projector as their moving average.

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, D), with ``feature_dim`` = D.
        projection_dim: width of the projections (BYOL: 256).
        hidden_dim: hidden width of projector and predictor (BYOL: 4096; default here: 2 D).
        momentum: tau of the target's moving average (BYOL: 0.996 rising to 1).

    Attributes:
        encoder, projector, predictor: the online network (``encoder`` is what a probe reads).
        target_encoder, target_projector: the target network (``requires_grad=False``).
        num_views: 2.

    Shapes:
        ``forward(view1, view2)``: two (B, C, H, W) batches -> scalar loss, symmetrised (eq. 2 plus the swapped term).

    In training mode, :meth:`forward` first moves the target network one EMA step.
    """

    num_views = 2

    def __init__(
        self, encoder: nn.Module, projection_dim: int = 128, hidden_dim: int | None = None, momentum: float = 0.99
    ) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        dim = feature_dim_of(encoder)
        hidden = hidden_dim or 2 * dim
        self.encoder = encoder
        self.projector = mlp_head(dim, hidden, projection_dim)
        self.predictor = mlp_head(projection_dim, hidden, projection_dim)
        self.target_encoder = frozen_copy(encoder)
        self.target_projector = frozen_copy(self.projector)
        self.momentum = momentum

    @torch.no_grad()
    def momentum_update(self) -> None:
        """One EMA step of the target network towards the online one (BYOL eq. 1)."""
        ema_update_(self.target_encoder, self.encoder, self.momentum)
        ema_update_(self.target_projector, self.projector, self.momentum)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.momentum_update()
        both = torch.cat([view1, view2])  # (2B, C, H, W)
        p1, p2 = self.predictor(self.projector(self.encoder(both))).chunk(2)  # online predictions
        with torch.no_grad():
            z1, z2 = self.target_projector(self.target_encoder(both)).chunk(2)  # target projections
        return byol_loss(p1, z2) + byol_loss(p2, z1)  # each view predicts the other's target

    def extra_repr(self) -> str:
        return f"momentum={self.momentum}"
