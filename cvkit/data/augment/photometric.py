r"""Photometric augmentations, batched on the device: colour jitter, colour drop, noise, blur, Sobel filtering.

SimCLR's figure 4 (Chen et al., ICML 2020) names (d) colour drop, (e) colour jitter, (h) Gaussian noise,
(i) Gaussian blur and (j) Sobel filtering; the recipe that composes them is :func:`cvkit.ssl.simclr_augmentation`.
Every transform acts on a whole (B, C, H, W) float batch in [0, 1] where it lives (GPU or CPU), draws one set
of random parameters per image from an explicit ``torch.Generator`` (on the images' device), and returns a
batch of the same shape.

Colour operations follow torchvision's definitions (``adjust_brightness``, ``_contrast``,
``_saturation``, ``_hue``, ``rgb_to_grayscale``, ``gaussian_blur``) and are tested against them.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from cvkit.data.augment.base import BatchTransform, _bernoulli, _check_probability, _uniform, check_image_batch

# ITU-R BT.601 luma weights, with the rounding torchvision's rgb_to_grayscale uses
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma of each image, (B, 1, H, W); a one-channel batch is returned unchanged.

    Args:
        images: (B, 3, H, W) or (B, 1, H, W) float in [0, 1].

    Raises:
        ValueError: not a (B, C, H, W) batch with C in {1, 3}.
    """
    check_image_batch(images)
    c = images.shape[1]
    if c == 1:
        return images
    if c != 3:
        raise ValueError(f"grayscale needs 1 or 3 channels, got {c}")
    w = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * w).sum(dim=1, keepdim=True)  # (B, 1, H, W)


# (d) colour drop, (e) colour jitter
class RandomGrayscale(BatchTransform):
    """Colour drop (SimCLR's (d)): replace an image by its luma in all channels, with probability ``p``.

    A one-channel batch is returned unchanged.

    Raises:
        ValueError: ``p`` outside [0, 1].
    """

    def __init__(self, p: float = 0.2) -> None:
        _check_probability(p)
        self.p = p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        if images.shape[1] == 1:
            return images
        drop = _bernoulli(images.shape[0], self.p, generator, images.device)  # (B,)
        grey = grayscale(images).expand_as(images)
        return torch.where(drop[:, None, None, None], grey, images)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``clamp(factor * x, 0, 1)`` per image; ``factor`` is (B,) (torchvision's ``adjust_brightness``)."""
    return (images * factor.view(-1, 1, 1, 1)).clamp(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its luma: ``factor * x + (1 - factor) * mean`` (torchvision's ``adjust_contrast``)."""
    mean = grayscale(images).mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    f = factor.view(-1, 1, 1, 1)
    return (f * images + (1 - f) * mean).clamp(0, 1)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with its own greyscale version (torchvision's ``adjust_saturation``); no-op on one channel."""
    if images.shape[1] == 1:
        return images
    f = factor.view(-1, 1, 1, 1)
    return (f * images + (1 - f) * grayscale(images)).clamp(0, 1)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] to HSV, every channel in [0, 1] (hue in turns)."""
    r, g, b = images.unbind(1)  # each (B, H, W)
    maxc, _ = images.max(dim=1)
    minc, _ = images.min(dim=1)
    delta = maxc - minc
    v = maxc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, v], dim=1)  # (B, 3, H, W)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hsv`: (B, 3, H, W) HSV in [0, 1] to RGB in [0, 1]."""
    h, s, v = hsv.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # the six sectors of the hue circle, (R, G, B) for each
    table = torch.stack(
        [
            torch.stack([v, t, p], 1),
            torch.stack([q, v, p], 1),
            torch.stack([p, v, t], 1),
            torch.stack([p, q, v], 1),
            torch.stack([t, p, v], 1),
            torch.stack([v, p, q], 1),
        ],
        dim=0,
    )  # (6, B, 3, H, W)
    return table.gather(0, i[None, :, None].expand(1, -1, 3, -1, -1))[0]  # (B, 3, H, W)


def adjust_hue(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Rotate each image's hue by ``factor`` turns, in [-0.5, 0.5] (torchvision's ``adjust_hue``); no-op on one channel."""
    if images.shape[1] == 1:
        return images
    hsv = rgb_to_hsv(images)
    h = (hsv[:, 0] + factor.view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], dim=1))


class ColorJitter(BatchTransform):
    """Random brightness, contrast, saturation and hue (SimCLR's (e)), with probability ``p`` per image.

    Factors are drawn per image: brightness, contrast and saturation from
    ``U(max(0, 1 - s), 1 + s)``, hue from ``U(-h, h)``, as torchvision's ``ColorJitter``.
    torchvision also shuffles the four operations per image; here one random order is
    drawn per batch (a per-image order would cost four passes per permutation).

    Args:
        brightness, contrast, saturation: strengths s >= 0 (0 disables the operation).
        hue: strength h in [0, 0.5].
        p: probability of jittering each image (SimCLR: 0.8).

    Raises:
        ValueError: a negative strength, ``hue`` above 0.5, or ``p`` outside [0, 1].
    """

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1, p: float = 0.8
    ) -> None:
        for name, s in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if s < 0:
                raise ValueError(f"{name} must be >= 0, got {s}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        _check_probability(p)
        self.brightness, self.contrast, self.saturation, self.hue, self.p = brightness, contrast, saturation, hue, p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        b, dev = images.shape[0], images.device
        ops = []
        for fn, s in (
            (adjust_brightness, self.brightness),
            (adjust_contrast, self.contrast),
            (adjust_saturation, self.saturation),
        ):
            if s > 0:
                ops.append((fn, _uniform(b, max(0.0, 1 - s), 1 + s, generator, dev)))
        if self.hue > 0:
            ops.append((adjust_hue, _uniform(b, -self.hue, self.hue, generator, dev)))
        apply = _bernoulli(b, self.p, generator, dev)  # (B,)
        order = torch.randperm(len(ops), generator=generator, device=dev).tolist() if ops else []
        out = images
        for k in order:
            fn, factor = ops[k]
            out = fn(out, factor)
        return torch.where(apply[:, None, None, None], out, images)


# (h) noise, (i) blur, (j) Sobel
class GaussianNoise(BatchTransform):
    """Add N(0, sigma^2) noise with sigma ~ U(sigma_range) per image, then clip to [0, 1] (SimCLR's (h)).

    Raises:
        ValueError: a negative sigma or ``p`` outside [0, 1].
    """

    def __init__(self, sigma: tuple[float, float] = (0.05, 0.15), p: float = 1.0) -> None:
        if not 0 <= sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must satisfy 0 <= min <= max, got {sigma}")
        _check_probability(p)
        self.sigma, self.p = tuple(sigma), p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        b, dev = images.shape[0], images.device
        s = _uniform(b, *self.sigma, generator, dev) * _bernoulli(b, self.p, generator, dev)  # (B,) 0 where not applied
        noise = torch.randn(images.shape, generator=generator, device=dev, dtype=images.dtype)
        return (images + s.view(-1, 1, 1, 1) * noise).clamp(0, 1)


def gaussian_blur(images: torch.Tensor, kernel_size: int, sigma: torch.Tensor) -> torch.Tensor:
    """Blur image i with a ``kernel_size`` x ``kernel_size`` Gaussian of standard deviation ``sigma[i]`` pixels.

    Separable (a row then a column pass), reflect padding, the kernel sampled at integer
    offsets and normalised to sum 1: the definition of torchvision's ``gaussian_blur``.

    Args:
        images: (B, C, H, W) float.
        kernel_size: odd, >= 3, and smaller than twice each image side (for reflect padding).
        sigma: (B,) positive float, in pixels.

    Raises:
        ValueError: an even or too small kernel, or ``sigma`` not (B,) positive.
    """
    check_image_batch(images)
    b, c, h, w = images.shape
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
    sigma = torch.as_tensor(sigma, dtype=images.dtype, device=images.device).reshape(-1)
    if sigma.shape != (b,) or bool((sigma <= 0).any()):
        raise ValueError(f"sigma must be ({b},) positive standard deviations in pixels, got shape {tuple(sigma.shape)}")
    half = kernel_size // 2
    offsets = torch.arange(-half, half + 1, dtype=images.dtype, device=images.device)  # (k,)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)  # (B, k)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(c, dim=0)  # (B*C, k): one kernel per (image, channel) group
    x = images.reshape(1, b * c, h, w)  # (1, B*C, H, W): grouped conv applies each image's kernel
    x = F.pad(x, (half, half, half, half), mode="reflect")
    x = F.conv2d(x, kernel[:, None, None, :], groups=b * c)  # rows: (1, B*C, H + 2h, W)
    x = F.conv2d(x, kernel[:, None, :, None], groups=b * c)  # columns: (1, B*C, H, W)
    return x.reshape(b, c, h, w)


class RandomGaussianBlur(BatchTransform):
    """Gaussian blur with sigma ~ U(sigma) pixels, with probability ``p`` (SimCLR's (i): p = 0.5, sigma in [0.1, 2.0]).

    Args:
        kernel_size: odd kernel side in pixels (SimCLR: 10% of the image side).
        sigma: (min, max) standard deviation in pixels.
        p: probability of blurring each image.

    Raises:
        ValueError: an even kernel, non-positive sigma, or ``p`` outside [0, 1].
    """

    def __init__(self, kernel_size: int = 3, sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5) -> None:
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        if not 0 < sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must satisfy 0 < min <= max, got {sigma}")
        _check_probability(p)
        self.kernel_size, self.sigma, self.p = kernel_size, tuple(sigma), p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        b, dev = images.shape[0], images.device
        blurred = gaussian_blur(images, self.kernel_size, _uniform(b, *self.sigma, generator, dev))
        return torch.where(_bernoulli(b, self.p, generator, dev)[:, None, None, None], blurred, images)


def sobel(images: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude of the luma, ``sqrt(Gx^2 + Gy^2)`` with 3x3 Sobel kernels and replicate padding.

    Each image is rescaled by its own maximum so the edges use the [0, 1] range (SimCLR's (j)).

    Args:
        images: (B, C, H, W) float in [0, 1], C in {1, 3}.

    Returns:
        (B, C, H, W) float in [0, 1]: the magnitude repeated in every channel.
    """
    grey = grayscale(images)  # (B, 1, H, W)
    gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype, device=images.device)
    kernels = torch.stack([gx, gx.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)  # (B, 2, H, W)
    mag = g.pow(2).sum(dim=1, keepdim=True).sqrt()  # (B, 1, H, W)
    mag = mag / mag.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    return mag.expand_as(images).contiguous()


class Sobel(BatchTransform):
    """Replace each image by its Sobel edge magnitude (see :func:`sobel`), with probability ``p``.

    Raises:
        ValueError: ``p`` outside [0, 1].
    """

    def __init__(self, p: float = 1.0) -> None:
        _check_probability(p)
        self.p = p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        apply = _bernoulli(images.shape[0], self.p, generator, images.device)
        return torch.where(apply[:, None, None, None], sobel(images), images)


__all__ = [
    "LUMA_WEIGHTS",
    "ColorJitter",
    "GaussianNoise",
    "RandomGaussianBlur",
    "RandomGrayscale",
    "Sobel",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "gaussian_blur",
    "grayscale",
    "hsv_to_rgb",
    "rgb_to_hsv",
    "sobel",
]
