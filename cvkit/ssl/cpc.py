r"""Contrastive Predictive Coding on images (van den Oord, Li & Vinyals, "Representation Learning with Contrastive
Predictive Coding", 2018, sec. 2 and 3.3; lecture 11).

CPC learns by predicting the future in latent space. For an image (sec. 3.3): cut it into a grid of overlapping
patches, encode every patch with the same encoder, :math:`z_{i,j} = g_{enc}(x_{i,j})`; a **context network** reads
the rows above and including row i and summarises them, :math:`c_{i,j} = g_{ar}(z_{\le i, \cdot})`; a linear map
:math:`W_k` per step predicts the code k rows below, and the **InfoNCE** loss (eq. 4) asks the prediction to pick the
true :math:`z_{i+k,j}` out of every other patch code in the batch:

.. math:: \mathcal{L}_N = -\mathbb{E}\Big[\log \frac{\exp(z_{i+k,j}^\top W_k c_{i,j})}{\sum_{z'} \exp(z'^\top W_k c_{i,j})}\Big].

The context network here is a causal convolution over rows (a row only sees itself and the rows above, the
direction PixelCNN-style masking gives); the encoder that a linear probe reads is :class:`PatchGridEncoder`, the
patch encoder applied to every patch and averaged (CPC's linear evaluation pools the patch codes the same way).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of
from cvkit.ssl.losses import info_nce


class PatchGridEncoder(nn.Module):
    """Apply a patch encoder to every ``patch`` x ``patch`` window (stride ``stride``) of an image.

    Args:
        patch_encoder: maps (N, C, patch, patch) to (N, D); needs ``feature_dim`` = D.
        patch, stride: window size and step, pixels.

    Attributes:
        feature_dim: D.

    Shapes:
        :meth:`grid`: (B, C, H, W) -> (B, D, gh, gw) with gh = (H - patch) // stride + 1;
        ``forward``: (B, C, H, W) -> (B, D), the mean over the grid.

    Raises:
        ValueError: an image smaller than one patch.
    """

    def __init__(self, patch_encoder: nn.Module, patch: int = 8, stride: int = 4) -> None:
        super().__init__()
        self.patch_encoder, self.patch, self.stride = patch_encoder, patch, stride
        self.feature_dim = feature_dim_of(patch_encoder)

    def grid(self, images: torch.Tensor) -> torch.Tensor:
        b, c, h, w = images.shape
        if h < self.patch or w < self.patch:
            raise ValueError(f"images ({h}x{w}) must be at least one patch ({self.patch}) on a side")
        patches = images.unfold(2, self.patch, self.stride).unfold(3, self.patch, self.stride)  # (B, C, gh, gw, p, p)
        gh, gw = patches.shape[2], patches.shape[3]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(
            b * gh * gw, c, self.patch, self.patch
        )  # (B*gh*gw, C, p, p)
        z = self.patch_encoder(patches)  # (B*gh*gw, D)
        return z.view(b, gh, gw, -1).permute(0, 3, 1, 2)  # (B, D, gh, gw)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.grid(images).mean(dim=(2, 3))


class CausalRowContext(nn.Module):
    """:math:`c_{i,j}` from the codes of rows <= i: 3 x 3 convolutions padded only above (each row sees the rows above
    and itself, never below), ReLU between.

    Shapes:
        (B, D, gh, gw) -> (B, D, gh, gw).
    """

    def __init__(self, dim: int, layers: int = 2) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, 3) for _ in range(layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z
        for i, conv in enumerate(self.convs):
            x = conv(F.pad(x, (1, 1, 2, 0)))  # left, right, top 2, bottom 0: the window covers rows i-2..i
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class CPC(nn.Module):
    """CPC for images: patch codes, a causal context over rows, InfoNCE on predictions ``steps`` rows ahead.

    Args:
        patch_encoder: maps (N, C, patch, patch) to (N, D) (e.g. a :class:`cvkit.layers.ConvEncoder`).
        patch, stride: the patch grid (8 and 4 turn a 28 x 28 image into 6 x 6 patches).
        steps: predict 1..``steps`` rows ahead (one linear map :math:`W_k` each).
        temperature: InfoNCE temperature (codes are L2-normalised first).

    Attributes:
        encoder: the :class:`PatchGridEncoder` (what a linear probe reads). num_views: 1 (no augmentation needed).

    Shapes:
        ``forward(images (B, C, H, W))`` -> scalar loss.

    Raises:
        ValueError: ``steps`` < 1, or a grid with no more than ``steps`` rows.
    """

    num_views = 1

    def __init__(
        self, patch_encoder: nn.Module, patch: int = 8, stride: int = 4, steps: int = 2, temperature: float = 0.1
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.encoder = PatchGridEncoder(patch_encoder, patch, stride)
        dim = self.encoder.feature_dim
        self.context = CausalRowContext(dim)
        self.predictors = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(steps))
        self.steps, self.temperature = steps, temperature

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.encoder.grid(images)  # (B, D, gh, gw)
        if z.shape[2] <= self.steps:
            raise ValueError(f"the patch grid has {z.shape[2]} rows: too few to predict {self.steps} rows ahead")
        c = self.context(z)  # (B, D, gh, gw)
        losses = []
        for k, predictor in enumerate(self.predictors, start=1):
            pred = predictor(c[:, :, :-k].permute(0, 2, 3, 1).reshape(-1, c.shape[1]))  # (B*(gh-k)*gw, D): W_k c_{i,j}
            target = z[:, :, k:].permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (B*(gh-k)*gw, D): z_{i+k,j}
            losses.append(info_nce(pred, target, temperature=self.temperature))  # every other patch code is a negative
        return torch.stack(losses).mean()

    def extra_repr(self) -> str:
        return f"steps={self.steps}, temperature={self.temperature}"
