r"""Where convolution came from: simple and complex cells of the visual cortex (lecture 02; seed 003, "Hubel/Wiesel
architecture").

Hubel & Wiesel (J. Physiol. 1959, 1962) recorded single neurons of the cat's primary visual cortex while showing
bars of light. **Simple cells** fire for a bar of one orientation at one position in their small receptive field,
and are silent for the same bar rotated or moved; **complex cells** respond to the oriented bar anywhere in a
larger field: they pool simple cells of the same orientation over nearby positions.

The standard models of both, which this module computes:

* a simple cell is a linear filter followed by half-wave rectification; its receptive field is a **Gabor
  function** (Jones & Palmer, J. Neurophysiol. 1987, fitted to cat simple cells; Daugman 1985), a Gaussian
  envelope times a sinusoid: :math:`g(x, y) = \frac{1}{2\pi\sigma_x\sigma_y}
  \exp\!\big(-\tfrac12(x'^2/\sigma_x^2 + y'^2/\sigma_y^2)\big)\cos(2\pi f x' + \psi)` with
  :math:`x' = x\cos\theta + y\sin\theta`, :math:`y' = -x\sin\theta + y\cos\theta` (scikit-image's convention);
* a complex cell is the **energy model** (Adelson & Bergen, JOSA A 1985): the summed squares of two simple cells
  in quadrature (:math:`\psi = 0` and :math:`\psi = -\pi/2`), which no longer depends on the stimulus phase, and
  pooling over positions makes it tolerate shifts (Fukushima's C-cells, Riesenhuber & Poggio's MAX).

Every simple cell of one orientation applies the *same* weights at a different position: that is a convolution,
and a sheet of them is one feature map. Fukushima's Neocognitron (:mod:`cvkit.models.neocognitron`) stacks such
S-layers and pooling C-layers; LeCun's networks train the same structure by backpropagation.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number of pixels, got {size}")
    r = size // 2
    ys, xs = torch.meshgrid(
        torch.arange(-r, r + 1, dtype=torch.float64), torch.arange(-r, r + 1, dtype=torch.float64), indexing="ij"
    )
    return xs, ys


def gabor_kernel(
    size: int, frequency: float, theta: float, sigma: float, *, aspect: float = 1.0, phase: float = 0.0
) -> torch.Tensor:
    r"""The real part of scikit-image's ``gabor_kernel`` on a ``size`` x ``size`` grid centred on the middle pixel.

    Args:
        size: odd kernel size in pixels.
        frequency: cycles per pixel of the carrier (> 0, below 0.5).
        theta: orientation of the carrier's wave vector, radians (0: stripes vertical, varying along x).
        sigma: envelope standard deviation along :math:`x'`, pixels (> 0).
        aspect: :math:`\sigma_x/\sigma_y`; > 1 elongates the envelope along the stripes (a bar detector).
        phase: :math:`\psi`, radians (0: even, centre-on; :math:`-\pi/2`: odd, an edge detector).

    Returns:
        (size, size) float32; row ``i`` is :math:`y = i - size//2`, column ``j`` is :math:`x = j - size//2`.

    Raises:
        ValueError: an even or non-positive ``size``, or a non-positive ``frequency``/``sigma``/``aspect``.
    """
    if frequency <= 0 or sigma <= 0 or aspect <= 0:
        raise ValueError(f"frequency, sigma and aspect must be positive, got {frequency}, {sigma}, {aspect}")
    xs, ys = _grid(size)
    sx, sy = sigma, sigma / aspect
    rx = xs * math.cos(theta) + ys * math.sin(theta)
    ry = -xs * math.sin(theta) + ys * math.cos(theta)
    envelope = torch.exp(-0.5 * (rx**2 / sx**2 + ry**2 / sy**2)) / (2 * math.pi * sx * sy)
    return (envelope * torch.cos(2 * math.pi * frequency * rx + phase)).float()


def gabor_bank(
    size: int,
    frequency: float,
    sigma: float,
    orientations: int | Sequence[float] = 4,
    *,
    aspect: float = 1.0,
    phases: Sequence[float] = (0.0, -math.pi / 2),
    zero_mean: bool = True,
) -> torch.Tensor:
    """Gabor kernels for every orientation and phase, as conv weights.

    Args:
        size, frequency, sigma, aspect: as in :func:`gabor_kernel`.
        orientations: a count K (angles ``k * pi / K``) or the angles in radians.
        phases: the phases of each orientation (default: an even and an odd kernel, a quadrature pair).
        zero_mean: subtract each kernel's mean, so a uniform image gives 0 (a cell responds to contrast).

    Returns:
        (K * len(phases), 1, size, size) float32, ordered orientation-major (kernel ``k * len(phases) + p`` is
        orientation ``k``, phase ``p``).
    """
    angles = (
        [k * math.pi / orientations for k in range(orientations)]
        if isinstance(orientations, int)
        else list(orientations)
    )
    if not angles or not phases:
        raise ValueError("need at least one orientation and one phase")
    kernels = [gabor_kernel(size, frequency, a, sigma, aspect=aspect, phase=p) for a in angles for p in phases]
    bank = torch.stack(kernels)[:, None]  # (K * P, 1, size, size)
    if zero_mean:
        bank = bank - bank.mean(dim=(2, 3), keepdim=True)
    return bank


def grating(size: int, frequency: float, theta: float, phase: float = 0.0, contrast: float = 1.0) -> torch.Tensor:
    r"""A sinusoidal grating :math:`\tfrac12 + \tfrac c2\cos(2\pi f x' + \psi)`: the stimulus of tuning experiments.

    Returns:
        (size, size) float32 in [0, 1] (same grid and angle convention as :func:`gabor_kernel`).
    """
    xs, ys = _grid(size)
    rx = xs * math.cos(theta) + ys * math.sin(theta)
    return (0.5 + 0.5 * contrast * torch.cos(2 * math.pi * frequency * rx + phase)).float()


def light_bar(
    size: int, theta: float, width: float = 2.0, length: float | None = None, shift: float = 0.0
) -> torch.Tensor:
    r"""A bright bar on a dark field, Hubel & Wiesel's stimulus.

    Args:
        size: odd image size in pixels.
        theta: direction *across* the bar, radians (the bar lies along :math:`\theta + \pi/2`; the same convention
            as :func:`gabor_kernel`, so a kernel of angle ``theta`` prefers a bar of angle ``theta``).
        width: bar width in pixels. length: bar length in pixels (``None``: the whole image).
        shift: displacement of the bar across itself, pixels.

    Returns:
        (size, size) float32 in {0, 1}.
    """
    xs, ys = _grid(size)
    across = xs * math.cos(theta) + ys * math.sin(theta) - shift
    along = -xs * math.sin(theta) + ys * math.cos(theta)
    bar = across.abs() <= width / 2
    if length is not None:
        bar &= along.abs() <= length / 2
    return bar.float()


def simple_cells(images: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    r"""Simple-cell responses: :math:`\mathrm{ReLU}(\text{kernel} \star \text{image})` at every position ("same" padding).

    Args:
        images: (B, 1, H, W) or (H, W) float grey images.
        bank: (K, 1, k, k) kernels (e.g. :func:`gabor_bank`), k odd.

    Returns:
        (B, K, H, W) float32 (a batch dimension is added for an (H, W) input).

    Raises:
        ValueError: wrong shapes.
    """
    x = _as_batch(images)
    if bank.dim() != 4 or bank.shape[1] != 1 or bank.shape[-1] % 2 == 0:
        raise ValueError(f"bank must be (K, 1, k, k) with k odd, got {tuple(bank.shape)}")
    return F.relu(F.conv2d(x, bank.to(x), padding=bank.shape[-1] // 2))


def complex_cells(images: torch.Tensor, bank: torch.Tensor, pool: int = 1) -> torch.Tensor:
    r"""Complex-cell responses by the energy model, :math:`\sqrt{(\text{even}\star x)^2 + (\text{odd}\star x)^2}`,
    then max pooling over ``pool`` x ``pool`` positions.

    Args:
        images: (B, 1, H, W) or (H, W) float grey images.
        bank: (2K, 1, k, k) quadrature pairs, even then odd kernel per orientation (``gabor_bank``'s default order).
        pool: pooling window and stride (1: no pooling).

    Returns:
        (B, K, H // pool, W // pool) float32, one map per orientation.

    Raises:
        ValueError: an odd number of kernels, or ``pool`` < 1.
    """
    x = _as_batch(images)
    if bank.dim() != 4 or bank.shape[0] % 2 or bank.shape[1] != 1:
        raise ValueError(
            f"bank must be (2K, 1, k, k): an even and an odd kernel per orientation, got {tuple(bank.shape)}"
        )
    if pool < 1:
        raise ValueError(f"pool must be >= 1, got {pool}")
    linear = F.conv2d(x, bank.to(x), padding=bank.shape[-1] // 2)  # (B, 2K, H, W)
    b, _, h, w = linear.shape
    pairs = linear.view(b, -1, 2, h, w)  # (B, K, 2, H, W): even and odd per orientation
    energy = pairs.pow(2).sum(dim=2).sqrt()  # (B, K, H, W)
    return F.max_pool2d(energy, pool) if pool > 1 else energy


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    if images.dim() == 2:
        images = images[None, None]
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W) or (H, W) grey, got {tuple(images.shape)}")
    return images.float()
