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

import time
from typing import Callable, Iterable, Literal, Sequence

import torch
import torch.nn.functional as F

from cvkit.runtime import pick_device, seed_everything
from cvkit.train.history import History
from cvkit.train.loop import evaluate


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

    def __init__(
        self, params: Iterable, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05, **kwargs
    ) -> None:
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
            raise ValueError(
                "SharpnessAwareMinimizer.step needs a closure that recomputes the loss (or call first_step/second_step yourself)"
            )
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


def fit_sharpness_aware(
    model: torch.nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    rho: float = 0.05,
    base: Literal["adam", "sgd"] = "adam",
    lr: float = 1e-3,
    epochs: int = 1,
    device: str | torch.device | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> History:
    r"""Train a classifier with SAM around Adam or SGD, or (``rho=0``) with the base optimiser alone.

    The same loop for both, so a comparison differs only in the update: with ``rho > 0`` each step takes the two
    gradients of :class:`SharpnessAwareMinimizer` (twice the cost); with ``rho = 0`` SAM's perturbation vanishes and
    the step is the base optimiser's. Cross-entropy on ``(images, labels)`` batches, constant learning rate, no
    weight decay (so nothing but SAM separates the two runs).

    Args:
        model: a classifier returning (B, K) logits; trained in place on ``device``.
        train_loader, val_loader: iterables of ``(images (B, C, H, W), labels (B,) int64)`` (``set_epoch`` is called
            when the loader has it).
        rho: SAM's radius (Foret et al. use 0.05); 0 trains with the base optimiser alone.
        base: ``"adam"`` (``torch.optim.Adam``) or ``"sgd"`` (momentum 0.9).
        lr: learning rate. epochs: passes over ``train_loader`` >= 1.
        device: ``None``: :func:`cvkit.runtime.pick_device`. seed: seeds everything first.
        verbose: one line per epoch.

    Returns:
        :class:`cvkit.train.History` with ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``
        (when ``val_loader`` is given), ``seconds`` and ``gradient_evaluations`` (cumulative).

    Raises:
        ValueError: ``rho`` < 0, ``epochs`` < 1, or an unknown ``base``.
    """
    if rho < 0 or epochs < 1:
        raise ValueError(f"need rho >= 0 and epochs >= 1, got rho={rho}, epochs={epochs}")
    bases = {"adam": (torch.optim.Adam, {}), "sgd": (torch.optim.SGD, {"momentum": 0.9})}
    if base not in bases:
        raise ValueError(f"base must be one of {sorted(bases)}, got {base!r}")
    seed_everything(seed)
    device = pick_device(device)
    model.to(device).train()
    cls, extra = bases[base]
    optimizer = (
        SharpnessAwareMinimizer(model.parameters(), cls, rho=rho, lr=lr, **extra)
        if rho > 0
        else cls(model.parameters(), lr=lr, **extra)
    )
    history = History()
    evaluations = 0
    for epoch in range(epochs):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        tic = time.perf_counter()
        total, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for batch in train_loader:
            x, y = batch[0].to(device), batch[1].to(device)

            if rho > 0:
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                loss.backward()
                optimizer.first_step(zero_grad=True)
                F.cross_entropy(model(x), y).backward()
                optimizer.second_step(zero_grad=True)
                evaluations += 2
            else:
                optimizer.zero_grad()
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                loss.backward()
                optimizer.step()
                evaluations += 1
            total += loss.detach() * y.shape[0]
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
        if seen == 0:
            raise ValueError("train_loader yielded no batch")
        row = {"epoch": epoch + 1, "train_loss": float(total) / seen, "train_accuracy": float(correct) / seen}
        if val_loader is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, val_loader, device=device).items()})
        row["seconds"] = time.perf_counter() - tic
        row["gradient_evaluations"] = evaluations
        history.append(row)
        if verbose:
            name = f"SAM({base}, rho={rho})" if rho > 0 else base
            print(
                f"{name} epoch {epoch + 1}/{epochs}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.endswith(("loss", "accuracy")))
            )
    model.eval()
    return history
