"""A residual CNN for low-level vision: denoising, super-resolution and inpainting (lecture 12).

DnCNN (Zhang et al. 2017, "Beyond a Gaussian Denoiser") predicts the *residual* (the corruption)
rather than the clean image: ``clean = input - net(input)``. The same design serves the three
classic restoration tasks, each fed a degraded image of the output's size (see
:mod:`cvkit.generative.lowlevel`): a noisy image, a bicubic-upsampled low-resolution image (as in
SRCNN/VDSR, Kim et al. 2016), or an image with holes plus the hole mask as an extra channel.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.models.registry import register_model


class RestorationNet(nn.Module):
    """Conv-ReLU, (Conv-BN-ReLU) x (depth - 2), Conv; the output is subtracted from the image channels.

    Args:
        channels: C, the image channels (3 for colour).
        extra_channels: additional input channels (1 for an inpainting mask), not part of the output.
        width: feature channels. depth: number of conv layers (>= 3; DnCNN uses 17, we use fewer).
        batch_norm: BatchNorm after the middle convolutions, as DnCNN; without it a short training
            run converges faster and train/eval behave the same.

    Shapes:
        input (B, C + extra, H, W) float, image channels in [0, 1]; output (B, C, H, W), the restored image
        (not clamped, so the loss sees the raw prediction).

    Raises:
        ValueError: ``depth < 3`` or an input with the wrong channel count.
    """

    def __init__(
        self, channels: int = 3, extra_channels: int = 0, width: int = 48, depth: int = 6, batch_norm: bool = True
    ) -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"depth must be at least 3, got {depth}")
        self.channels, self.extra_channels = channels, extra_channels
        layers: list[nn.Module] = [nn.Conv2d(channels + extra_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            if batch_norm:
                layers += [
                    nn.Conv2d(width, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
            else:
                layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels + self.extra_channels:
            raise ValueError(
                f"expected (B, {self.channels + self.extra_channels}, H, W) (image channels + extra), got {tuple(x.shape)}"
            )
        return x[:, : self.channels] - self.body(x)  # residual learning: predict the corruption


@register_model(
    "restoration_net",
    task="generation",
    input_shape=(3, 32, 32),
    output_shape=(3, 32, 32),
    smoke_kwargs=dict(width=16, depth=4),
    reference="Zhang et al. 2017 (DnCNN)",
)
def restoration_net(
    channels: int = 3, extra_channels: int = 0, width: int = 48, depth: int = 6, batch_norm: bool = True
) -> RestorationNet:
    """A DnCNN-style residual CNN for denoising, super-resolution and inpainting."""
    return RestorationNet(channels, extra_channels, width, depth, batch_norm)
