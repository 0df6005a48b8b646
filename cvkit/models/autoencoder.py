"""A convolutional autoencoder for 28x28 images: encoder to a small code, decoder back (lecture 12).

The encoder halves the image twice with stride-2 convolutions (28 -> 14 -> 7) and maps to a
``latent_dim`` vector; the decoder mirrors it with transposed convolutions. Trained with MSE it
learns a compressed code (Hinton & Salakhutdinov 2006); trained on corrupted inputs against clean
targets it is a denoising autoencoder (Vincent et al. 2008). :class:`cvkit.models.vae.ConvVAE`
reuses both halves.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.models.registry import register_model


class LatentEncoder(nn.Module):
    """(B, C, 28, 28) -> (B, out_features): two stride-2 conv blocks, then a linear layer.

    Args:
        in_channels: C. width: channels of the first conv (the second has twice as many).
        out_features: size of the output vector (the code, or 2 * latent for a VAE).
    """

    def __init__(self, in_channels: int = 1, out_features: int = 16, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.LeakyReLU(0.2),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),  # 14 -> 7
            nn.Flatten(),  # (B, 2w * 7 * 7)
        )
        self.fc = nn.Linear(2 * width * 7 * 7, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(f"expected (B, C, 28, 28) images, got {tuple(x.shape)}; resize to 28x28 first")
        return self.fc(self.features(x))


class LatentDecoder(nn.Module):
    """(B, latent_dim) -> (B, C, 28, 28) logits: a linear layer to 7x7 maps, then two transposed convs.

    The output is unbounded (logits); apply ``torch.sigmoid`` for an image in [0, 1].
    """

    def __init__(self, latent_dim: int = 16, out_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.fc = nn.Linear(latent_dim, 2 * width * 7 * 7)
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(width, out_channels, 4, stride=2, padding=1),  # 14 -> 28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], 2 * self.width, 7, 7)  # (B, 2w, 7, 7)
        return self.net(h)


class ConvAutoencoder(nn.Module):
    """Encoder + decoder; ``forward`` returns the reconstruction in [0, 1].

    Args:
        in_channels: C (1 for Fashion-MNIST). latent_dim: size of the code. width: conv width.

    Shapes:
        input (B, C, 28, 28) float in [0, 1]; ``encode`` -> (B, latent_dim); output (B, C, 28, 28) in [0, 1].
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 16, width: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = LatentEncoder(in_channels, latent_dim, width)
        self.decoder = LatentDecoder(latent_dim, in_channels, width)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 28, 28) -> (B, latent_dim) codes."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) -> (B, C, 28, 28) images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


@register_model(
    "conv_autoencoder",
    task="generation",
    input_shape=(1, 28, 28),
    output_shape=(1, 28, 28),
    reference="Hinton & Salakhutdinov 2006; Vincent et al. 2008 (denoising)",
)
def conv_autoencoder(in_channels: int = 1, latent_dim: int = 16, width: int = 32) -> ConvAutoencoder:
    """A convolutional autoencoder for 28x28 images (reconstruction in [0, 1])."""
    return ConvAutoencoder(in_channels, latent_dim, width)
