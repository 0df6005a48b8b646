"""CycleGAN's networks in miniature (Zhu et al. 2017, appendix 7.2): a ResNet generator and a PatchGAN discriminator.

* Generator (Johnson et al. 2016's architecture): c7s1-w, d2w (stride-2 conv), R residual blocks, u w (transposed
  conv), c7s1-C; instance normalisation and ReLU; a sigmoid output (images in [0, 1] here, not Tanh's [-1, 1]).
* Discriminator (PatchGAN, Isola et al. 2017): stride-2 4x4 convolutions with LeakyReLU(0.2), ending in a map of
  logits, each judging whether one image patch (its receptive field) looks real.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.models.registry import register_model


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CycleGANGenerator(nn.Module):
    """ResNet generator: (B, C_in, H, W) in [0, 1] -> (B, C_out, H, W) in [0, 1] (H, W even).

    Args:
        in_channels, out_channels: C_in, C_out. width: w. residual_blocks: R (9 in the paper at 256 x 256).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, width: int = 16, residual_blocks: int = 2) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 7, padding=3, padding_mode="reflect"),
            nn.InstanceNorm2d(w),
            nn.ReLU(inplace=True),  # c7s1-w
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.InstanceNorm2d(2 * w),
            nn.ReLU(inplace=True),  # d2w
            *[_Residual(2 * w) for _ in range(residual_blocks)],
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(w),
            nn.ReLU(inplace=True),  # u w
            nn.Conv2d(w, out_channels, 7, padding=3, padding_mode="reflect"),
            nn.Sigmoid(),  # c7s1-C
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: (B, C, H, W) -> (B, 1, H/4 - 1, W/4 - 1) logits, one per overlapping patch.

    Args:
        in_channels: C. width: channels of the first layer (doubled once).
    """

    def __init__(self, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.InstanceNorm2d(2 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 1, 4, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_model(
    "cyclegan_generator",
    task="generation",
    input_shape=(1, 28, 28),
    output_shape=(3, 28, 28),
    smoke_kwargs=dict(width=4, residual_blocks=1),
    reference="Zhu et al. 2017 (CycleGAN); Johnson et al. 2016",
)
def cyclegan_generator(
    in_channels: int = 1, out_channels: int = 3, width: int = 16, residual_blocks: int = 2
) -> CycleGANGenerator:
    """CycleGAN's ResNet generator, small: one downsampling, R residual blocks, one upsampling."""
    return CycleGANGenerator(in_channels, out_channels, width, residual_blocks)


@register_model(
    "patch_discriminator",
    task="generation",
    input_shape=(3, 28, 28),
    output_shape=(1, 6, 6),
    smoke_kwargs=dict(width=4),
    reference="Isola et al. 2017 (PatchGAN)",
)
def patch_discriminator(in_channels: int = 3, width: int = 16) -> PatchDiscriminator:
    """A PatchGAN discriminator: a map of real/fake logits, one per image patch."""
    return PatchDiscriminator(in_channels, width)
