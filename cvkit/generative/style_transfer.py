r"""Neural style transfer (Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016; lecture 12's low-level vision, seed 003 "风格迁移" / style transfer).

A CNN trained for recognition describes an image at two levels. The **content** of an image is its feature maps at
a deep layer (eq. 1: :math:`\mathcal L_{content} = \tfrac12\sum (F^l - P^l)^2`); its **style** is the correlation of
the feature maps at several layers, the Gram matrix :math:`G^l_{ij} = \sum_k F^l_{ik} F^l_{jk}` (eq. 3), which keeps
which features occur together and forgets where (eq. 4-5: :math:`\mathcal L_{style} = \sum_l w_l \frac{1}{4N_l^2M_l^2}
\sum (G^l - A^l)^2`). Starting from the content photo, gradient descent *on the pixels* lowers
:math:`\alpha\mathcal L_{content} + \beta\mathcal L_{style}` (eq. 7): the picture keeps its objects and takes the
style image's textures and colours.

Any trained CNN works: VGG-19 in the paper (``torchvision``'s weights where they can be downloaded), or a small CNN
trained in the notebook. Layers are named as in ``model.named_modules()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.inspect.hooks import recording


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    r"""Gram matrices :math:`G_{ij} = \sum_k F_{ik}F_{jk} / (N M)` of (B, N, H, W) feature maps (M = H W positions).

    Normalised by :math:`N M` so that layers of different sizes weigh alike (the paper's :math:`1/(4N^2M^2)` is then a
    constant factor).

    Returns:
        (B, N, N) float.

    Raises:
        ValueError: not 4-D.
    """
    if features.dim() != 4:
        raise ValueError(f"expected feature maps (B, N, H, W), got {tuple(features.shape)}")
    b, n, h, w = features.shape
    f = features.reshape(b, n, h * w)  # (B, N, M)
    return f @ f.transpose(1, 2) / (n * h * w)


@dataclass
class StyleTransferResult:
    """The stylised image and the losses of every step.

    Attributes:
        image: (1, 3, H, W) float in [0, 1].
        content_loss, style_loss: lists, one value per step (before the step's update).
    """

    image: torch.Tensor
    content_loss: list[float] = field(default_factory=list)
    style_loss: list[float] = field(default_factory=list)


def style_transfer(
    model: nn.Module,
    content: torch.Tensor,
    style: torch.Tensor,
    content_layers: Sequence[str],
    style_layers: Sequence[str],
    *,
    steps: int = 100,
    style_weight: float = 1e4,
    lr: float = 0.02,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> StyleTransferResult:
    """Gatys et al.'s optimisation: the pixels of an image, started at the content photo, minimise
    ``content_loss + style_weight * style_loss`` (Adam on the pixels, clamped to [0, 1]).

    Args:
        model: a trained CNN (eval mode is set and restored; its weights are not changed).
        content, style: (3, H, W) or (1, 3, H, W) float in [0, 1] (any two sizes).
        content_layers, style_layers: module names whose outputs define content and style.
        steps: optimisation steps (>= 1). style_weight: :math:`\\beta/\\alpha`. lr: Adam's step on pixel values.
        preprocess: applied to an image before the model (e.g. ImageNet normalisation for torchvision weights).

    Returns:
        :class:`StyleTransferResult`.

    Raises:
        ValueError: no layers, ``steps`` < 1, or images that are not RGB.
        KeyError: a layer name the model does not have.
    """
    if not content_layers or not style_layers or steps < 1:
        raise ValueError("need at least one content layer, one style layer and steps >= 1")
    content = content[None] if content.dim() == 3 else content
    style = style[None] if style.dim() == 3 else style
    if content.shape[1] != 3 or style.shape[1] != 3:
        raise ValueError(f"content and style must be RGB images, got {tuple(content.shape)} and {tuple(style.shape)}")
    device = next(model.parameters()).device
    content, style = content.to(device), style.to(device)
    prep = preprocess or (lambda x: x)
    layers = list(dict.fromkeys([*content_layers, *style_layers]))
    was = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with recording(model, layers) as store:
            with torch.no_grad():
                model(prep(content))
                targets_c = {n: store[n].detach() for n in content_layers}
                model(prep(style))
                targets_s = {n: gram_matrix(store[n]).detach() for n in style_layers}
            image = content.clone().requires_grad_(True)
            opt = torch.optim.Adam([image], lr=lr)
            result = StyleTransferResult(image.detach())
            for _ in range(steps):
                opt.zero_grad()
                model(prep(image))
                lc = sum(F.mse_loss(store[n], targets_c[n]) for n in content_layers) / len(content_layers)  # eq. 1
                ls = sum(F.mse_loss(gram_matrix(store[n]), targets_s[n], reduction="sum") for n in style_layers) / len(
                    style_layers
                )  # eq. 5
                (lc + style_weight * ls).backward()  # eq. 7
                opt.step()
                with torch.no_grad():
                    image.clamp_(0, 1)
                result.content_loss.append(float(lc.detach()))
                result.style_loss.append(float(ls.detach()))
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was)
    result.image = image.detach()
    return result
