"""Denoising diffusion, one concept per module (lecture 12).

* :mod:`~cvkit.diffusion.schedules`: linear and cosine beta schedules, :class:`NoiseSchedule`.
* :mod:`~cvkit.diffusion.forward`: the closed-form forward process :func:`q_sample`.
* :mod:`~cvkit.diffusion.loss`: the epsilon-prediction loss and a training step for :func:`cvkit.train.fit`.
* :mod:`~cvkit.diffusion.samplers`: DDPM and DDIM steps and the sampling loop.
* :mod:`~cvkit.diffusion.guidance`: classifier-free guidance.
* :mod:`~cvkit.diffusion.unet`: a small time-conditioned U-Net (registered as ``ddpm_unet`` in :mod:`cvkit.models.diffusion_unet`).
* :mod:`~cvkit.diffusion.latent`: latent diffusion: standardised autoencoder latents and an MLP noise predictor.

Images are (B, C, H, W) scaled to [-1, 1] (``x * 2 - 1``); timesteps are 0-based int64 in [0, T).
"""

from cvkit.diffusion.forward import gather, predict_x0, q_sample
from cvkit.diffusion.fidelity import guidance_class_share
from cvkit.diffusion.guidance import guided_epsilon
from cvkit.diffusion.latent import LatentDenoiser, LatentScaler, encode_latents
from cvkit.diffusion.loss import NULL_LABEL, diffusion_loss, diffusion_step, drop_labels
from cvkit.diffusion.samplers import SampleResult, ddim_step, ddpm_step, inference_timesteps, sample
from cvkit.diffusion.schedules import (
    SCHEDULES,
    NoiseSchedule,
    cosine_alpha_bar,
    cosine_betas,
    linear_betas,
    make_schedule,
)
from cvkit.diffusion.unet import DiffusionUNet, timestep_embedding

__all__ = [
    "DiffusionUNet",
    "LatentDenoiser",
    "LatentScaler",
    "encode_latents",
    "NULL_LABEL",
    "NoiseSchedule",
    "SCHEDULES",
    "SampleResult",
    "cosine_alpha_bar",
    "cosine_betas",
    "ddim_step",
    "ddpm_step",
    "diffusion_loss",
    "diffusion_step",
    "drop_labels",
    "gather",
    "guidance_class_share",
    "guided_epsilon",
    "inference_timesteps",
    "linear_betas",
    "make_schedule",
    "predict_x0",
    "q_sample",
    "sample",
    "timestep_embedding",
]
