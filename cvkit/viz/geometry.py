"""Pictures of motion and depth: optical flow as colour, disparity maps, 3-D point clouds (lecture 00's task tour)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import hsv_to_rgb


def flow_to_rgb(flow: torch.Tensor, max_magnitude: float | None = None) -> torch.Tensor:
    """Colour-code a flow field: hue = direction, brightness = speed (the usual optical-flow picture).

    Args:
        flow: (2, H, W) (dx, dy) pixels. max_magnitude: the speed drawn at full brightness (default: the largest).

    Returns:
        (H, W, 3) float in [0, 1] (white-free: zero motion is black).
    """
    if flow.dim() != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W), got {tuple(flow.shape)}")
    dx, dy = flow[0].float(), flow[1].float()
    mag = torch.sqrt(dx**2 + dy**2)
    top = max_magnitude or max(float(mag.max()), 1e-6)
    hue = (torch.atan2(dy, dx) + math.pi) / (2 * math.pi)
    hsv = torch.stack([hue, torch.ones_like(hue), (mag / top).clamp(0, 1)], dim=-1)
    return torch.from_numpy(hsv_to_rgb(hsv.numpy())).float()


def plot_point_cloud(
    points: torch.Tensor,
    colours: torch.Tensor | None = None,
    ax=None,
    max_points: int = 20000,
    title: str | None = None,
):
    """A 3-D scatter of a point cloud (X right, Y down, Z forward), seen from slightly above the camera.

    Args:
        points: (N, 3). colours: (N, 3) in [0, 1] or ``None``. ax: a 3-D axis (default: a new figure).
        max_points: random subsample drawn at most (seeded).

    Returns:
        the axis.
    """
    if ax is None:
        ax = plt.figure(figsize=(5, 4)).add_subplot(projection="3d")
    idx = torch.randperm(len(points), generator=torch.Generator().manual_seed(0))[:max_points]
    p = points[idx]
    c = colours[idx].clamp(0, 1).numpy() if colours is not None else None
    ax.scatter(p[:, 0].numpy(), p[:, 2].numpy(), -p[:, 1].numpy(), c=c, s=0.5, depthshade=False)
    ax.set_xlabel("X")
    ax.set_ylabel("Z (depth)")
    ax.set_zlabel("-Y")
    ax.view_init(elev=20, azim=-70)
    if title:
        ax.set_title(title)
    return ax
