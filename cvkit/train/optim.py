r"""Sharpness-aware minimisation (Foret et al., "Sharpness-Aware Minimization for Efficiently
Improving Generalization", ICLR 2021, Algorithm 1).

SAM looks for weights whose whole neighbourhood has low loss. Each update takes two
gradients: the first, at :math:`w`, gives the ascent step
:math:`\hat\epsilon(w) = \rho \, g / \lVert g \rVert_2` (eq. 2); the second, at
:math:`w + \hat\epsilon(w)`, is the gradient the base optimiser applies at :math:`w` (eq. 3)::

    sam = SharpnessAwareMinimizer(model.parameters(), torch.optim.SGD, rho=0.05, lr=0.1)
    loss_fn(model(x), y).backward()
    sam.first_step()                  # w <- w + eps(w)
    loss_fn(model(x), y).backward()
    sam.second_step()                 # back to w, then the base optimiser's step with g(w + eps)
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch


class SharpnessAwareMinimizer(torch.optim.Optimizer):
    """Sharpness-aware minimisation (SAM, Foret et al. 2021; not Segment Anything, which is :mod:`cvkit.sam`) around
    any base optimiser.

    Args:
        params: parameters (or parameter groups) to optimise.
        base_optimizer: the optimiser class applied at the perturbed point (e.g. ``torch.optim.SGD``).
        rho: neighbourhood radius :math:`\\rho > 0` (the paper uses 0.05).
        **kwargs: passed to ``base_optimizer`` (``lr``, ``momentum``, ...).

    Raises:
        ValueError: ``rho`` not positive.
    """

    def __init__(self, params: Iterable, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05, **kwargs) -> None:
        if rho <= 0:
            raise ValueError(f"rho must be positive, got {rho}")
        super().__init__(params, dict(rho=rho, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def first_step(self, zero_grad: bool = True) -> None:
        r"""Move to :math:`w + \hat\epsilon(w)`, :math:`\hat\epsilon = \rho\, g / \lVert g \rVert_2` (eq. 2)."""
        grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            raise RuntimeError("first_step() needs gradients: call loss.backward() first")
        norm = torch.norm(torch.stack([g.norm(2) for g in grads]), 2)
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                e = p.grad * scale
                p.add_(e)
                self.state[p]["e_w"] = e
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = True) -> None:
        """Return to :math:`w` and apply the base optimiser with the gradient taken at :math:`w + \\hat\\epsilon` (eq. 3)."""
        for group in self.param_groups:
            for p in group["params"]:
                if "e_w" in self.state[p]:
                    p.sub_(self.state[p].pop("e_w"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One full SAM update; ``closure`` must zero grads, compute the loss, call backward and return the loss.

        Raises:
            ValueError: no closure (SAM needs two gradient evaluations).
        """
        if closure is None:
            raise ValueError("SharpnessAwareMinimizer.step needs a closure that recomputes the loss (or call first_step/second_step yourself)")
        loss = closure()
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()
        return loss


def trace_optimizer(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    start: Sequence[float],
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    steps: int = 100,
) -> torch.Tensor:
    """Run an optimiser on a function of a few variables and record the path (for landscape plots).

    Args:
        loss_fn: ``loss_fn(w) -> scalar`` for ``w`` a (P,) float64 tensor.
        start: the starting point (P values).
        make_optimizer: ``make_optimizer([w]) -> optimizer`` (e.g. ``lambda p: torch.optim.Adam(p, lr=0.05)``);
            a :class:`SharpnessAwareMinimizer` is driven through its closure.
        steps: number of updates.

    Returns:
        (steps + 1, P) float64 tensor: the start and the point after each update.

    Raises:
        ValueError: ``steps`` < 1, or ``loss_fn`` does not return a scalar.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    w = torch.tensor(list(start), dtype=torch.float64, requires_grad=True)
    optimizer = make_optimizer([w])
    path = [w.detach().clone()]

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(w)
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
        loss.backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
        path.append(w.detach().clone())
    return torch.stack(path)
