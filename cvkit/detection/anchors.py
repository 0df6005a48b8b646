r"""Anchor boxes: K reference boxes of several sizes and aspect ratios at every feature-map cell.

Faster R-CNN's region proposal network (Ren et al., NeurIPS 2015, Sec. 3.1.1) imagines
K = len(sizes) x len(aspect_ratios) boxes centred on every cell of a feature map of stride
s; for each it predicts an objectness score and a correction (dx, dy, dw, dh) (see
:mod:`cvkit.detection.box_coder`). An anchor of size :math:`S` and aspect ratio
:math:`r = h / w` has

.. math::  w = S / \sqrt{r}, \qquad h = S \sqrt{r}

so its area stays :math:`S^2`. The layout follows ``torchvision.models.detection.AnchorGenerator``
exactly (same order, same rounding), so the anchors here are the ones torchvision's RPN uses:
cell (i, j) has its anchors centred at ``(j * stride + offset, i * stride + offset)`` with
``offset = 0`` as in torchvision, and the result is ordered cell by cell (row-major), the
K anchors of a cell together, aspect ratio major and size minor.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _check_positive(values: Sequence[float], name: str) -> torch.Tensor:
    t = torch.as_tensor(list(values), dtype=torch.float32)
    if t.dim() != 1 or t.numel() == 0 or bool((t <= 0).any()):
        raise ValueError(f"{name} must be a non-empty sequence of positive numbers, got {list(values)}")
    return t


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], *, dtype=None, device=None) -> torch.Tensor:
    """The K zero-centred anchors of one cell.

    Args:
        sizes: anchor sizes S in pixels (square root of the area), e.g. ``(16, 32)``.
        aspect_ratios: ratios r = height / width, e.g. ``(0.5, 1.0, 2.0)``.
        dtype, device: of the result (default float32 on the CPU).

    Returns:
        (K, 4) float, xyxy pixels relative to the cell centre, K = len(aspect_ratios) * len(sizes),
        ordered ratio-major: all sizes at the first ratio, then the next ratio. Coordinates are
        rounded to whole pixels, as torchvision does.

    Raises:
        ValueError: empty or non-positive sizes or ratios.
    """
    scales = _check_positive(sizes, "sizes")
    ratios = _check_positive(aspect_ratios, "aspect_ratios")
    h_ratios = torch.sqrt(ratios)  # h = S * sqrt(r)
    w_ratios = 1 / h_ratios  # w = S / sqrt(r)
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)  # (R * S,) ratio-major
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    anchors = torch.stack([-ws, -hs, ws, hs], dim=1) / 2  # (K, 4) centred on (0, 0)
    return anchors.round().to(dtype=dtype or torch.float32, device=device)


def grid_anchors(
    feature_size: Sequence[int],
    stride: int | Sequence[int],
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    offset: float = 0.0,
    *,
    dtype=None,
    device=None,
) -> torch.Tensor:
    """All anchors of a feature map: K per cell, centred on the cells.

    Args:
        feature_size: ``(H_f, W_f)`` cells of the feature map.
        stride: pixels between neighbouring cells, an int or ``(stride_y, stride_x)``
            (torchvision uses ``image_size // feature_size``).
        sizes, aspect_ratios: as in :func:`cell_anchors`.
        offset: where in its cell an anchor is centred, in pixels from the cell's top-left
            corner; 0 reproduces torchvision, ``stride / 2`` centres anchors in their cells.
        dtype, device: of the result.

    Returns:
        (H_f * W_f * K, 4) float, xyxy pixels; anchor ``(i * W_f + j) * K + k`` is the k-th
        anchor of cell (i, j).

    Raises:
        ValueError: non-positive feature size or stride, bad sizes or ratios.
    """
    if len(feature_size) != 2 or min(feature_size) <= 0:
        raise ValueError(f"feature_size must be (H, W) with positive entries, got {tuple(feature_size)}")
    sy, sx = (stride, stride) if isinstance(stride, (int, float)) else tuple(stride)
    if sy <= 0 or sx <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    base = cell_anchors(sizes, aspect_ratios, dtype=dtype, device=device)  # (K, 4)
    h, w = int(feature_size[0]), int(feature_size[1])
    ys = torch.arange(h, dtype=base.dtype, device=base.device) * sy + offset  # (H_f,) cell centres
    xs = torch.arange(w, dtype=base.dtype, device=base.device) * sx + offset  # (W_f,)
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")  # (H_f, W_f) each
    shifts = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)  # (H_f * W_f, 1, 4)
    return (shifts + base[None]).reshape(-1, 4)  # (H_f * W_f * K, 4)


def anchors_for_image(
    image_size: Sequence[int],
    feature_size: Sequence[int],
    sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    *,
    dtype=None,
    device=None,
) -> torch.Tensor:
    """Anchors of one feature map of an image, with torchvision's stride ``image_size // feature_size``.

    Args:
        image_size: ``(H, W)`` of the (padded) input image in pixels.
        feature_size: ``(H_f, W_f)`` of the feature map.
        sizes, aspect_ratios: as in :func:`cell_anchors`.

    Returns:
        (H_f * W_f * K, 4) float, xyxy pixels; the same tensor
        ``torchvision.models.detection.AnchorGenerator((sizes,), (aspect_ratios,))`` produces
        for this image and feature map.

    Raises:
        ValueError: the feature map is larger than the image, or as :func:`grid_anchors`.
    """
    if len(image_size) != 2 or len(feature_size) != 2 or any(f > i for f, i in zip(feature_size, image_size)):
        raise ValueError(
            f"need (H, W) sizes with the feature map no larger than the image; got image {tuple(image_size)}, features {tuple(feature_size)}"
        )
    stride = (image_size[0] // feature_size[0], image_size[1] // feature_size[1])
    return grid_anchors(feature_size, stride, sizes, aspect_ratios, dtype=dtype, device=device)
