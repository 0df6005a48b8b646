r"""A convolutional variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

The encoder outputs a Gaussian :math:`q_\phi(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)`;
a sample is drawn with the reparameterisation trick :math:`z = \mu + \sigma \odot \epsilon` (sec. 2.4),
so gradients flow through :math:`\mu` and :math:`\sigma`; the decoder gives Bernoulli logits for
:math:`p_\theta(x \mid z)`. Training maximises the ELBO (:func:`cvkit.generative.negative_elbo`). Sampling
decodes :math:`z \sim \mathcal N(0, I)`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from cvkit.models.autoencoder import LatentDecoder, LatentEncoder
from cvkit.models.registry import register_model


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`z = \mu + \exp(\tfrac12\log\sigma^2)\odot\epsilon`, :math:`\epsilon \sim \mathcal N(0, I)` (Kingma & Welling 2014, sec. 2.4).

    Args:
        mu, logvar: (B, D) mean and log-variance of :math:`q(z \mid x)`.

    Returns:
        (B, D) a differentiable sample.
    """
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


class VAEOutput(NamedTuple):
    """What :class:`ConvVAE` returns: ``logits`` (B, C, 28, 28) Bernoulli logits of the reconstruction,
    ``mu`` and ``logvar`` (B, D) of :math:`q(z \\mid x)`, ``z`` (B, D) the sample decoded."""

    logits: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor

    @property
    def reconstruction(self) -> torch.Tensor:
        """(B, C, 28, 28) in [0, 1]: the mean of the Bernoulli decoder."""
        return torch.sigmoid(self.logits)


class ConvVAE(nn.Module):
    """Encoder to (mu, logvar), reparameterised sample, decoder to logits.

    Args:
        in_channels: C. latent_dim: D (2 makes the latent space drawable). width: conv width.

    Shapes:
        input (B, C, 28, 28) float in [0, 1] -> :class:`VAEOutput`; ``sample(n)`` -> (n, C, 28, 28) in [0, 1].
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 16, width: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = LatentEncoder(in_channels, 2 * latent_dim, width)
        self.decoder = LatentDecoder(latent_dim, in_channels, width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, 28, 28) -> mu, logvar, each (B, D)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)  # keeps exp(logvar) finite early in training

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return VAEOutput(self.decoder(z), mu, logvar, z)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) latents -> (B, C, 28, 28) images in [0, 1]."""
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``n`` draws from the prior N(0, I): (n, C, 28, 28) in [0, 1]."""
        device = next(self.parameters()).device
        return self.decode(torch.randn(n, self.latent_dim, generator=generator, device=device))


@register_model(
    "conv_vae",
    task="generation",
    input_shape=(1, 28, 28),
    output_shape=(1, 28, 28),
    reduce=lambda out: out.logits.sum() + out.mu.sum() + out.logvar.sum(),
    reference="Kingma & Welling 2014",
)
def conv_vae(in_channels: int = 1, latent_dim: int = 16, width: int = 32) -> ConvVAE:
    """A convolutional VAE for 28x28 images (Bernoulli decoder)."""
    return ConvVAE(in_channels, latent_dim, width)
