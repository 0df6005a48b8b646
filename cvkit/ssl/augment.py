r"""SimCLR's augmentation list, batched and on the device.

Chen et al. ("A Simple Framework for Contrastive Learning of Visual Representations",
ICML 2020, fig. 4) study ten augmentations: (a) the original, (b) crop and resize,
(c) crop, resize and flip, (d) colour drop (greyscale), (e) colour jitter, (f) rotation
by 90/180/270 degrees, (g) cutout, (h) Gaussian noise, (i) Gaussian blur, (j) Sobel
filtering. Their finding: the *composition* of random cropping and colour distortion
matters most. :func:`simclr_augmentation` builds that default pipeline; every other
transform of the list is here too, for the augmentation gallery.

Every transform acts on a whole (B, C, H, W) float batch in [0, 1] where it lives (GPU or
CPU), draws one set of random parameters per image from an explicit ``torch.Generator``
(on the images' device), and returns a batch of the same shape. They subclass
:class:`cvkit.data.augment.BatchTransform`, so they compose with the kit's other batched
transforms and plug into :class:`cvkit.data.DeviceLoader`::

    aug = simclr_augmentation(size=28, crop_scale=(0.2, 1.0))
    g = torch.Generator(device=x.device).manual_seed(0)
    v1, v2 = two_views(x, aug, g)        # two independent augmentations of each image

Colour operations follow torchvision's definitions (``adjust_brightness``, ``_contrast``,
``_saturation``, ``_hue``, ``rgb_to_grayscale``, ``gaussian_blur``) and are tested against them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from cvkit.data.augment import BatchTransform, Compose, RandomFlip, check_image_batch

# ITU-R BT.601 luma weights, with the rounding torchvision's rgb_to_grayscale uses
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """(n,) float32 uniform in [low, high)."""
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _bernoulli(n: int, p: float, generator: torch.Generator | None, device) -> torch.Tensor:
    """(n,) bool, each True with probability p."""
    return torch.rand(n, generator=generator, device=device) < p


def _check_probability(p: float, name: str = "p") -> None:
    if not 0 <= p <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


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


# ---------------------------------------------------------------- (b) crop and resize
def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Crop a box out of every image and resize it to ``size`` with bilinear interpolation, in one call.

    Sampling follows ``F.interpolate(..., align_corners=False)``: output pixel centres map
    to evenly spaced points inside the box, so a box of exactly ``size`` pixels is copied unchanged.

    Args:
        images: (B, C, H, W) float.
        boxes: (B, 4) float, ``xyxy`` in pixels (x2, y2 exclusive edges), inside the image.
        size: output side (int) or (height, width).

    Returns:
        (B, C, height, width), same dtype and device.

    Raises:
        ValueError: ``boxes`` is not (B, 4).
    """
    check_image_batch(images)
    b, _, h, w = images.shape
    if boxes.shape != (b, 4):
        raise ValueError(f"boxes must be ({b}, 4) xyxy pixels, one per image, got {tuple(boxes.shape)}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    boxes = boxes.to(images.dtype)
    # affine map from output normalised coords [-1, 1] to input normalised coords (align_corners=False)
    sx = (boxes[:, 2] - boxes[:, 0]) / w  # (B,) box width as a fraction of the image width
    sy = (boxes[:, 3] - boxes[:, 1]) / h
    tx = (boxes[:, 0] + boxes[:, 2]) / w - 1  # (B,) box centre in [-1, 1]
    ty = (boxes[:, 1] + boxes[:, 3]) / h - 1
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, [b, images.shape[1], out_h, out_w], align_corners=False)  # (B, out_h, out_w, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomResizedCrop(BatchTransform):
    """Crop a random box of random area and aspect ratio, resize it to ``size`` (SimCLR's (b)).

    The box area is ``U(scale)`` times the image area and its aspect ratio (width / height)
    is log-uniform in ``ratio``, as torchvision's ``RandomResizedCrop``. Where torchvision
    retries a box that does not fit ten times, this batched version clips the box's sides
    to the image instead (one draw per image, no loop).

    Args:
        size: output side in pixels (int) or (height, width); ``None`` keeps the input size.
        scale: (min, max) fraction of the image area, within (0, 1].
        ratio: (min, max) aspect ratio, positive.

    Raises:
        ValueError: ``scale`` or ``ratio`` out of range.
    """

    def __init__(self, size: int | tuple[int, int] | None = None, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.size = size
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)

    def sample_boxes(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 4) random crop boxes, ``xyxy`` pixels, for a batch of the shape of ``images``."""
        b, _, h, w = images.shape
        dev = images.device
        area = _uniform(b, *self.scale, generator, dev) * (h * w)  # (B,) pixels^2
        log_r = _uniform(b, math.log(self.ratio[0]), math.log(self.ratio[1]), generator, dev)
        r = log_r.exp()
        bw = (area * r).sqrt().clamp(1, w)  # (B,) box width in pixels
        bh = (area / r).sqrt().clamp(1, h)
        x1 = torch.rand(b, generator=generator, device=dev) * (w - bw)
        y1 = torch.rand(b, generator=generator, device=dev) * (h - bh)
        return torch.stack([x1, y1, x1 + bw, y1 + bh], dim=1)  # (B, 4)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        size = self.size if self.size is not None else tuple(images.shape[-2:])
        return resized_crop(images, self.sample_boxes(images, generator), size)


# ---------------------------------------------------------------- (d), (e) colour
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
    table = torch.stack([
        torch.stack([v, t, p], 1), torch.stack([q, v, p], 1), torch.stack([p, v, t], 1),
        torch.stack([p, q, v], 1), torch.stack([t, p, v], 1), torch.stack([v, p, q], 1),
    ], dim=0)  # (6, B, 3, H, W)
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

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1, p: float = 0.8) -> None:
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
        for fn, s in ((adjust_brightness, self.brightness), (adjust_contrast, self.contrast), (adjust_saturation, self.saturation)):
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


# ---------------------------------------------------------------- (f) rotation, (g) cutout, (h) noise
class RandomRotate90(BatchTransform):
    """Rotate each image by 90, 180 or 270 degrees (chosen uniformly) with probability ``p`` (SimCLR's (f)).

    Raises:
        ValueError: ``p`` outside [0, 1]; non-square images (forward).
    """

    def __init__(self, p: float = 1.0) -> None:
        _check_probability(p)
        self.p = p

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        if images.shape[-1] != images.shape[-2]:
            raise ValueError(f"RandomRotate90 needs square images, got {tuple(images.shape[-2:])}; crop them first")
        b, dev = images.shape[0], images.device
        k = torch.randint(1, 4, (b,), generator=generator, device=dev)
        k = torch.where(_bernoulli(b, self.p, generator, dev), k, torch.zeros_like(k))
        return rotate90(images, k)


def rotate90(images: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate image i by ``k[i] * 90`` degrees counter-clockwise (``torch.rot90`` per image), k in {0, 1, 2, 3}.

    Args:
        images: (B, C, S, S) square images.
        k: (B,) int64.
    """
    out = images.clone()
    for turns in range(1, 4):
        sel = k == turns
        out = torch.where(sel[:, None, None, None], torch.rot90(images, turns, dims=(-2, -1)), out)
    return out


class RandomCutout(BatchTransform):
    """Zero a random square of side ``fraction * min(H, W)`` in each image (SimCLR's (g); DeVries & Taylor 2017).

    The square's centre is uniform over the image, so it may be partly outside.

    Raises:
        ValueError: ``fraction`` outside (0, 1] or ``p`` outside [0, 1].
    """

    def __init__(self, fraction: float = 0.5, p: float = 1.0, fill: float = 0.0) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        _check_probability(p)
        self.fraction, self.p, self.fill = fraction, p, fill

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_image_batch(images)
        b, _, h, w = images.shape
        dev = images.device
        side = self.fraction * min(h, w)
        cy = torch.rand(b, generator=generator, device=dev) * h  # (B,) centre in pixels
        cx = torch.rand(b, generator=generator, device=dev) * w
        ys = torch.arange(h, device=dev) + 0.5  # pixel centres
        xs = torch.arange(w, device=dev) + 0.5
        inside_y = (ys[None] - cy[:, None]).abs() < side / 2  # (B, H)
        inside_x = (xs[None] - cx[:, None]).abs() < side / 2  # (B, W)
        hole = inside_y[:, :, None] & inside_x[:, None, :] & _bernoulli(b, self.p, generator, dev)[:, None, None]  # (B, H, W)
        return images.masked_fill(hole[:, None], self.fill)


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


# ---------------------------------------------------------------- (i) blur, (j) Sobel
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


# ---------------------------------------------------------------- the pipeline
def simclr_augmentation(
    size: int | None = None,
    *,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    strength: float = 1.0,
    blur: bool = True,
    blur_kernel: int | None = None,
) -> Compose:
    """SimCLR's default augmentation (Chen et al. 2020, appendix A): crop, flip, colour jitter, colour drop, blur.

    ``RandomResizedCrop(size, crop_scale)``, ``RandomFlip(0.5)``, ``ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s, p=0.8)``,
    ``RandomGrayscale(0.2)`` and, when ``blur``, ``RandomGaussianBlur(p=0.5, sigma in [0.1, 2])`` with a
    kernel of about 10% of the image side. On one-channel images the saturation, hue and
    grey steps do nothing, which leaves crop, flip, brightness, contrast and blur.

    Args:
        size: output side in pixels (``None``: keep the input size).
        crop_scale: area range of the crop (SimCLR: (0.08, 1); small images want a larger minimum, e.g. 0.2).
        strength: colour-distortion strength s (SimCLR: 1.0 on ImageNet, 0.5 on CIFAR-10).
        blur: include the Gaussian blur (SimCLR drops it for CIFAR-10's 32x32 images).
        blur_kernel: odd kernel side (``None``: 10% of ``size``, at least 3).

    Returns:
        a :class:`cvkit.data.augment.Compose` of batched transforms.

    Raises:
        ValueError: a negative ``strength`` or a blur kernel that cannot be derived (``size`` and ``blur_kernel`` both None).
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    s = strength
    transforms: list[BatchTransform] = [
        RandomResizedCrop(size, scale=crop_scale),
        RandomFlip(0.5),
        ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5), p=0.8),
        RandomGrayscale(0.2),
    ]
    if blur:
        if blur_kernel is None:
            if size is None:
                raise ValueError("give size or blur_kernel so the blur kernel (about 10% of the image side) is known")
            blur_kernel = max(3, int(0.1 * size) // 2 * 2 + 1)
        transforms.append(RandomGaussianBlur(blur_kernel, (0.1, 2.0), p=0.5))
    return Compose(transforms)


def two_views(images: torch.Tensor, transform: BatchTransform, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent augmentations of the same batch: the positive pairs of contrastive learning.

    Returns:
        (view1, view2), each shaped like ``transform(images)``.
    """
    return transform(images, generator), transform(images, generator)


# the augmentation list of SimCLR's figure 4, (b) to (j), for the gallery
def simclr_gallery(size: int) -> dict[str, BatchTransform]:
    """One transform per panel of SimCLR's figure 4, with fixed probability 1, keyed by the panel's caption.

    Args:
        size: image side in pixels (the output of the crops).
    """
    return {
        "(b) crop and resize": RandomResizedCrop(size, scale=(0.08, 0.5)),
        "(c) crop, resize, flip": Compose([RandomResizedCrop(size, scale=(0.08, 0.5)), RandomFlip(1.0)]),
        "(d) colour drop": RandomGrayscale(1.0),
        "(e) colour jitter": ColorJitter(0.8, 0.8, 0.8, 0.2, p=1.0),
        "(f) rotate 90/180/270": RandomRotate90(1.0),
        "(g) cutout": RandomCutout(0.5, p=1.0),
        "(h) Gaussian noise": GaussianNoise((0.1, 0.2)),
        "(i) Gaussian blur": RandomGaussianBlur(max(3, int(0.1 * size) // 2 * 2 + 1), (1.0, 3.0), p=1.0),
        "(j) Sobel filtering": Sobel(1.0),
    }


__all__: Sequence[str] = (
    "LUMA_WEIGHTS", "ColorJitter", "GaussianNoise", "RandomCutout", "RandomGaussianBlur", "RandomGrayscale", "RandomResizedCrop",
    "RandomRotate90", "Sobel", "adjust_brightness", "adjust_contrast", "adjust_hue", "adjust_saturation",
    "gaussian_blur", "grayscale", "hsv_to_rgb", "resized_crop", "rgb_to_hsv", "rotate90", "simclr_augmentation",
    "simclr_gallery", "sobel", "two_views",
)
