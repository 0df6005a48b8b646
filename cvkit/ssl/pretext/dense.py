r"""Dense pretext tasks: predict pixels of the image itself.

* **Inpainting** (Pathak et al., "Context Encoders", CVPR 2016): hide a region, reconstruct it.
* **Colourisation** (Zhang, Isola & Efros, ECCV 2016): predict colour from the grey image.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data.augment import LUMA_WEIGHTS, check_image_batch, grayscale
from cvkit.layers.heads import feature_dim_of


def square_hole(
    images: torch.Tensor, fraction: float = 0.5, generator: torch.Generator | None = None, center: bool = False
) -> torch.Tensor:
    """A square hole of side ``fraction * min(H, W)`` per image: the region a context encoder must fill in.

    Args:
        images: (B, C, H, W).
        fraction: hole side over the image side, in (0, 1).
        generator: random positions (ignored when ``center``).
        center: put the hole in the middle (Pathak et al.'s "central region") instead of a random place.

    Returns:
        (B, 1, H, W) bool, True inside the hole.

    Raises:
        ValueError: ``fraction`` outside (0, 1).
    """
    check_image_batch(images)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    b, _, h, w = images.shape
    side = max(1, int(round(fraction * min(h, w))))
    dev = images.device
    if center:
        top = torch.full((b,), (h - side) // 2, device=dev)
        left = torch.full((b,), (w - side) // 2, device=dev)
    else:
        top = torch.randint(0, h - side + 1, (b,), generator=generator, device=dev)
        left = torch.randint(0, w - side + 1, (b,), generator=generator, device=dev)
    ys = torch.arange(h, device=dev)[None]  # (1, H)
    xs = torch.arange(w, device=dev)[None]
    in_y = (ys >= top[:, None]) & (ys < top[:, None] + side)  # (B, H)
    in_x = (xs >= left[:, None]) & (xs < left[:, None] + side)  # (B, W)
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)


class UpsamplingDecoder(nn.Module):
    """Feature map back to an image: ``[x2 nearest upsampling, conv3x3, BN, ReLU]`` per stage, a resize, a 1x1 conv.

    Args:
        in_channels: D of the encoder's feature map.
        out_channels: channels of the output.
        widths: channels of the upsampling stages (one x2 stage each).
        output_range: ``"unit"``: a sigmoid, outputs in [0, 1] (pixels); ``"signed"``: ``tanh``, outputs in [-1, 1].

    Shapes:
        (B, D, h, w) -> (B, out_channels, H, W), where (H, W) is given to :meth:`forward`.

    Raises:
        ValueError: an unknown ``output_range``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        widths: tuple[int, ...] = (16, 8, 4),
        output_range: Literal["unit", "signed"] = "unit",
    ) -> None:
        super().__init__()
        if output_range not in ("unit", "signed"):
            raise ValueError(f"output_range must be 'unit' or 'signed', got {output_range!r}")
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            c = w
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(c, out_channels, 1)
        self.output_range = output_range

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.out(
            F.interpolate(self.body(features), size=size, mode="bilinear", align_corners=False)
        )  # (B, out, H, W)
        return torch.sigmoid(x) if self.output_range == "unit" else torch.tanh(x)


# chroma of the YUV colour space (ITU-R BT.601): U = 0.492 (B - Y), V = 0.877 (R - Y), with Y the luma of augment.grayscale
_U, _V = 0.492, 0.877


def rgb_to_chroma(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split (B, 3, H, W) RGB in [0, 1] into luma Y (B, 1, H, W) and chroma UV (B, 2, H, W), U and V in about [-0.62, 0.62]."""
    y = grayscale(images)
    u = _U * (images[:, 2:3] - y)
    v = _V * (images[:, 0:1] - y)
    return y, torch.cat([u, v], dim=1)


def chroma_to_rgb(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_chroma`: (B, 1, H, W) luma and (B, 2, H, W) chroma to (B, 3, H, W) RGB clipped to [0, 1]."""
    r = luma + chroma[:, 1:2] / _V
    b = luma + chroma[:, 0:1] / _U
    g = (luma - LUMA_WEIGHTS[0] * r - LUMA_WEIGHTS[2] * b) / LUMA_WEIGHTS[1]
    return torch.cat([r, g, b], dim=1).clamp(0, 1)


class DensePretext(nn.Module):
    """Encoder-decoder pretext tasks that predict pixels: inpainting or colourisation.

    * ``"inpainting"`` (Pathak et al. 2016): the input has a random square hole (``hole_fraction`` of the side)
      filled with 0.5 grey; the decoder paints the image; the loss is the mean squared error inside the hole
      (the paper adds an adversarial term for sharper fills; left out here).
    * ``"colorization"`` (Zhang et al. 2016): the input is the luma Y; the decoder predicts only the colour, the
      chroma UV (as the paper predicts the ab channels of Lab given L); the loss is the mean squared error on UV
      (the paper classifies quantised colours instead, which avoids the greyish averages regression gives).
      The encoder takes 1 channel; ``out_channels`` must be 3.

    Args:
        encoder: a backbone with ``forward_map`` (B, C_in, H, W) -> (B, D, h, w) and ``feature_dim`` (e.g. :class:`cvkit.layers.ConvEncoder`).
        out_channels: channels of the images (1 for Fashion-MNIST, 3 for colour).
        task: ``"inpainting"`` or ``"colorization"``.
        hole_fraction: side of the inpainting hole over the image side.
        decoder_widths: channels of the decoder's x2 upsampling stages (as many are used as the encoder has
            stride-2 stages; small, because pixels are cheap to predict and the encoder is what we keep).

    Shapes:
        ``forward(images)``: (B, out_channels, H, W) in [0, 1] -> scalar loss; :meth:`predict` returns
        (input, predicted image, loss weight per pixel).

    Raises:
        ValueError: an unknown task, or colourisation with ``out_channels`` other than 3; TypeError: an encoder without ``forward_map``.
    """

    num_views = 1

    def __init__(
        self,
        encoder: nn.Module,
        out_channels: int,
        task: Literal["inpainting", "colorization"] = "inpainting",
        hole_fraction: float = 0.5,
        decoder_widths: tuple[int, ...] = (16, 8, 4),
    ) -> None:
        super().__init__()
        if task not in ("inpainting", "colorization"):
            raise ValueError(f"task must be 'inpainting' or 'colorization', got {task!r}")
        if task == "colorization" and out_channels != 3:
            raise ValueError(f"colorization predicts colour images: out_channels must be 3, got {out_channels}")
        if not hasattr(encoder, "forward_map"):
            raise TypeError(
                f"the encoder ({type(encoder).__name__}) needs forward_map(x) -> (B, D, h, w), as ConvEncoder has"
            )
        self.encoder = encoder
        widths = tuple(decoder_widths)[: _stages(encoder)]
        if task == "inpainting":
            self.decoder = UpsamplingDecoder(feature_dim_of(encoder), out_channels, widths, "unit")
        else:
            self.decoder = UpsamplingDecoder(feature_dim_of(encoder), 2, widths, "signed")  # U and V
        self.task = task
        self.hole_fraction = hole_fraction

    def make_input(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The corrupted input and the (B, 1, H, W) float weight of each pixel in the loss."""
        if self.task == "inpainting":
            hole = square_hole(images, self.hole_fraction, generator)
            return images.masked_fill(hole, 0.5), hole.to(images.dtype)
        return grayscale(images), torch.ones_like(images[:, :1])

    def _decode(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = self.decoder(self.encoder.forward_map(x), size)
        return out if self.task == "inpainting" else 0.62 * out  # chroma range of rgb_to_chroma

    def predict(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(corrupted input, predicted image in [0, 1], (B, 1, H, W) loss weight: 1 inside the hole / everywhere)."""
        x, weight = self.make_input(images, generator)
        out = self._decode(x, tuple(images.shape[-2:]))
        return x, (out if self.task == "inpainting" else chroma_to_rgb(x, out)), weight

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x, weight = self.make_input(images, generator)
        pred = self._decode(x, tuple(images.shape[-2:]))
        target = images if self.task == "inpainting" else rgb_to_chroma(images)[1]
        err = (pred - target).pow(2).mean(dim=1, keepdim=True)  # (B, 1, H, W)
        return (err * weight).sum() / weight.sum().clamp_min(1)

    def extra_repr(self) -> str:
        return f"task={self.task!r}"


def _stages(encoder: nn.Module) -> int:
    """Number of x2 upsampling stages that undo the encoder's stride (3 for a stride-8 ConvEncoder)."""
    stride = getattr(encoder, "stride", 8)
    return max(1, min(3, int(stride).bit_length() - 1))
