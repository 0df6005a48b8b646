r"""CycleGAN: image-to-image translation from unpaired examples (Zhu, Park, Isola & Efros, ICCV 2017; lecture 12).

Two generators, :math:`G: X \to Y` and :math:`F: Y \to X`, and two discriminators, :math:`D_Y` (real y or G(x)?) and
:math:`D_X`. Trained on a set of x and an *unrelated* set of y (no pairs), the full objective (eq. 3) is

.. math:: \mathcal L = \mathcal L_{GAN}(G, D_Y) + \mathcal L_{GAN}(F, D_X)
          + \lambda\,\big(\lVert F(G(x)) - x\rVert_1 + \lVert G(F(y)) - y\rVert_1\big),

with least-squares GAN losses (sec. 4: :math:`(D(y) - 1)^2 + D(G(x))^2` for D, :math:`(D(G(x)) - 1)^2` for G) and
:math:`\lambda = 10`. The adversarial terms only ask G's outputs to *look like* Y; the **cycle-consistency** term
asks the translation to keep enough of x to bring it back, which is what ties each output to its input. An optional
identity term (sec. 5.2, :math:`\lVert G(y) - y\rVert_1`) keeps colours when it is not needed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.runtime import pick_device, seed_everything


def lsgan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017), CycleGAN's choice: mean of ``(D - 1)^2`` for real, ``D^2`` for fake."""
    return F.mse_loss(logits, torch.ones_like(logits) if real else torch.zeros_like(logits))


def cycle_consistency_loss(G: nn.Module, F_: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert F(G(x)) - x\rVert_1 + \lVert G(F(y)) - y\rVert_1`, means over pixels (eq. 2)."""
    return (F_(G(x)) - x).abs().mean() + (G(F_(y)) - y).abs().mean()


@dataclass
class CycleGANHistory:
    """Per-step losses (lists): ``gan`` (both generators' adversarial terms), ``cycle``, ``identity``, ``d`` (both discriminators)."""

    gan: list[float] = field(default_factory=list)
    cycle: list[float] = field(default_factory=list)
    identity: list[float] = field(default_factory=list)
    d: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_cyclegan(
    G: nn.Module,
    F_: nn.Module,
    D_x: nn.Module,
    D_y: nn.Module,
    xs: Iterable[torch.Tensor],
    ys: Iterable[torch.Tensor],
    *,
    steps: int = 500,
    lr: float = 2e-4,
    cycle_weight: float = 10.0,
    identity_weight: float = 0.0,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> CycleGANHistory:
    """Train CycleGAN's four networks for ``steps`` steps on unpaired batches (Adam, betas (0.5, 0.999), as the paper).

    Args:
        G: X -> Y generator. F_: Y -> X generator. D_x, D_y: discriminators returning logits of any shape.
        xs, ys: iterables of image batches from X and from Y (cycled; they are never paired).
        steps: generator/discriminator updates. lr: learning rate.
        cycle_weight: :math:`\\lambda` (10 in the paper; 0 trains the adversarial terms alone, for comparison).
        identity_weight: weight of the identity term (needs X and Y of the same channels).
        device: ``None``: :func:`cvkit.runtime.pick_device`. seed: seeds everything.

    Returns:
        :class:`CycleGANHistory`.

    Raises:
        ValueError: ``steps`` < 1 or negative weights.
    """
    if steps < 1 or cycle_weight < 0 or identity_weight < 0:
        raise ValueError(f"need steps >= 1 and non-negative weights, got {steps}, {cycle_weight}, {identity_weight}")
    seed_everything(seed)
    device = pick_device(device)
    for m in (G, F_, D_x, D_y):
        m.to(device).train()
    opt_g = torch.optim.Adam(itertools.chain(G.parameters(), F_.parameters()), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(D_x.parameters(), D_y.parameters()), lr=lr, betas=(0.5, 0.999))
    history = CycleGANHistory()
    losses = []  # detached per-step losses, read once at the end (no host sync per step on a GPU)
    tic = time.perf_counter()
    batches = zip(itertools.cycle(xs), itertools.cycle(ys))
    for _, (x, y) in zip(range(steps), batches):
        x, y = x.to(device), y.to(device)
        # generators: fool both discriminators, and come back (eq. 3)
        fake_y, fake_x = G(x), F_(y)
        gan = lsgan_loss(D_y(fake_y), True) + lsgan_loss(D_x(fake_x), True)
        cycle = (F_(fake_y) - x).abs().mean() + (G(fake_x) - y).abs().mean()
        identity = (
            (G(y) - y).abs().mean() + (F_(x) - x).abs().mean()
            if identity_weight > 0
            else torch.zeros((), device=device)
        )
        opt_g.zero_grad(set_to_none=True)
        (gan + cycle_weight * cycle + identity_weight * identity).backward()
        opt_g.step()
        # discriminators: real -> 1, translated (detached) -> 0; halved as in the paper
        d = 0.5 * (
            lsgan_loss(D_y(y), True)
            + lsgan_loss(D_y(fake_y.detach()), False)
            + lsgan_loss(D_x(x), True)
            + lsgan_loss(D_x(fake_x.detach()), False)
        )
        opt_d.zero_grad(set_to_none=True)
        d.backward()
        opt_d.step()
        losses.append(torch.stack([gan, cycle, identity, d]).detach())
    if losses:
        history.gan, history.cycle, history.identity, history.d = torch.stack(losses).T.tolist()
    history.seconds = time.perf_counter() - tic
    return history
