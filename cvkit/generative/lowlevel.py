r"""Low-level vision: corrupt a photo, then restore it (denoising, super-resolution, inpainting).

Each task is a *degradation* :math:`y = D(x)` and a network trained to invert it on patches of real
photos (:class:`cvkit.models.restoration.RestorationNet`), compared with a classical baseline and
scored by PSNR, :math:`10\log_{10}(\text{range}^2/\text{MSE})` in dB:

* **denoise**: :math:`y = x + \sigma\epsilon` (additive white Gaussian noise); baseline: Gaussian blur.
* **super_resolution**: downsample by ``factor`` (antialiased), then upsample back with bicubic
  interpolation, as SRCNN does (Dong et al. 2014); baseline: that bicubic image itself.
* **inpaint**: zero out random rectangles; the network also sees the hole mask; baseline: fill each
  hole by repeated local averaging (harmonic inpainting).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

Task = Literal["denoise", "super_resolution", "inpaint"]
RESTORATION_TASKS = ("denoise", "super_resolution", "inpaint")


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + sigma * N(0, 1)`` (not clamped, like the AWGN benchmarks). x: (B, C, H, W) in [0, 1]; sigma: std in pixel units of [0, 1]."""
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def down_up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Antialiased bilinear downsampling by ``factor``, then bicubic upsampling to the original size.

    Args:
        x: (B, C, H, W) in [0, 1]; factor: integer scale (2, 3, 4).

    Returns:
        (B, C, H, W) in [0, 1]: what a bicubic super-resolver would give.

    Raises:
        ValueError: ``factor < 2`` or H, W not divisible by it.
    """
    h, w = x.shape[-2:]
    if factor < 2 or h % factor or w % factor:
        raise ValueError(f"factor must be >= 2 and divide the image size {h}x{w}, got {factor}")
    small = F.interpolate(x, size=(h // factor, w // factor), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def random_holes(
    shape: tuple[int, int, int, int],
    holes: int = 4,
    max_fraction: float = 0.25,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Masks of random rectangles: (B, 1, H, W) float, 1 where pixels are missing.

    Args:
        shape: (B, C, H, W) of the images. holes: rectangles per image.
        max_fraction: largest rectangle side as a fraction of the image side.
    """
    b, _, h, w = shape
    mask = torch.zeros(b, 1, h, w, device=device)
    hi_h, hi_w = max(2, int(h * max_fraction)), max(2, int(w * max_fraction))
    sizes_h = torch.randint(1, hi_h + 1, (b, holes), generator=generator)
    sizes_w = torch.randint(1, hi_w + 1, (b, holes), generator=generator)
    tops = (torch.rand(b, holes, generator=generator) * (h - sizes_h + 1)).long()
    lefts = (torch.rand(b, holes, generator=generator) * (w - sizes_w + 1)).long()
    for i in range(b):
        for k in range(holes):
            top, left = int(tops[i, k]), int(lefts[i, k])
            mask[i, 0, top : top + int(sizes_h[i, k]), left : left + int(sizes_w[i, k])] = 1
    return mask


def degrade(
    x: torch.Tensor,
    task: Task,
    *,
    sigma: float = 0.1,
    factor: int = 2,
    holes: int = 4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The network input for ``task``, built from clean images.

    Args:
        x: (B, C, H, W) clean images in [0, 1].
        task: ``"denoise"``, ``"super_resolution"`` or ``"inpaint"``.
        sigma: noise std (denoise). factor: scale (super-resolution). holes: rectangles per image (inpaint).

    Returns:
        (B, C, H, W) for denoise and super-resolution; (B, C + 1, H, W) for inpaint (image with holes
        set to 0, then the mask channel).

    Raises:
        ValueError: unknown ``task`` (choose one of ``RESTORATION_TASKS``).
    """
    if task == "denoise":
        return add_noise(x, sigma, generator)
    if task == "super_resolution":
        return down_up(x, factor)
    if task == "inpaint":
        mask = random_holes(tuple(x.shape), holes, generator=generator, device=x.device)
        return torch.cat([x * (1 - mask), mask], dim=1)
    raise ValueError(f"unknown task {task!r}; choose one of {RESTORATION_TASKS}")


def classical_baseline(y: torch.Tensor, task: Task, *, blur_sigma: float = 1.0, iterations: int = 200) -> torch.Tensor:
    """The non-learned answer to each task, for comparison.

    Args:
        y: the degraded input from :func:`degrade`.
        task: as in :func:`degrade`.
        blur_sigma: Gaussian blur std in pixels (denoise).
        iterations: averaging sweeps that diffuse colours into the holes (inpaint).

    Returns:
        (B, C, H, W) restored images in [0, 1].

    Raises:
        ValueError: unknown task.
    """
    if task == "denoise":
        from torchvision.transforms.functional import gaussian_blur

        k = 2 * int(3 * blur_sigma) + 1
        return gaussian_blur(y, [k, k], [blur_sigma, blur_sigma]).clamp(0, 1)
    if task == "super_resolution":
        return y.clamp(0, 1)
    if task == "inpaint":
        image, mask = y[:, :-1], y[:, -1:]
        kernel = torch.full((1, 1, 3, 3), 1 / 9, device=y.device)
        out = image.clone()
        c = image.shape[1]
        for _ in range(iterations):  # Jacobi iterations of Laplace's equation inside the holes
            smooth = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), kernel.expand(c, 1, 3, 3), groups=c)
            out = torch.where(mask.bool().expand_as(out), smooth, image)
        return out.clamp(0, 1)
    raise ValueError(f"unknown task {task!r}; choose one of {RESTORATION_TASKS}")


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, ``10 * log10(data_range**2 / MSE)`` in dB.

    Args:
        prediction, target: (B, C, H, W) in [0, data_range] (prediction is clamped to it).

    Returns:
        (B,) float: higher is better; +inf for a perfect match.

    Raises:
        ValueError: shapes differ.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must match")
    mse = (prediction.clamp(0, data_range) - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def random_patches(images: torch.Tensor, n: int, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop ``n`` random ``size`` x ``size`` patches from a batch of images (with random horizontal flips).

    Args:
        images: (N, C, H, W) with H, W >= size.

    Returns:
        (n, C, size, size).

    Raises:
        ValueError: patches larger than the images.
    """
    num, _, h, w = images.shape
    if size > min(h, w):
        raise ValueError(f"patch size {size} exceeds the image size {h}x{w}")
    which = torch.randint(0, num, (n,), generator=generator)
    tops = torch.randint(0, h - size + 1, (n,), generator=generator)
    lefts = torch.randint(0, w - size + 1, (n,), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    patches = [
        images[i, :, top : top + size, left : left + size]
        for i, top, left in zip(which.tolist(), tops.tolist(), lefts.tolist())
    ]
    out = torch.stack(patches)
    return torch.where(flips.view(-1, 1, 1, 1).to(out.device), out.flip(-1), out)  # flips (n, 1, 1, 1) broadcast


def restoration_step(task: Task, **degrade_kwargs):
    """A training step for :func:`cvkit.train.fit`: degrade the clean batch, restore, MSE to the clean images.

    Args:
        task: as in :func:`degrade`; ``degrade_kwargs`` are passed on (``sigma``, ``factor``, ``holes``).

    Returns:
        ``step(model, (clean (B, C, H, W) in [0, 1], anything)) -> StepOutput``.

    Raises:
        ValueError: unknown task.
    """
    from cvkit.train import StepOutput

    if task not in RESTORATION_TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {RESTORATION_TASKS}")

    def step(model: nn.Module, batch) -> StepOutput:
        clean = batch[0]
        return StepOutput(F.mse_loss(model(degrade(clean, task, **degrade_kwargs)), clean), clean.shape[0])

    return step
