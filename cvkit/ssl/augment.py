"""SimCLR's augmentation recipe (Chen et al., ICML 2020, fig. 4 and appendix A), batched and on the device.

The transforms themselves are general and live in :mod:`cvkit.data.augment`; this module composes them the way
SimCLR does::

    aug = simclr_augmentation(size=28, crop_scale=(0.2, 1.0))
    g = torch.Generator(device=x.device).manual_seed(0)
    v1, v2 = two_views(x, aug, g)        # two independent augmentations of each image

Their finding: the *composition* of random cropping and colour distortion matters most.
"""

from __future__ import annotations

import torch

from cvkit.data.augment import (
    BatchTransform,
    ColorJitter,
    Compose,
    GaussianNoise,
    RandomCutout,
    RandomFlip,
    RandomGaussianBlur,
    RandomGrayscale,
    RandomResizedCrop,
    RandomRotate90,
    Sobel,
)


def simclr_augmentation(
    size: int | None = None,
    *,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    strength: float = 1.0,
    blur: bool = True,
    blur_kernel: int | None = None,
) -> Compose:
    """SimCLR's default augmentation (Chen et al. 2020, appendix A): crop, flip, colour jitter, colour drop, blur.

    ``RandomResizedCrop(size, crop_scale)``, ``RandomFlip(0.5)``, ``ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s, p=0.8)``,
    ``RandomGrayscale(0.2)`` and, when ``blur``, ``RandomGaussianBlur(p=0.5, sigma in [0.1, 2])`` with a
    kernel of about 10% of the image side. On one-channel images the saturation, hue and
    grey steps do nothing, which leaves crop, flip, brightness, contrast and blur.

    Args:
        size: output side in pixels (``None``: keep the input size).
        crop_scale: area range of the crop (SimCLR: (0.08, 1); small images want a larger minimum, e.g. 0.2).
        strength: colour-distortion strength s (SimCLR: 1.0 on ImageNet, 0.5 on CIFAR-10).
        blur: include the Gaussian blur (SimCLR drops it for CIFAR-10's 32x32 images).
        blur_kernel: odd kernel side (``None``: 10% of ``size``, at least 3).

    Returns:
        a :class:`cvkit.data.augment.Compose` of batched transforms.

    Raises:
        ValueError: a negative ``strength`` or a blur kernel that cannot be derived (``size`` and ``blur_kernel`` both None).
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    s = strength
    transforms: list[BatchTransform] = [
        RandomResizedCrop(size, scale=crop_scale),
        RandomFlip(0.5),
        ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5), p=0.8),
        RandomGrayscale(0.2),
    ]
    if blur:
        if blur_kernel is None:
            if size is None:
                raise ValueError("give size or blur_kernel so the blur kernel (about 10% of the image side) is known")
            blur_kernel = max(3, int(0.1 * size) // 2 * 2 + 1)
        transforms.append(RandomGaussianBlur(blur_kernel, (0.1, 2.0), p=0.5))
    return Compose(transforms)


def two_views(
    images: torch.Tensor, transform: BatchTransform, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent augmentations of the same batch: the positive pairs of contrastive learning.

    Returns:
        (view1, view2), each shaped like ``transform(images)``.
    """
    return transform(images, generator), transform(images, generator)


# the augmentation list of SimCLR's figure 4, (b) to (j), for the gallery
def simclr_gallery(size: int) -> dict[str, BatchTransform]:
    """One transform per panel of SimCLR's figure 4, with fixed probability 1, keyed by the panel's caption.

    Args:
        size: image side in pixels (the output of the crops).
    """
    return {
        "(b) crop and resize": RandomResizedCrop(size, scale=(0.08, 0.5)),
        "(c) crop, resize, flip": Compose([RandomResizedCrop(size, scale=(0.08, 0.5)), RandomFlip(1.0)]),
        "(d) colour drop": RandomGrayscale(1.0),
        "(e) colour jitter": ColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0),
        "(f) rotate 90/180/270": RandomRotate90(1.0),
        "(g) cutout": RandomCutout(0.5, p=1.0),
        "(h) Gaussian noise": GaussianNoise((0.1, 0.2)),
        "(i) Gaussian blur": RandomGaussianBlur(max(3, int(0.1 * size) // 2 * 2 + 1), (1.0, 3.0), p=1.0),
        "(j) Sobel filtering": Sobel(1.0),
    }


__all__ = ["simclr_augmentation", "simclr_gallery", "two_views"]
