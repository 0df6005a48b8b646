r"""Optical flow: how every pixel moved between two frames (lecture 00's task tour; seed 002, "Optical Flow").

Brightness constancy says a point keeps its intensity as it moves, :math:`I(x + u, y + v, t + 1) = I(x, y, t)`;
linearised, :math:`I_x u + I_y v + I_t = 0`: one equation for two unknowns per pixel (the *aperture problem*).
The two classical ways to add the missing equations:

* **Lucas-Kanade** (IJCAI 1981): assume the flow is constant in a window and solve the 2 x 2 least-squares system
  :math:`\begin{bmatrix}\sum I_x^2 & \sum I_xI_y\\ \sum I_xI_y & \sum I_y^2\end{bmatrix}\begin{bmatrix}u\\v\end{bmatrix}
  = -\begin{bmatrix}\sum I_xI_t\\ \sum I_yI_t\end{bmatrix}` at every pixel; iterate with warping and run
  coarse-to-fine over a pyramid for motions larger than a pixel (Bouguet 2001; scikit-image's ``optical_flow_ilk``,
  against which :func:`lucas_kanade` is tested).
* **Horn-Schunck** (Artificial Intelligence 1981): a global energy, brightness constancy plus
  :math:`\alpha^2 (|\nabla u|^2 + |\nabla v|^2)`, minimised by the Jacobi iteration of their eq. 12,
  :math:`u \leftarrow \bar u - I_x (I_x\bar u + I_y\bar v + I_t)/(\alpha^2 + I_x^2 + I_y^2)` (same for v): smooth
  flow everywhere, filled in where the image has no texture.

Flow fields are (2, H, W) float tensors, (dx, dy) in pixels from frame 1 to frame 2 at every pixel of frame 1
(dx along columns, dy along rows). Images are (H, W) grey floats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvkit.train.loop import StepOutput


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"need two grey images (H, W) of the same size, got {tuple(a.shape)} and {tuple(b.shape)}")
    return a.float(), b.float()


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warping: ``out(x) = image(x + flow(x))`` by bilinear interpolation (border values repeated).

    With ``image`` the second frame and the true flow, ``out`` is the first frame (where nothing was occluded).

    Args:
        image: (H, W) or (C, H, W). flow: (2, H, W) (dx, dy) pixels.

    Returns:
        the warped image, same shape as ``image``.
    """
    squeeze = image.dim() == 2
    img = image[None, None] if squeeze else image[None]
    h, w = flow.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=flow.dtype, device=flow.device),
        torch.arange(w, dtype=flow.dtype, device=flow.device),
        indexing="ij",
    )
    gx = (xs + flow[0]) / max(w - 1, 1) * 2 - 1  # grid_sample's [-1, 1] with align_corners=True
    gy = (ys + flow[1]) / max(h - 1, 1) * 2 - 1
    out = F.grid_sample(
        img.float(), torch.stack([gx, gy], dim=-1)[None], mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[0, 0] if squeeze else out[0]


def _gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (one-sided at the borders), as numpy.gradient."""
    gy, gx = torch.gradient(image)
    return gx, gy


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    return F.avg_pool2d(x[None, None], 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)[0, 0]


def _lk_level(
    ref: torch.Tensor, moving: torch.Tensor, flow: torch.Tensor, radius: int, iterations: int
) -> torch.Tensor:
    for _ in range(iterations):
        warped = warp(moving, flow)
        gx, gy = _gradients(warped)
        it = warped - ref  # temporal difference after the current flow
        # least squares around the current estimate: grad . (du) = -(I2(x + u) - I1(x)) linearised at u
        sxx, sxy, syy = _box(gx * gx, radius), _box(gx * gy, radius), _box(gy * gy, radius)
        sxt, syt = (
            _box(gx * (it - gx * flow[0] - gy * flow[1]), radius),
            _box(gy * (it - gx * flow[0] - gy * flow[1]), radius),
        )
        det = sxx * syy - sxy * sxy
        ok = det.abs() > 1e-9
        safe = torch.where(ok, det, torch.ones_like(det))
        u = torch.where(ok, (-syy * sxt + sxy * syt) / safe, flow[0])
        v = torch.where(ok, (sxy * sxt - sxx * syt) / safe, flow[1])
        flow = torch.stack([u, v])
    return flow


def lucas_kanade(
    frame1: torch.Tensor, frame2: torch.Tensor, radius: int = 7, iterations: int = 10, levels: int = 3
) -> torch.Tensor:
    """Iterative, coarse-to-fine Lucas-Kanade flow from ``frame1`` to ``frame2``.

    At each pyramid level (coarse first, the flow upsampled and doubled between levels) the second frame is warped
    by the current flow and the window least-squares system is solved again ``iterations`` times.

    Args:
        frame1, frame2: (H, W) grey images. radius: window half-size (a (2r + 1)^2 box).
        iterations: warps per level. levels: pyramid levels (each halves the size; 1: no pyramid).

    Returns:
        (2, H, W) float32 flow (dx, dy) in pixels.

    Raises:
        ValueError: images of different sizes or not 2-D; ``levels`` < 1.
    """
    a, b = _check_pair(frame1, frame2)
    if levels < 1 or radius < 1 or iterations < 1:
        raise ValueError(f"need levels, radius and iterations >= 1, got {levels}, {radius}, {iterations}")
    pyramid = [(a, b)]
    for _ in range(levels - 1):
        a2, b2 = pyramid[-1]
        if min(a2.shape) < 16:
            break
        pyramid.append((F.avg_pool2d(a2[None, None], 2)[0, 0], F.avg_pool2d(b2[None, None], 2)[0, 0]))
    flow = torch.zeros(2, *pyramid[-1][0].shape)
    for level, (ref, moving) in enumerate(reversed(pyramid)):
        if level > 0:
            flow = 2 * F.interpolate(flow[None], size=ref.shape, mode="bilinear", align_corners=False)[0]
        flow = _lk_level(ref, moving, flow, radius, iterations)
    return flow


def horn_schunck(frame1: torch.Tensor, frame2: torch.Tensor, alpha: float = 1.0, iterations: int = 200) -> torch.Tensor:
    """Horn-Schunck flow by the Jacobi iteration of their eq. 12 (single scale: for motions of about a pixel).

    Args:
        frame1, frame2: (H, W) grey images (intensities of order 1; ``alpha`` is in the same units).
        alpha: smoothness weight (larger: smoother flow). iterations: Jacobi sweeps.

    Returns:
        (2, H, W) float32 flow (dx, dy) in pixels.

    Raises:
        ValueError: images of different sizes or not 2-D; ``alpha`` <= 0.
    """
    a, b = _check_pair(frame1, frame2)
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    gx, gy = _gradients((a + b) / 2)
    it = b - a
    # Horn and Schunck's neighbourhood average (their eq. 11's weights: 1/6 edge neighbours, 1/12 corners)
    kernel = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]]).view(1, 1, 3, 3)
    u = torch.zeros_like(a)
    v = torch.zeros_like(a)
    denom = alpha**2 + gx**2 + gy**2
    for _ in range(iterations):
        ub = F.conv2d(F.pad(u[None, None], (1, 1, 1, 1), mode="replicate"), kernel)[0, 0]
        vb = F.conv2d(F.pad(v[None, None], (1, 1, 1, 1), mode="replicate"), kernel)[0, 0]
        t = (gx * ub + gy * vb + it) / denom
        u, v = ub - gx * t, vb - gy * t
    return torch.stack([u, v])


def endpoint_error(flow: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Mean end-point error :math:`\\lVert f - f^*\\rVert_2` in pixels (over ``mask`` when given).

    Args:
        flow, truth: (2, H, W) or (B, 2, H, W). mask: (H, W) or (B, H, W) bool, the pixels to score.

    Raises:
        ValueError: shapes differ, or an empty mask.
    """
    if flow.shape != truth.shape or flow.shape[-3] != 2:
        raise ValueError(
            f"flow and truth must both be (..., 2, H, W), got {tuple(flow.shape)} and {tuple(truth.shape)}"
        )
    err = (flow - truth).norm(dim=-3)
    if mask is not None:
        if not bool(mask.any()):
            raise ValueError("the mask selects no pixel")
        err = err[mask]
    return float(err.mean())


def flow_step(model: torch.nn.Module, batch, *, balanced: bool = True) -> StepOutput:
    """``fit`` step for a flow network: the end-point error against the true flow is the loss.

    With ``balanced`` (the default) the loss is the mean end-point error over moving pixels (true flow non-zero) plus
    the mean over still ones, so a background that covers most of the image cannot dominate: with the plain mean
    (``balanced=False``, FlowNet's loss, Dosovitskiy et al. 2015) a short run on moving shapes learns to predict no
    motion (lecture 00 measures both). A batch with only moving or only still pixels uses the mean it has.

    Args:
        model: maps ``pairs`` to a flow of the same size.
        batch: ``(pairs, truth)``: pairs (B, 6, H, W) float32, frame 1 and frame 2 stacked on channels; truth
            (B, 2, H, W) float32, (dx, dy) in pixels.
        balanced: weight moving and still pixels equally (default) or every pixel equally.

    Returns:
        a :class:`cvkit.train.StepOutput` with the loss and B.

    Raises:
        ValueError: ``truth`` is not (B, 2, H, W), or the model's output has another shape.
    """
    pairs, truth = batch
    if truth.dim() != 4 or truth.shape[1] != 2:
        raise ValueError(f"the true flow must be (B, 2, H, W), got {tuple(truth.shape)}")
    predicted = model(pairs)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"the model's flow is {tuple(predicted.shape)} but the true flow is {tuple(truth.shape)}: "
            "the network must return (B, 2, H, W) at the input's resolution"
        )
    err = (predicted - truth).norm(dim=1)  # (B, H, W) pixels
    if not balanced:
        return StepOutput(err.mean(), pairs.shape[0])
    still = truth.norm(dim=1) == 0
    parts = [err[m].mean() for m in (~still, still) if bool(m.any())]  # moving, then still
    return StepOutput(torch.stack(parts).sum(), pairs.shape[0])
