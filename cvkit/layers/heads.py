"""Projection and prediction heads: the small MLPs that sit on top of a backbone in SSL methods.

SimCLR (Chen et al. 2020, sec. 2.1) found that the contrastive loss works best on
``g(h)``, a small MLP of the representation ``h``, and that ``h`` (not ``g(h)``) is what
transfers; MoCo v2, BYOL and DINO kept the idea. The backbone is what a linear probe reads.
"""

from __future__ import annotations

import torch.nn as nn


def mlp_head(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2, batch_norm: bool = True) -> nn.Sequential:
    """``Linear -> [BN] -> ReLU`` repeated ``layers - 1`` times, then a final ``Linear``.

    Args:
        in_dim: width of the backbone features, D.
        hidden_dim: width of the hidden layers.
        out_dim: width of the output.
        layers: number of Linear layers (>= 1); SimCLR and BYOL use 2, DINO 3.
        batch_norm: BatchNorm after each hidden Linear (BYOL's projector and predictor have it).

    Shapes:
        (B, in_dim) -> (B, out_dim), float32.

    Raises:
        ValueError: ``layers < 1`` or a non-positive width.
    """
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    if min(in_dim, hidden_dim, out_dim) <= 0:
        raise ValueError(f"widths must be positive, got in={in_dim}, hidden={hidden_dim}, out={out_dim}")
    mods: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        mods.append(nn.Linear(width, hidden_dim, bias=not batch_norm))
        if batch_norm:
            mods.append(nn.BatchNorm1d(hidden_dim))
        mods.append(nn.ReLU(inplace=True))
        width = hidden_dim
    mods.append(nn.Linear(width, out_dim))
    return nn.Sequential(*mods)


def feature_dim_of(encoder: nn.Module) -> int:
    """D, the width of the (B, D) features ``encoder`` returns, read from its ``feature_dim`` attribute.

    Raises:
        TypeError: the encoder has no int ``feature_dim``.
    """
    dim = getattr(encoder, "feature_dim", None)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(
            f"the encoder ({type(encoder).__name__}) needs an int attribute feature_dim (the width D of its (B, D) output), "
            "as cvkit.layers.ConvEncoder has"
        )
    return dim
