r"""Patch embedding: an image becomes a sequence of tokens (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words").

ViT's eq. (1) flattens each P x P patch into a vector :math:`\mathbf{x}_p^i \in \mathbb{R}^{P^2 C}` and multiplies
it by one matrix :math:`\mathbf{E} \in \mathbb{R}^{(P^2 C) \times D}`. A convolution with kernel P and stride P
computes exactly the same numbers (each output pixel is one patch times the kernel), so libraries use
the convolution. :class:`PatchEmbed` holds one set of weights and computes either form.

Layouts: images (B, C, H, W); patches (B, N, C*P*P) flattened in (C, P, P) order, the order of a
``Conv2d`` weight's ``flatten(1)``; tokens (B, N, D) in row-major patch order (N = H/P * W/P).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

PatchMode = Literal["conv", "linear"]
PATCH_MODES = ("conv", "linear")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches and flatten each one.

    Args:
        images: (B, C, H, W), H and W divisible by ``patch_size``.
        patch_size: P, the side of a patch in pixels.

    Returns:
        (B, N, C*P*P) with N = (H/P)(W/P), patches in row-major order, each flattened in (C, P, P) order.

    Raises:
        ValueError: not a 4-D tensor, or H or W not divisible by P.
    """
    _check_images(images, patch_size)
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)  # (B, C, H/P, P, W/P, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, H/P, W/P, C, P, P)
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, C*P*P)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size: tuple[int, int], channels: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: put flattened patches back into images.

    Args:
        patches: (B, N, C*P*P) in the layout :func:`patchify` returns.
        patch_size: P.
        image_size: (H, W) of the images, both divisible by P.
        channels: C.

    Returns:
        (B, C, H, W).

    Raises:
        ValueError: the patch count or size does not match ``image_size``, ``channels`` and P.
    """
    h, w = image_size
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image_size {image_size} must be divisible by patch_size {p}")
    gh, gw = h // p, w // p
    if patches.dim() != 3 or patches.shape[1] != gh * gw or patches.shape[2] != channels * p * p:
        raise ValueError(
            f"expected patches of shape (B, {gh * gw}, {channels * p * p}) for {channels}x{h}x{w} images and P={p}, "
            f"got {tuple(patches.shape)}"
        )
    b = patches.shape[0]
    x = patches.reshape(b, gh, gw, channels, p, p)  # (B, H/P, W/P, C, P, P)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, H/P, P, W/P, P)
    return x.reshape(b, channels, h, w)


class PatchEmbed(nn.Module):
    r"""Split an image into P x P patches and project each to D dimensions: (B, C, H, W) -> (B, N, D).

    Args:
        img_size: H = W of the input images (an int) or (H, W); both divisible by ``patch_size``.
        patch_size: P.
        in_chans: C.
        dim: D, the token width.
        mode: ``"conv"``: ``Conv2d(C, D, kernel_size=P, stride=P)`` then flatten (what libraries do);
            ``"linear"``: :func:`patchify` then one matrix :math:`\mathbf{E}` (ViT eq. 1 as written).
            Both use the same parameters (``proj.weight`` (D, C, P, P), ``proj.bias`` (D,)) and agree to
            rounding error; the mode can be changed after construction.
        bias: learn a bias.

    Attributes:
        grid_size: (H/P, W/P); num_patches: N.

    Raises:
        ValueError: sizes not divisible by P, an unknown mode, or (in forward) an input of another size.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        dim: int = 768,
        *,
        mode: PatchMode = "conv",
        bias: bool = True,
    ) -> None:
        super().__init__()
        h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if h % patch_size or w % patch_size:
            raise ValueError(f"img_size {(h, w)} must be divisible by patch_size {patch_size}")
        if mode not in PATCH_MODES:
            raise ValueError(f"mode must be one of {PATCH_MODES}, got {mode!r}")
        self.img_size = (h, w)
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.grid_size = (h // patch_size, w // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.mode = mode
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images -> (B, N, D) tokens."""
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_chans, *self.img_size):
            raise ValueError(
                f"PatchEmbed expects images of shape (B, {self.in_chans}, {self.img_size[0]}, {self.img_size[1]}), "
                f"got {tuple(images.shape)}; resize the images or build the model with img_size={tuple(images.shape[-2:])}"
            )
        if self.mode == "conv":
            x = self.proj(images)  # (B, D, H/P, W/P)
            return x.flatten(2).transpose(1, 2)  # (B, N, D)
        if self.mode == "linear":
            weight = self.proj.weight.flatten(1)  # (D, C*P*P): E^T, rows in (C, P, P) order like patchify
            return F.linear(patchify(images, self.patch_size), weight, self.proj.bias)  # (B, N, D)
        raise ValueError(f"mode must be one of {PATCH_MODES}, got {self.mode!r}")

    def extra_repr(self) -> str:
        return f"img_size={self.img_size}, patch_size={self.patch_size}, grid={self.grid_size}, mode={self.mode!r}"


def _check_images(images: torch.Tensor, patch_size: int) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images (B, C, H, W), got {shape}; add a batch axis with x[None]")
    if patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size}")
    h, w = images.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"image size {h}x{w} is not divisible by patch_size {patch_size}; resize or crop first")
