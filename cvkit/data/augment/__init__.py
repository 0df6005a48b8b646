"""Batched data augmentation on the device: one call per (B, C, H, W) batch, random numbers from a ``torch.Generator``.

* :mod:`~cvkit.data.augment.base`: :class:`BatchTransform` (the interface), :class:`Compose`, :func:`check_image_batch`.
* :mod:`~cvkit.data.augment.geometric`: flips, translations, random resized crops, 90-degree rotations, cutout.
* :mod:`~cvkit.data.augment.photometric`: colour jitter, grayscale, Gaussian noise and blur, Sobel filtering.

Recipes built from them: :func:`flip_and_translate` (classification), :func:`cvkit.ssl.simclr_augmentation`.
"""

from cvkit.data.augment.base import BatchTransform, Compose, check_image_batch
from cvkit.data.augment.geometric import (
    RandomCutout,
    RandomFlip,
    RandomResizedCrop,
    RandomRotate90,
    RandomTranslate,
    flip_and_translate,
    resized_crop,
    rotate90,
)
from cvkit.data.augment.photometric import (
    LUMA_WEIGHTS,
    ColorJitter,
    GaussianNoise,
    RandomGaussianBlur,
    RandomGrayscale,
    Sobel,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    gaussian_blur,
    grayscale,
    hsv_to_rgb,
    rgb_to_hsv,
    sobel,
)

__all__ = [
    "LUMA_WEIGHTS",
    "BatchTransform",
    "ColorJitter",
    "Compose",
    "GaussianNoise",
    "RandomCutout",
    "RandomFlip",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "RandomResizedCrop",
    "RandomRotate90",
    "RandomTranslate",
    "Sobel",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "check_image_batch",
    "flip_and_translate",
    "gaussian_blur",
    "grayscale",
    "hsv_to_rgb",
    "resized_crop",
    "rgb_to_hsv",
    "rotate90",
    "sobel",
]
