"""Batched data augmentation that runs where the data lives (GPU or CPU), one call per batch: the base class.

A per-sample PIL pipeline needs CPU cores that Colab does not have (2); these
transforms act on a whole (B, C, H, W) batch already on the device, with random
numbers from an explicit ``torch.Generator`` so a run can be replayed exactly.
Geometric transforms are in :mod:`cvkit.data.augment.geometric`, colour and filtering ones in
:mod:`cvkit.data.augment.photometric`.
"""

from __future__ import annotations

from typing import Sequence

import torch


class BatchTransform:
    """Base class: ``transform(images, generator) -> images`` on a (B, C, H, W) float batch."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def check_image_batch(images: torch.Tensor) -> None:
    """Check that ``images`` is a batch of images, ``(B, C, H, W)``, before a batched transform.

    Args:
        images: any dtype; only the type and the number of dimensions are checked.

    Raises:
        ValueError: not a tensor, or not 4-D (the message shows what came and how to add a batch axis).
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected a (B, C, H, W) batch, got {shape}; add a batch axis with x[None]")


class Compose(BatchTransform):
    """Apply transforms in order, sharing one generator."""

    def __init__(self, transforms: Sequence[BatchTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            images = t(images, generator)
        return images


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """(n,) float32 uniform in [low, high)."""
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _bernoulli(n: int, p: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """(n,) bool, each True with probability p."""
    return torch.rand(n, generator=generator, device=device) < p


def _check_probability(p: float, name: str = "p") -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
