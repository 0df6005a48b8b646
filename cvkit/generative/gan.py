r"""Training a GAN: two networks, two optimizers, one minimax game (Goodfellow et al. 2014).

.. math::  \min_G \max_D\ \mathbb E_x[\log D(x)] + \mathbb E_z[\log(1 - D(G(z)))]   \quad\text{(eq. 1)}

Each step of :func:`train_gan`, read top to bottom:

1. **Discriminator**: push :math:`D(x) \to 1` on a real batch and :math:`D(G(z)) \to 0` on a fake
   one (the fakes are detached: this step must not change G).
2. **Generator**: push :math:`D(G(z)) \to 1`. This is the *non-saturating* loss
   :math:`-\log D(G(z))` the paper recommends (sec. 3): early on D rejects fakes easily, and
   :math:`\log(1 - D(G(z)))` would give G almost no gradient.

Adam with lr 2e-4 and beta1 = 0.5 follows DCGAN (Radford et al. 2016, sec. 4). ``fit`` does not
apply: it runs one optimizer on one loss.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.runtime import pick_device, seed_everything
from cvkit.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """:math:`-\\log D(x) - \\log(1 - D(G(z)))`, averaged: binary cross-entropy with targets 1 (real) and 0 (fake).

    Args:
        real_logits, fake_logits: (B,) discriminator logits. Returns: scalar.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss :math:`-\\log D(G(z))` (Goodfellow et al. 2014, sec. 3), averaged.

    Args:
        fake_logits: (B,) discriminator logits on generated images. Returns: scalar.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


@dataclass
class GANHistory:
    """Per-epoch means: ``d_loss``, ``g_loss``, ``d_real`` (mean D(x), a probability) and ``d_fake`` (mean D(G(z))).

    ``rows`` is a list of dicts, one per epoch, with those keys plus ``epoch`` and ``seconds``.
    """

    rows: list[dict] = field(default_factory=list)

    def column(self, key: str) -> list[float]:
        """One metric over the epochs."""
        return [r[key] for r in self.rows]


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    loader: Iterable,
    *,
    epochs: int = 1,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    max_steps_per_epoch: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    callback: Callable[[int, GANHistory], None] | None = None,
    verbose: bool = True,
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
) -> GANHistory:
    """Train a GAN with alternating discriminator and generator steps (see the module docstring).

    Args:
        generator: maps (B, latent_dim) noise to images in [-1, 1]; must have a ``latent_dim`` attribute.
        discriminator: maps images to (B,) logits.
        loader: batches ``(images (B, C, H, W) in [-1, 1], labels)`` (labels ignored), e.g. a
            :class:`cvkit.data.DeviceLoader` with ``mean=[0.5], std=[0.5]``.
        epochs: passes over ``loader``. lr, betas: Adam settings for both networks.
        max_steps_per_epoch: stop each epoch early (for quick runs).
        device: where to train (``None``: :func:`cvkit.runtime.pick_device`).
        seed: seeds every generator before training.
        callback: ``callback(epoch, history)`` after each epoch (e.g. to save a sample grid).
        verbose: print one line per epoch.
        progress: a tqdm progress bar per epoch (a notebook bar in Jupyter, text elsewhere).
        checkpoint_dir: save both networks, both optimizers, the history and the random state to
            ``checkpoint_dir/last.pt`` after every epoch, and resume from it when it exists (a notebook cell run
            again after a disconnect continues where it stopped; see :func:`cvkit.storage.checkpoint_dir`).

    Returns:
        :class:`GANHistory`.

    Raises:
        ValueError: ``generator`` has no ``latent_dim``, or the loader yields no batch.
    """
    latent_dim = getattr(generator, "latent_dim", None)
    if not isinstance(latent_dim, int):
        raise ValueError("the generator needs an int attribute latent_dim (the size of z)")
    seed_everything(seed)
    device = pick_device(device)
    generator.to(device).train()
    discriminator.to(device).train()
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    history = GANHistory()
    checkpoint = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        generator.load_state_dict(state["model"]["generator"])
        discriminator.load_state_dict(state["model"]["discriminator"])
        opt_g.load_state_dict(state["optimizer"]["generator"])
        opt_d.load_state_dict(state["optimizer"]["discriminator"])
        history.rows = list(state["history"])
        restore_rng_state(state["rng"])
        start = int(state["epoch"])
        if verbose:
            print(f"resumed from {checkpoint} after epoch {start}/{epochs}")
    for epoch in range(start + 1, epochs + 1):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch - 1)
        tic = time.perf_counter()
        sums = torch.zeros(4, device=device)  # d_loss, g_loss, d_real, d_fake, summed over steps (no host sync)
        steps = 0
        bar = _progress_bar(loader, max_steps_per_epoch, f"epoch {epoch}/{epochs}") if progress else None
        for i, batch in enumerate(loader):
            if max_steps_per_epoch is not None and i >= max_steps_per_epoch:
                break
            real = batch[0].to(device)
            z = torch.randn(real.shape[0], latent_dim, device=device)
            fake = generator(z)

            # 1. discriminator step: real -> 1, fake -> 0 (fake detached: G is not updated here)
            real_logits, fake_logits = discriminator(real), discriminator(fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

            # 2. generator step: make D call the same fakes real (non-saturating loss)
            g_loss = generator_loss(discriminator(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

            sums += torch.stack(
                [
                    d_loss.detach(),
                    g_loss.detach(),
                    torch.sigmoid(real_logits).mean().detach(),
                    torch.sigmoid(fake_logits).mean().detach(),
                ]
            )
            steps += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if steps == 0:
            raise ValueError("the loader produced no batches")
        d_loss_m, g_loss_m, d_real, d_fake = (sums / steps).tolist()
        row = dict(
            epoch=epoch,
            d_loss=d_loss_m,
            g_loss=g_loss_m,
            d_real=d_real,
            d_fake=d_fake,
            seconds=time.perf_counter() - tic,
        )
        history.rows.append(row)
        if checkpoint is not None:
            save_checkpoint(
                {
                    "model": {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()},
                    "optimizer": {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
                    "history": history.rows,
                    "rng": rng_state(),
                    "epoch": epoch,
                },
                checkpoint,
            )
        if verbose:
            print(
                f"epoch {epoch}/{epochs}: D loss {d_loss_m:.3f}, G loss {g_loss_m:.3f}, D(real) {d_real:.2f}, D(fake) {d_fake:.2f}, {row['seconds']:.1f} s"
            )
        if callback is not None:
            callback(epoch, history)
    return history


def _progress_bar(loader: Iterable, max_steps: int | None, desc: str):
    """A tqdm bar over one epoch (``tqdm.auto``: a widget in a notebook, text elsewhere)."""
    from tqdm.auto import tqdm

    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    if total is not None and max_steps is not None:
        total = min(total, max_steps)
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def discriminator_gradient_norms(discriminator: nn.Module, images: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert \nabla_x D(x) \rVert_2` for every image: how fast the discriminator's logit changes with its input.

    A discriminator whose gradients grow without bound gives the generator exploding or vanishing signals; spectral
    normalization (Miyato et al. 2018) bounds them by making every layer (nearly) 1-Lipschitz; WGAN-GP (Gulrajani et
    al. 2017) penalises them towards 1.

    Args:
        discriminator: images -> (B,) logits; evaluated in eval mode (BatchNorm's running statistics), mode restored.
        images: (B, C, H, W) in the discriminator's range.

    Returns:
        (B,) float32 norms.
    """
    was = discriminator.training
    discriminator.eval()
    try:
        x = images.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(discriminator(x).sum(), x)
    finally:
        discriminator.train(was)
    return grad.flatten(1).norm(dim=1)
