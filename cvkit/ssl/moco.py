r"""MoCo: momentum contrast (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020).

Contrastive learning as a dictionary look-up: a query q (one view through the encoder)
must match its key k+ (the other view through a *momentum* encoder) among K negatives
kept in a **queue** of keys from previous batches. The queue decouples the number of
negatives from the batch size; the slowly moving key encoder (eq. 2,
:math:`\theta_k \leftarrow m\theta_k + (1-m)\theta_q`) keeps the queued keys consistent.
This is MoCo v2 (Chen et al. 2020): an MLP projection head and SimCLR's augmentations.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.losses import info_nce
from cvkit.ssl.momentum import ema_update_, frozen_copy


class MoCo(nn.Module):
    """Query encoder, momentum key encoder, and a FIFO queue of negative keys.

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, D), with ``feature_dim`` = D.
        projection_dim: width of the embeddings compared by InfoNCE (MoCo: 128).
        hidden_dim: hidden width of the MLP head (default: D).
        queue_size: K, the number of negative keys kept (MoCo: 65536 on ImageNet).
        momentum: m of the key encoder's moving average (MoCo: 0.999; smaller for short runs).
        temperature: tau of InfoNCE (MoCo v2: 0.2).

    Attributes:
        encoder, projector: the query network (trained by gradients; ``encoder`` is what a probe reads).
        encoder_k, projector_k: the key network (moving average, ``requires_grad=False``).
        queue: (K, P) buffer of L2-normalised keys, oldest overwritten first; ``queue_ptr``: next slot.
        num_views: 2.

    Shapes:
        ``forward(view_q, view_k)``: two (B, C, H, W) batches -> scalar InfoNCE loss.

    In training mode, :meth:`forward` first moves the key encoder (as MoCo's reference code does, so
    one forward per optimiser step is one momentum update) and finally enqueues the batch's keys.
    """

    num_views = 2

    def __init__(
        self,
        encoder: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int | None = None,
        queue_size: int = 4096,
        momentum: float = 0.99,
        temperature: float = 0.2,
    ) -> None:
        super().__init__()
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.projector = mlp_head(dim, hidden_dim or dim, projection_dim)
        self.encoder_k = frozen_copy(self.encoder)
        self.projector_k = frozen_copy(self.projector)
        self.momentum = momentum
        self.temperature = temperature
        # start from random unit vectors, as the reference implementation does
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q for the encoder and the projection head (MoCo eq. 2)."""
        ema_update_(self.encoder_k, self.encoder, self.momentum)
        ema_update_(self.projector_k, self.projector, self.momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write (B, P) keys into the queue at ``queue_ptr``, wrapping around (the oldest keys leave first).

        Raises:
            ValueError: keys of the wrong width.
        """
        if keys.dim() != 2 or keys.shape[1] != self.queue.shape[1]:
            raise ValueError(f"keys must be (B, {self.queue.shape[1]}), got {tuple(keys.shape)}")
        k = keys.shape[0]
        size = self.queue.shape[0]
        if k >= size:  # more keys than slots: keep the newest
            self.queue.copy_(keys[-size:])
            self.queue_ptr.zero_()
            return
        idx = (self.queue_ptr + torch.arange(k, device=keys.device)) % size  # (B,) slots, wrapping around
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + k) % size)

    def forward(self, view_q: torch.Tensor, view_k: torch.Tensor) -> torch.Tensor:
        q = self.projector(self.encoder(view_q))  # (B, P) queries
        with torch.no_grad():
            if self.training:
                self.momentum_update()
            k = F.normalize(self.projector_k(self.encoder_k(view_k)), dim=1)  # (B, P) keys, no gradient
        loss = info_nce(q, k, self.queue.clone(), self.temperature)  # negatives: the queue before this batch
        if self.training:
            self.enqueue(k)
        return loss

    def extra_repr(self) -> str:
        return f"queue_size={self.queue.shape[0]}, momentum={self.momentum}, temperature={self.temperature}"
