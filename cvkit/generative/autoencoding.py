r"""Training objectives for autoencoders: reconstruction (plain and denoising) and the VAE's ELBO.

* Autoencoder: minimise :math:`\lVert x - g(f(x))\rVert^2`; a **denoising** autoencoder feeds
  :math:`\tilde x = x + \sigma\epsilon` and still reconstructs the clean :math:`x` (Vincent et al. 2008).
* VAE (Kingma & Welling 2014, eq. 3 and appendix B): maximise the evidence lower bound

  .. math::  \log p(x) \ge \mathbb E_{q(z|x)}[\log p(x \mid z)] - D_{KL}\big(q(z \mid x)\,\Vert\,\mathcal N(0, I)\big),

  with a Bernoulli decoder (binary cross-entropy, summed over pixels) and the closed-form KL
  :math:`-\tfrac12\sum_j (1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2)`. The ``beta`` weight gives a
  beta-VAE (Higgins et al. 2017).

Each ``*_step`` returns a ``step(model, batch) -> StepOutput`` for :func:`cvkit.train.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r""":math:`D_{KL}(\mathcal N(\mu, \operatorname{diag} e^{\text{logvar}}) \Vert \mathcal N(0, I))` per example (Kingma & Welling 2014, appendix B).

    Args:
        mu, logvar: (B, D).

    Returns:
        (B,) float, in nats.
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


@dataclass
class ELBOTerms:
    """The negative ELBO and its two parts, each a scalar averaged over the batch (nats per image).

    Attributes:
        loss: ``reconstruction + beta * kl``, what to minimise.
        reconstruction: :math:`-\\mathbb E_q[\\log p(x \\mid z)]` (one-sample estimate).
        kl: :math:`D_{KL}(q(z \\mid x) \\Vert p(z))`.
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def negative_elbo(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0
) -> ELBOTerms:
    """The VAE loss with a Bernoulli decoder.

    Args:
        logits: (B, C, H, W) decoder logits. x: (B, C, H, W) targets in [0, 1].
        mu, logvar: (B, D) encoder outputs. beta: weight of the KL term (1 = the ELBO).

    Returns:
        :class:`ELBOTerms`.

    Raises:
        ValueError: ``logits`` and ``x`` differ in shape, or ``x`` leaves [0, 1].
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(x.shape)} must have the same shape")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError("VAE targets must be in [0, 1] (Bernoulli likelihood); do not normalise the images")
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
    kl = gaussian_kl(mu, logvar).mean()
    return ELBOTerms(recon + beta * kl, recon, kl)


def reconstruction_step(noise_std: float = 0.0):
    """A training step for (denoising) autoencoders: MSE between ``model(x + noise_std * eps)`` and ``x``.

    Args:
        noise_std: standard deviation of the Gaussian corruption (0: a plain autoencoder).

    Returns:
        ``step(model, (images (B, C, H, W) in [0, 1], labels)) -> StepOutput``.

    Raises:
        ValueError: negative ``noise_std``.
    """
    from cvkit.train import StepOutput

    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")

    def step(model: nn.Module, batch) -> StepOutput:
        x = batch[0]
        noisy = (x + noise_std * torch.randn_like(x)).clamp(0, 1) if noise_std > 0 else x
        return StepOutput(F.mse_loss(model(noisy), x), x.shape[0])

    return step


def vae_step(beta: float = 1.0):
    """A training step for :class:`cvkit.models.vae.ConvVAE`: the negative ELBO (:func:`negative_elbo`).

    Returns:
        ``step(model, (images (B, C, H, W) in [0, 1], labels)) -> StepOutput``; the loss is in nats per image.
    """
    from cvkit.train import StepOutput

    def step(model: nn.Module, batch) -> StepOutput:
        x = batch[0]
        out = model(x)
        return StepOutput(
            negative_elbo(out.logits.float(), x.float(), out.mu.float(), out.logvar.float(), beta).loss, x.shape[0]
        )

    return step
