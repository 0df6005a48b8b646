"""DCGAN generator and discriminator for 28x28 images (Radford et al. 2016, "Unsupervised
Representation Learning with Deep Convolutional GANs").

The paper's guidelines (sec. 3), all followed here: strided convolutions instead of pooling,
transposed convolutions to upsample, BatchNorm in both nets (not on the generator's output or the
discriminator's input), ReLU in the generator with Tanh at the output, LeakyReLU(0.2) in the
discriminator, weights initialised from N(0, 0.02). Sized for Fashion-MNIST (7 -> 14 -> 28) so one
epoch takes seconds on a GPU. The adversarial training loop is :func:`cvkit.generative.gan.train_gan`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.weight_norms import spectral_normalize_all
from cvkit.models.registry import register_model


def dcgan_init(module: nn.Module) -> None:
    """Initialise conv weights from N(0, 0.02) and BatchNorm scales from N(1, 0.02) (Radford et al. 2016, sec. 4)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, C, 28, 28) in [-1, 1] (Tanh).

    Args:
        latent_dim: size of the noise vector z. width: channels at 14x14 (twice as many at 7x7). out_channels: C.
    """

    def __init__(self, latent_dim: int = 64, width: int = 64, out_channels: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.width = width
        self.project = nn.Sequential(
            nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU()
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1),
            nn.Tanh(),  # 14 -> 28
        )
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (B, {self.latent_dim}), got {tuple(z.shape)}")
        h = self.project(z).view(z.shape[0], 2 * self.width, 7, 7)  # (B, 2w, 7, 7)
        return self.net(h)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] (rescaled from the Tanh range), in eval mode."""
        device = next(self.parameters()).device
        was = self.training
        self.eval()
        out = self(torch.randn(n, self.latent_dim, generator=generator, device=device))
        self.train(was)
        return (out + 1) / 2


class DCGANDiscriminator(nn.Module):
    """images (B, C, 28, 28) in [-1, 1] -> (B,) logits of "real".

    Args:
        in_channels: C. width: channels after the first conv (twice as many after the second).
        spectral_norm: normalise every conv and linear weight by its largest singular value
            (:func:`cvkit.layers.weight_norms.spectral_normalize`; Miyato et al. 2018) and drop BatchNorm, as the SN-GAN
            discriminator does: each layer is then 1-Lipschitz, and so is the whole network (LeakyReLU is too).
    """

    def __init__(self, in_channels: int = 1, width: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        self.spectral_norm = spectral_norm
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),  # 28 -> 14, no BN on the input layer
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=spectral_norm),
            nn.Identity() if spectral_norm else nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )
        self.apply(dcgan_init)
        if spectral_norm:
            spectral_normalize_all(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(f"expected (B, C, 28, 28) images in [-1, 1], got {tuple(x.shape)}")
        return self.net(x).squeeze(1)  # (B,)


@register_model(
    "dcgan_generator",
    task="generation",
    example_inputs=lambda b: (torch.randn(b, 32),),
    output_shape=(1, 28, 28),
    smoke_kwargs=dict(latent_dim=32, width=16),
    reference="Radford et al. 2016",
)
def dcgan_generator(latent_dim: int = 64, width: int = 64, out_channels: int = 1) -> DCGANGenerator:
    """DCGAN generator: noise vector to a 28x28 image in [-1, 1]."""
    return DCGANGenerator(latent_dim, width, out_channels)


@register_model(
    "dcgan_discriminator",
    task="generation",
    input_shape=(1, 28, 28),
    output_shape=(),
    smoke_kwargs=dict(width=16),
    reference="Radford et al. 2016",
)
def dcgan_discriminator(in_channels: int = 1, width: int = 64, spectral_norm: bool = False) -> DCGANDiscriminator:
    """DCGAN discriminator: a 28x28 image to one real/fake logit (``spectral_norm=True``: SN-GAN's, without BN)."""
    return DCGANDiscriminator(in_channels, width, spectral_norm)
