"""Generative models and image restoration (lecture 12), apart from diffusion (:mod:`cvkit.diffusion`).

* :mod:`~cvkit.generative.autoencoding`: reconstruction and denoising steps, the VAE's ELBO.
* :mod:`~cvkit.generative.gan`: GAN losses and the two-optimizer training loop.
* :mod:`~cvkit.generative.lowlevel`: degradations, baselines and PSNR for denoising, super-resolution, inpainting.

The networks are registered models: ``conv_autoencoder``, ``conv_vae``, ``dcgan_generator``,
``dcgan_discriminator``, ``restoration_net`` (see :mod:`cvkit.models`).
"""

from cvkit.generative.autoencoding import ELBOTerms, gaussian_kl, negative_elbo, reconstruction_step, vae_step
from cvkit.generative.gan import GANHistory, discriminator_loss, generator_loss, train_gan
from cvkit.generative.lowlevel import (
    RESTORATION_TASKS,
    add_noise,
    classical_baseline,
    degrade,
    down_up,
    psnr,
    random_holes,
    random_patches,
    restoration_step,
)

__all__ = [
    "ELBOTerms",
    "GANHistory",
    "RESTORATION_TASKS",
    "add_noise",
    "classical_baseline",
    "degrade",
    "discriminator_loss",
    "down_up",
    "gaussian_kl",
    "generator_loss",
    "negative_elbo",
    "psnr",
    "random_holes",
    "random_patches",
    "reconstruction_step",
    "restoration_step",
    "train_gan",
    "vae_step",
]
