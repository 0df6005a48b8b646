"""Generative models and image restoration (lecture 12), apart from diffusion (:mod:`cvkit.diffusion`).

* :mod:`~cvkit.generative.autoencoding`: reconstruction and denoising steps, the VAE's ELBO.
* :mod:`~cvkit.generative.gan`: GAN losses and the two-optimizer training loop.
* :mod:`~cvkit.generative.lowlevel`: degradations, baselines and PSNR for denoising, super-resolution, inpainting.
* :mod:`~cvkit.generative.style_transfer`: Gatys et al.'s neural style transfer with any trained CNN.
* :mod:`~cvkit.generative.cyclegan`: CycleGAN's losses and training loop (unpaired translation).
* :mod:`~cvkit.generative.metrics`: the Fréchet distance between feature distributions (FID's formula).

The networks are registered models: ``conv_autoencoder``, ``conv_vae``, ``dcgan_generator``,
``dcgan_discriminator``, ``restoration_net``, ``cyclegan_generator``, ``patch_discriminator`` (see :mod:`cvkit.models`).
"""

from cvkit.generative.autoencoding import ELBOTerms, gaussian_kl, negative_elbo, reconstruction_step, vae_step
from cvkit.generative.cyclegan import CycleGANHistory, cycle_consistency_loss, lsgan_loss, train_cyclegan
from cvkit.generative.gan import GANHistory, discriminator_gradient_norms, discriminator_loss, generator_loss, train_gan
from cvkit.generative.metrics import frechet_distance
from cvkit.generative.style_transfer import StyleTransferResult, gram_matrix, style_transfer
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
    "CycleGANHistory",
    "StyleTransferResult",
    "cycle_consistency_loss",
    "discriminator_gradient_norms",
    "frechet_distance",
    "gram_matrix",
    "lsgan_loss",
    "style_transfer",
    "train_cyclegan",
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
