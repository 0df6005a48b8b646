"""Real photographs that ship inside the scikit-image wheel, as tensors (no internet needed).

``load_photo("astronaut")`` gives a (3, 512, 512) float32 tensor in [0, 1]; the lecture
notebooks use these for convolutions, feature maps, receptive fields and attention overlays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# name -> (skimage.data function, what it shows). Only photos bundled in the wheel:
# others in skimage.data (eagle, cells3d, ...) need a download and fail offline.
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut", "Eileen Collins in her NASA portrait, colour, 512x512"),
    "cat": ("chelsea", "Chelsea the cat, colour, 300x451"),
    "coffee": ("coffee", "a cup of coffee on a saucer, colour, 400x600"),
    "rocket": ("rocket", "a rocket on its launch pad, colour, 427x640"),
    "hubble": ("hubble_deep_field", "Hubble deep field galaxies, colour, 872x1000"),
    "retina": ("retina", "a human retina fundus photo, colour, 1411x1411"),
    "cells": ("immunohistochemistry", "stained tissue under a microscope, colour, 512x512"),
    "camera": ("camera", "the cameraman, grey, 512x512"),
    "coins": ("coins", "Greek coins, grey, 303x384"),
    "moon": ("moon", "the lunar surface, grey, 512x512"),
    "brick": ("brick", "brick wall texture, grey, 512x512"),
    "grass": ("grass", "grass texture, grey, 512x512"),
    "gravel": ("gravel", "gravel texture, grey, 512x512"),
    "clock": ("clock", "a wall clock with motion blur, grey, 300x400"),
}
COLOUR_PHOTOS = ("astronaut", "cat", "coffee", "rocket", "hubble", "retina", "cells")


def load_photo(
    name: str = "astronaut",
    size: int | tuple[int, int] | None = None,
    *,
    grey: bool = False,
    rgb: bool = True,
) -> torch.Tensor:
    """Load a bundled photo as a float tensor.

    Args:
        name: one of :data:`PHOTOS` (``"astronaut"``, ``"cat"``, ``"coffee"``, ``"camera"``, ...).
        size: resize to ``size`` x ``size`` (int, after a centre crop to a square) or to
            ``(height, width)`` (tuple, no crop). ``None`` keeps the original size.
        grey: return one channel (ITU-R BT.601 luma for colour photos).
        rgb: with ``grey=False``, give grey photos three equal channels, so every photo is (3, H, W).

    Returns:
        (C, H, W) float32 in [0, 1], C = 1 when ``grey`` else 3 (or 1 for a grey photo with ``rgb=False``).

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones) or a non-positive ``size``.
    """
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {sorted(PHOTOS)}")
    import skimage.data  # imported lazily: scikit-image takes a moment to import

    array = np.asarray(getattr(skimage.data, PHOTOS[name][0])())
    image = torch.from_numpy(np.ascontiguousarray(array)).float().div(255)
    image = image.permute(2, 0, 1) if image.dim() == 3 else image.unsqueeze(0)  # (H, W, C) -> (C, H, W)
    image = image[:3]
    if grey and image.shape[0] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        image = (image * weights).sum(0, keepdim=True)
    elif not grey and rgb and image.shape[0] == 1:
        image = image.expand(3, -1, -1).contiguous()
    if size is not None:
        image = resize(image, size)
    return image


def resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize a (C, H, W) image: an int makes a centre-cropped square, a tuple sets (height, width).

    Uses antialiased bilinear interpolation (``F.interpolate(..., antialias=True)``).

    Raises:
        ValueError: a size is not a positive int, or the image is not (C, H, W).
    """
    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W), got shape {tuple(image.shape)}")
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        _, h, w = image.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[:, top : top + side, left : left + side]
        size = (size, size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"size must be an int or (height, width) of positive ints, got {size}")
    out = F.interpolate(image[None], size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0, 1)


def photo_batch(names: Sequence[str] = COLOUR_PHOTOS[:4], size: int = 224) -> torch.Tensor:
    """Several photos as one batch.

    Args:
        names: photo names from :data:`PHOTOS`.
        size: each is centre-cropped to a square and resized to ``size`` x ``size``.

    Returns:
        (len(names), 3, size, size) float32 in [0, 1].
    """
    return torch.stack([load_photo(n, size) for n in names])


def to_hwc_uint8(image: torch.Tensor) -> np.ndarray:
    """Convert a (C, H, W) float tensor in [0, 1] to an (H, W, C) uint8 NumPy array (the layout PIL and SAM use).

    Raises:
        ValueError: the tensor is not (C, H, W) with C in {1, 3}.
    """
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    array = image.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return array


# Middlebury 2014 "Motorcycle" as scikit-image ships it (down-sampled x4); from ``skimage.data.stereo_motorcycle``'s docstring
MOTORCYCLE_CALIBRATION = {"focal": 994.978, "cx": 311.193, "cy": 254.877, "doffs": 31.086, "baseline_mm": 193.001}


def load_stereo(downscale: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
    """The rectified stereo pair bundled with scikit-image (Middlebury 2014 Motorcycle) with its true disparities.

    A scene point at column x of the left image is at column x - d of the right image, same row.

    Args:
        downscale: average-pool both images by this factor (1, 2, 4, ...); disparities and the calibration in pixels
            are divided by it.

    Returns:
        left (3, H, W) and right (3, H, W) float32 in [0, 1]; disparity (H, W) float32 pixels (NaN where unknown);
        the calibration ``{"focal", "cx", "cy", "doffs"}`` in pixels and ``"baseline_mm"``.

    Raises:
        ValueError: ``downscale`` < 1.
    """
    if downscale < 1:
        raise ValueError(f"downscale must be >= 1, got {downscale}")
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    lt = torch.from_numpy(np.ascontiguousarray(left)).float().div(255).permute(2, 0, 1)
    rt = torch.from_numpy(np.ascontiguousarray(right)).float().div(255).permute(2, 0, 1)
    d = torch.from_numpy(np.ascontiguousarray(disp)).float()
    d[~torch.isfinite(d)] = float("nan")
    if downscale > 1:
        lt, rt = (F.avg_pool2d(t[None], downscale)[0] for t in (lt, rt))
        d = d[downscale // 2 :: downscale, downscale // 2 :: downscale][: lt.shape[1], : lt.shape[2]] / downscale
    calibration = {k: (v / downscale if k != "baseline_mm" else v) for k, v in MOTORCYCLE_CALIBRATION.items()}
    return lt, rt, d, calibration
