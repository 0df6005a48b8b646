r"""Cropping features of regions: RoI pooling (Fast R-CNN) and RoIAlign (Mask R-CNN).

R-CNN warps every proposal out of the *image* and runs a CNN on each crop: thousands of
forward passes. Fast R-CNN (Girshick, ICCV 2015, Sec. 2.1) runs the CNN once and crops the
*feature map* instead: **RoI max pooling** splits a region of interest into an
``output_size`` grid of bins and max-pools each bin, so every region gives a fixed-size
feature (e.g. 7 x 7) for the fully connected head. It rounds the region and the bin edges
to whole feature cells, which misaligns the features with the box by up to half a cell
(8 pixels at stride 16).

**RoIAlign** (He et al., "Mask R-CNN", ICCV 2017, Sec. 3) removes every rounding: it
samples ``sampling_ratio`` x ``sampling_ratio`` regularly spaced points in each bin with
bilinear interpolation and averages them. With ``aligned=True`` it also shifts the box by
half a pixel so that pixel centres (not corners) line up, which torchvision recommends.

Both functions follow ``torchvision.ops.roi_pool`` / ``roi_align`` to the last rounding
rule (they are tested against them); they loop over regions, which is clear but slow:
inside models use the torchvision ops.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from cvkit.detection.boxes import check_boxes


def rois_from_boxes(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack per-image boxes into the (K, 5) RoI format ``(batch_index, x1, y1, x2, y2)``.

    Args:
        boxes: one (L_i, 4) float xyxy tensor per image.

    Returns:
        (sum L_i, 5) float.
    """
    rows = []
    for i, b in enumerate(boxes):
        check_boxes(b, f"boxes[{i}]", ordered=False)
        rows.append(torch.cat([torch.full_like(b[:, :1], i), b], dim=1))  # (L_i, 5)
    return torch.cat(rows) if rows else torch.zeros(0, 5)


def _prepare(features: torch.Tensor, rois, output_size) -> tuple[torch.Tensor, int, int]:
    if not isinstance(features, torch.Tensor) or features.dim() != 4:
        raise ValueError(f"features must be (N, C, H, W), got {getattr(features, 'shape', type(features).__name__)}")
    if isinstance(rois, (list, tuple)):
        rois = rois_from_boxes(rois).to(features)
    if not isinstance(rois, torch.Tensor) or rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(
            f"rois must be (K, 5) rows (batch_index, x1, y1, x2, y2) or a list of (L, 4) boxes per image; got {getattr(rois, 'shape', type(rois).__name__)}"
        )
    if rois.numel() and (int(rois[:, 0].min()) < 0 or int(rois[:, 0].max()) >= features.shape[0]):
        raise ValueError(f"roi batch indices must be in [0, {features.shape[0]}), got {rois[:, 0].unique().tolist()}")
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if ph <= 0 or pw <= 0:
        raise ValueError(f"output_size must be positive, got {output_size}")
    return rois, int(ph), int(pw)


def _round_half_away(x: float) -> int:
    """C's ``round``: halves go away from zero (``torch.round`` sends them to the even neighbour)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def roi_pool(
    features: torch.Tensor, rois, output_size: int | Sequence[int], spatial_scale: float = 1.0
) -> torch.Tensor:
    """RoI max pooling (Fast R-CNN, Sec. 2.1).

    Args:
        features: (N, C, H, W) float feature maps.
        rois: (K, 5) float rows ``(batch_index, x1, y1, x2, y2)`` in image pixels, or a list of
            N per-image (L_i, 4) xyxy tensors.
        output_size: ``(out_h, out_w)`` bins, or one int for both.
        spatial_scale: feature cells per image pixel (1 / stride, e.g. 1/16).

    Returns:
        (K, C, out_h, out_w) float; an empty bin gives 0. Equals ``torchvision.ops.roi_pool``.

    Raises:
        ValueError: malformed features, rois or output size.
    """
    rois, ph, pw = _prepare(features, rois, output_size)
    _, c, height, width = features.shape
    out = features.new_zeros(rois.shape[0], c, ph, pw)
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        # the region in feature cells, rounded to whole cells (the misalignment RoIAlign removes)
        x_start, y_start = _round_half_away(x1 * spatial_scale), _round_half_away(y1 * spatial_scale)
        x_end, y_end = _round_half_away(x2 * spatial_scale), _round_half_away(y2 * spatial_scale)
        roi_w, roi_h = max(x_end - x_start + 1, 1), max(y_end - y_start + 1, 1)
        bin_w, bin_h = roi_w / pw, roi_h / ph
        fmap = features[int(b)]  # (C, H, W)
        for i in range(ph):
            h0 = min(max(math.floor(i * bin_h) + y_start, 0), height)
            h1 = min(max(math.ceil((i + 1) * bin_h) + y_start, 0), height)
            for j in range(pw):
                w0 = min(max(math.floor(j * bin_w) + x_start, 0), width)
                w1 = min(max(math.ceil((j + 1) * bin_w) + x_start, 0), width)
                if h1 > h0 and w1 > w0:
                    out[k, :, i, j] = fmap[:, h0:h1, w0:w1].amax(dim=(1, 2))
    return out


def bilinear_sample(fmap: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of a feature map at real-valued points, with RoIAlign's border rules.

    A point more than one cell outside the map gives 0; a point within one cell of the border
    is clamped onto it (so the border value is repeated, not blended with zeros).

    Args:
        fmap: (C, H, W) float.
        y, x: (P,) float positions in cell units: ``y = i`` reads row i exactly, ``y = i + 0.5``
            is halfway between rows i and i + 1.

    Returns:
        (C, P) float.
    """
    _, height, width = fmap.shape
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)  # (P,)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.floor().long().clamp(max=height - 1)
    x_low = x.floor().long().clamp(max=width - 1)
    y = torch.where(y_low >= height - 1, y_low.to(y), y)  # at the last row: no neighbour below
    x = torch.where(x_low >= width - 1, x_low.to(x), x)
    y_high = (y_low + 1).clamp(max=height - 1)
    x_high = (x_low + 1).clamp(max=width - 1)
    ly, lx = y - y_low, x - x_low  # (P,) fractional parts
    hy, hx = 1 - ly, 1 - lx
    value = (
        hy * hx * fmap[:, y_low, x_low]
        + hy * lx * fmap[:, y_low, x_high]
        + ly * hx * fmap[:, y_high, x_low]
        + ly * lx * fmap[:, y_high, x_high]
    )  # (C, P)
    return torch.where(outside, torch.zeros_like(value), value)


def roi_align(
    features: torch.Tensor,
    rois,
    output_size: int | Sequence[int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoIAlign (Mask R-CNN, Sec. 3): average of bilinearly sampled points in every bin, no rounding.

    Args:
        features: (N, C, H, W) float feature maps.
        rois: (K, 5) float rows ``(batch_index, x1, y1, x2, y2)`` in image pixels, or a list of
            N per-image (L_i, 4) xyxy tensors.
        output_size: ``(out_h, out_w)`` bins, or one int.
        spatial_scale: feature cells per image pixel (1 / stride).
        sampling_ratio: sample points per bin along each axis; ``<= 0`` uses
            ``ceil(roi_size / output_size)`` per region (torchvision's adaptive default).
        aligned: shift boxes by -0.5 cell so pixel centres align (recommended; False reproduces
            the original Mask R-CNN, which also forces regions to be at least one cell wide).

    Returns:
        (K, C, out_h, out_w) float. Equals ``torchvision.ops.roi_align`` with the same arguments.

    Raises:
        ValueError: malformed features, rois or output size.
    """
    rois, ph, pw = _prepare(features, rois, output_size)
    out = features.new_zeros(rois.shape[0], features.shape[1], ph, pw)
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
        x_start, y_start = x1 * spatial_scale - offset, y1 * spatial_scale - offset
        roi_w, roi_h = x2 * spatial_scale - offset - x_start, y2 * spatial_scale - offset - y_start
        if not aligned:  # the original RoIAlign: at least one cell, so tiny boxes still sample something
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_w, bin_h = roi_w / pw, roi_h / ph
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ph)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / pw)
        if grid_h == 0 or grid_w == 0:  # an empty region (aligned, zero size): no samples, output 0
            continue
        count = grid_h * grid_w
        # sample points: (ph * grid_h) rows by (pw * grid_w) columns, evenly inside each bin
        iy = torch.arange(ph * grid_h, dtype=features.dtype, device=features.device)
        ix = torch.arange(pw * grid_w, dtype=features.dtype, device=features.device)
        ys = y_start + (iy // grid_h) * bin_h + ((iy % grid_h) + 0.5) * bin_h / grid_h  # (ph * grid_h,)
        xs = x_start + (ix // grid_w) * bin_w + ((ix % grid_w) + 0.5) * bin_w / grid_w  # (pw * grid_w,)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (ph * gh, pw * gw)
        values = bilinear_sample(features[int(b)], yy.reshape(-1), xx.reshape(-1))  # (C, ph*gh * pw*gw)
        values = values.reshape(-1, ph, grid_h, pw, grid_w)  # (C, ph, gh, pw, gw)
        out[k] = values.sum(dim=(2, 4)) / count
    return out
