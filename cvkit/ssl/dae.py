r"""The denoising autoencoder as a self-supervised method (Vincent et al., ICML 2008; Chen, Liu, Xie & He,
"Deconstructing Denoising Diffusion Models for Self-Supervised Learning", 2024; lecture 11, seed 000 "DAE").

Corrupt the image with Gaussian noise, :math:`\tilde x = x + \sigma\epsilon`, and train an encoder-decoder to give
back the clean :math:`x`. Chen et al. take a diffusion model apart piece by piece and find that what makes its
features good is denoising itself: a plain denoising autoencoder trained over **several noise levels** (as a
diffusion model is) learns features competitive with contrastive methods; their l-DAE adds the noise in a
low-dimensional (PCA) latent space, which this small version leaves out. The noise level is drawn per image from
``noise_range``, and the encoder is what the linear probe reads.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of


class ConvDecoder(nn.Module):
    """Transposed convolutions from an encoder's (B, D, h, w) map back to (B, C, H, W) images (cropped to size).

    Args:
        in_dim: D. out_channels: C. stages: how many x2 upsamplings (the encoder's stride is ``2 ** stages``).
        width: channels of the first stage (halved at each stage, at least 8).
    """

    def __init__(self, in_dim: int, out_channels: int = 1, stages: int = 3, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_dim
        for i in range(stages):
            w = max(8, width // 2**i)
            layers += [nn.ConvTranspose2d(c, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        layers.append(nn.Conv2d(c, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, fmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = self.net(fmap)
        return out[..., : size[0], : size[1]]


class DenoisingAutoencoder(nn.Module):
    """Encoder + decoder trained to remove Gaussian noise of a random level per image.

    Args:
        encoder: a :class:`cvkit.layers.ConvEncoder` (needs ``forward_map``, ``feature_dim``, ``stride``,
            ``in_channels``).
        noise_range: (min, max) of the noise standard deviation, drawn uniformly per image (pixels in [0, 1]).

    Attributes:
        encoder: the backbone (what a linear probe reads). num_views: 1.

    Shapes:
        ``forward(images (B, C, H, W) in [0, 1])`` -> scalar loss (MSE between the output and the clean image);
        :meth:`denoise` returns the (B, C, H, W) reconstruction of a noisy batch.

    Raises:
        TypeError: an encoder without ``forward_map``.
        ValueError: a bad ``noise_range``.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module, noise_range: tuple[float, float] = (0.1, 0.8)) -> None:
        super().__init__()
        if not hasattr(encoder, "forward_map"):
            raise TypeError("the encoder needs forward_map (a ConvEncoder): the decoder reads its feature map")
        lo, hi = noise_range
        if not 0 <= lo <= hi:
            raise ValueError(f"noise_range must satisfy 0 <= min <= max, got {noise_range}")
        self.encoder, self.noise_range = encoder, (lo, hi)
        stages = int(round(torch.log2(torch.tensor(float(encoder.stride))).item()))
        self.decoder = ConvDecoder(feature_dim_of(encoder), encoder.in_channels, stages)

    def denoise(self, noisy: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.forward_map(noisy), noisy.shape[-2:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lo, hi = self.noise_range
        sigma = lo + (hi - lo) * torch.rand(images.shape[0], 1, 1, 1, device=images.device)  # one level per image
        noisy = images + sigma * torch.randn_like(images)
        return F.mse_loss(self.denoise(noisy), images)

    def extra_repr(self) -> str:
        return f"noise_range={self.noise_range}"
