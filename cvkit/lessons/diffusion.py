"""Lesson 12 (diffusion): training the class-conditional DDPM of the notebook, and the checkpoint made with it.

:func:`train_ddpm` is notebook 12_diffusion's training cell (Ho et al. 2020, Algorithm 1, with labels dropped 10% of
the time for classifier-free guidance). ``cvkit checkpoints retrain ddpm_fashion`` runs it with
:data:`DDPM_CHECKPOINT`; the checkpoint's guided samples are judged by the ``fashion_classifier`` checkpoint.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import DeviceLoader, load_fashion_mnist
from cvkit.diffusion import DiffusionUNet, NoiseSchedule, diffusion_step, guidance_class_share, make_schedule
from cvkit.lessons.checkpoints import CourseCheckpoint, load_course_checkpoint, register_checkpoint
from cvkit.train import History, fit

SCHEDULE = ("cosine", 1000)  # Nichol & Dhariwal's schedule, T = 1000 steps
DDPM_CHECKPOINT = dict(
    train_images=30000, epochs=6, batch_size=128, base_channels=16, lr=2e-3
)  # the fast profile's U-Net, longer


def ddpm_schedule() -> NoiseSchedule:
    """The lesson's noise schedule: cosine, T = 1000."""
    return make_schedule(*SCHEDULE)


def build_ddpm(base_channels: int = 16) -> DiffusionUNet:
    """The lesson's class-conditional U-Net for 28 x 28 grey images (10 classes plus "no class")."""
    return DiffusionUNet(in_channels=1, base_channels=base_channels, num_classes=10)


def train_ddpm(
    train_images: int | None = 3000,
    epochs: int = 2,
    batch_size: int = 64,
    base_channels: int = 16,
    lr: float = 2e-3,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
    model: nn.Module | None = None,
) -> tuple[nn.Module, History]:
    r"""Train the lesson's DDPM on Fashion-MNIST: predict the noise, :math:`\lVert \epsilon - \epsilon_\theta(x_t, t, y) \rVert^2`.

    Images are scaled to [-1, 1]; labels are dropped (replaced by "no class") with probability 0.1, so the same
    network learns the unconditional model classifier-free guidance needs. AdamW without weight decay, one-cycle.

    Args:
        train_images: a class-balanced subset of the training split (``None``: all 60,000).
        epochs, batch_size, lr: the budget.
        base_channels: width of the U-Net's first level (:func:`build_ddpm`).
        seed: seeds the initial weights, the batch order, timesteps and noise.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: train this U-Net (e.g. one a notebook's callback samples from) instead of a fresh one.

    Returns:
        ``(model, history)``.
    """
    train = load_fashion_mnist("train").subset(train_images)
    loader = DeviceLoader.from_dataset(
        train, batch_size, mean=[0.5], std=[0.5], device=device, drop_last=True, seed=seed
    )
    if model is None:
        torch.manual_seed(seed)
        model = build_ddpm(base_channels)
    history = fit(
        model,
        loader,
        step=diffusion_step(ddpm_schedule(), conditional=True, p_uncond=0.1),
        epochs=epochs,
        lr=lr,
        weight_decay=0.0,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def evaluate_ddpm(model: nn.Module) -> dict[str, float]:
    """The share of guided samples the ``fashion_classifier`` checkpoint assigns to their class, at scales 0, 1 and 3
    (10 samples per class, 20 DDIM steps, seed 0)."""
    device = next(model.parameters()).device
    judge = load_course_checkpoint("fashion_classifier", device=device, verbose=False)
    result = guidance_class_share(
        model, judge, ddpm_schedule(), (0.0, 1.0, 3.0), samples_per_class=10, num_steps=20, seed=0
    )
    return {f"class_share_s{s:g}": v for s, v in result["shares"].items()}


register_checkpoint(
    CourseCheckpoint(
        name="ddpm_fashion",
        lesson="12_diffusion",
        description="the lesson's class-conditional DDPM U-Net (base 16 channels, cosine schedule, 10% label dropout) on 30,000 "
        "Fashion-MNIST images, 6 epochs",
        build=lambda: build_ddpm(DDPM_CHECKPOINT["base_channels"]),
        train=train_ddpm,
        config=DDPM_CHECKPOINT,
        evaluate=evaluate_ddpm,
        tolerances={"class_share_s3": 0.08, "class_share_s1": 0.08},
    )
)
