r"""Depth from two views: stereo block matching, disparity to depth, depth to a point cloud (lecture 00's task tour;
seed 002, "3D computer vision").

In a rectified pair a scene point seen at column x in the left image appears at x - d in the right image, on the
same row. The **disparity** d shrinks with distance: :math:`Z = f B / (d + d_{offs})` for focal length f (pixels),
baseline B and the principal points' difference :math:`d_{offs}` (Middlebury's convention). **Block matching** finds
d at each left pixel by comparing a window around it with windows along the same row of the right image and
keeping the best (sum of absolute differences, winner-take-all; Scharstein & Szeliski, IJCV 2002, the taxonomy's
simplest local method). Back-projecting every pixel with its depth, :math:`X = (x - c_x) Z / f`,
:math:`Y = (y - c_y) Z / f`, gives a 3-D point cloud.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def block_matching(left: torch.Tensor, right: torch.Tensor, max_disparity: int = 64, radius: int = 3) -> torch.Tensor:
    """Winner-take-all disparity of every left pixel, from the sum of absolute differences over a window.

    Args:
        left, right: (H, W) grey or (C, H, W) colour rectified images, same size.
        max_disparity: candidates 0 .. max_disparity - 1 (pixels).
        radius: window half-size ((2r + 1)^2 pixels).

    Returns:
        (H, W) float32 disparities in pixels; columns x < d cannot be matched at d and take the best valid candidate.

    Raises:
        ValueError: images of different shapes, or ``max_disparity`` < 1.
    """
    if left.shape != right.shape or left.dim() not in (2, 3):
        raise ValueError(
            f"need two images of the same shape (H, W) or (C, H, W), got {tuple(left.shape)} and {tuple(right.shape)}"
        )
    if max_disparity < 1 or radius < 0:
        raise ValueError(f"need max_disparity >= 1 and radius >= 0, got {max_disparity}, {radius}")
    lf = (left if left.dim() == 3 else left[None]).float()
    rf = (right if right.dim() == 3 else right[None]).float()
    h, w = lf.shape[-2:]
    costs = torch.full((max_disparity, h, w), float("inf"))
    for d in range(max_disparity):
        if d >= w:
            break
        diff = (lf[:, :, d:] - rf[:, :, : w - d]).abs().sum(0)  # (H, W - d): left x against right x - d
        sad = F.avg_pool2d(diff[None, None], 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)[0, 0]
        costs[d, :, d:] = sad
    return costs.argmin(dim=0).float()


def disparity_error(disparity: torch.Tensor, truth: torch.Tensor, threshold: float = 2.0) -> dict[str, float]:
    """Middlebury's scores on the pixels with a finite ground truth: mean absolute error and the bad-pixel rate.

    Returns:
        ``{"mae": pixels, "bad": fraction of pixels off by more than threshold, "valid": fraction scored}``.
    """
    valid = torch.isfinite(truth)
    err = (disparity - truth)[valid].abs()
    return {
        "mae": float(err.mean()),
        "bad": float((err > threshold).float().mean()),
        "valid": float(valid.float().mean()),
    }


def depth_from_disparity(disparity: torch.Tensor, focal: float, baseline: float, doffs: float = 0.0) -> torch.Tensor:
    """:math:`Z = f B / (d + d_{offs})`, in the units of ``baseline`` (infinite where d + doffs <= 0).

    Args:
        disparity: (H, W) pixels. focal: pixels. baseline: e.g. millimetres. doffs: principal points' difference, pixels.
    """
    d = disparity.float() + doffs
    return torch.where(d > 0, focal * baseline / d.clamp_min(1e-9), torch.full_like(d, float("inf")))


def point_cloud(
    depth: torch.Tensor, focal: float, cx: float, cy: float, colours: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Back-project every pixel with a finite depth: :math:`X = (x - c_x)Z/f`, :math:`Y = (y - c_y)Z/f`.

    Args:
        depth: (H, W). focal: pixels. cx, cy: principal point, pixels. colours: (3, H, W) to carry along.

    Returns:
        points (N, 3) float (X right, Y down, Z forward; units of depth) and their colours (N, 3) (or ``None``).
    """
    h, w = depth.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    keep = torch.isfinite(depth)
    z = depth[keep]
    points = torch.stack([(xs[keep] - cx) * z / focal, (ys[keep] - cy) * z / focal, z], dim=1)
    return points, (colours[:, keep].T if colours is not None else None)
