r"""How sharp is a minimum? Three measurements of the loss around trained weights (lecture 01).

Sharpness-aware minimisation (:class:`cvkit.train.optim.SharpnessAwareMinimizer`) claims to find flatter minima
than plain training. These functions measure "flat" three ways, on any model and any loss:

* :func:`top_hessian_eigenvalue`: the largest curvature :math:`\lambda_{max}(\nabla^2 L)`, by power iteration on
  Hessian-vector products (Pearlmutter 1994: :math:`Hv = \nabla(\nabla L \cdot v)`, two backward passes, no
  Hessian stored). Keskar et al. (ICLR 2017) and Foret et al. (ICLR 2021, sec. 4.2) report it.
* :func:`worst_case_loss_increase`: :math:`\max_{\lVert\epsilon\rVert_2 \le \rho} L(w + \epsilon) - L(w)`, the
  quantity SAM minimises (Foret et al., eq. 1), found by projected gradient ascent in the ball. For a quadratic
  at its minimum it is :math:`\tfrac12 \lambda_{max} \rho^2`.
* :func:`loss_along_direction`: :math:`L(w + \alpha d)` for a filter-normalised random direction ``d`` (Li et al.,
  "Visualizing the loss landscape of neural nets", NeurIPS 2018, sec. 4), for a 1-D picture of the valley.

``closure`` is always a function of no arguments that computes the scalar loss with the model's *current*
parameters (``lambda: F.cross_entropy(model(x), y)``); put the model in eval mode first so BatchNorm and dropout
do not change between calls. Parameters are restored exactly on return.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn as nn

Closure = Callable[[], torch.Tensor]


def _params(params: Iterable[torch.Tensor] | nn.Module) -> list[torch.Tensor]:
    params = list(params.parameters() if isinstance(params, nn.Module) else params)
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no parameter requires a gradient")
    return params


def _loss(closure: Closure) -> torch.Tensor:
    loss = closure()
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise ValueError(f"closure must return a scalar tensor, got {getattr(loss, 'shape', type(loss).__name__)}")
    return loss


def hessian_vector_product(
    closure: Closure, params: Iterable[torch.Tensor] | nn.Module, vector: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    r""":math:`H v` for the Hessian :math:`H = \nabla^2 L` of ``closure()`` with respect to ``params``.

    Args:
        closure: computes the scalar loss. params: tensors (or a module's trainable parameters).
        vector: one tensor per parameter, same shapes.

    Returns:
        one tensor per parameter (the blocks of :math:`Hv`), detached.

    Raises:
        ValueError: ``vector`` does not match ``params`` in number or shapes.
    """
    params = _params(params)
    if len(vector) != len(params) or any(v.shape != p.shape for v, p in zip(vector, params)):
        raise ValueError("vector must hold one tensor per parameter, with the same shapes")
    grads = torch.autograd.grad(_loss(closure), params, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(grads, vector))
    return [h.detach() for h in torch.autograd.grad(dot, params)]


def top_hessian_eigenvalue(
    closure: Closure,
    params: Iterable[torch.Tensor] | nn.Module,
    *,
    iterations: int = 20,
    generator: torch.Generator | None = None,
) -> float:
    r"""The eigenvalue of largest magnitude of :math:`\nabla^2 L`, by power iteration: :math:`v \leftarrow Hv/\lVert Hv\rVert`.

    At a minimum the Hessian is (nearly) positive semi-definite, so this is :math:`\lambda_{max}`, the sharpness.
    Each iteration costs one Hessian-vector product (about two backward passes).

    Args:
        closure: computes the scalar loss. params: tensors or a module.
        iterations: power iterations >= 1 (20 gives 2-3 digits on the networks of the course).
        generator: seeds the random start vector (CPU generator; the vector is moved to each parameter's device).

    Returns:
        the Rayleigh quotient :math:`v^\top H v` at the last iterate (a float, units of the loss per unit weight²).

    Raises:
        ValueError: ``iterations`` < 1, no trainable parameter, or a non-scalar loss.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    params = _params(params)
    v = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    norm = torch.sqrt(sum((x**2).sum() for x in v))
    v = [x / norm for x in v]
    eigenvalue = 0.0
    for _ in range(iterations):
        hv = hessian_vector_product(closure, params, v)
        eigenvalue = float(sum((a * b).sum() for a, b in zip(hv, v)))  # Rayleigh quotient, v has unit norm
        norm = torch.sqrt(sum((x**2).sum() for x in hv))
        if float(norm) == 0:
            return 0.0
        v = [x / norm for x in hv]
    return eigenvalue


@torch.no_grad()
def _add(params: list[torch.Tensor], delta: list[torch.Tensor], scale: float = 1.0) -> None:
    for p, d in zip(params, delta):
        p.add_(d, alpha=scale)


def worst_case_loss_increase(
    closure: Closure,
    params: Iterable[torch.Tensor] | nn.Module,
    rho: float,
    *,
    steps: int = 10,
    generator: torch.Generator | None = None,
) -> float:
    r""":math:`\max_{\lVert\epsilon\rVert_2 \le \rho} L(w+\epsilon) - L(w)` by projected gradient ascent (SAM's eq. 1).

    Starts from a random point on the sphere of radius ``rho`` (the gradient vanishes at an exact minimum, so
    ascent could not start from zero), then repeats :math:`\epsilon \leftarrow \rho\,\frac{\epsilon + \rho g/\lVert
    g\rVert}{\lVert\epsilon + \rho g/\lVert g\rVert\rVert}` with :math:`g = \nabla L(w+\epsilon)`; keeps the largest
    loss seen. The parameters are restored on return.

    Args:
        closure: computes the scalar loss. params: tensors or a module.
        rho: ball radius > 0 (units of the weights; SAM's default 0.05).
        steps: ascent steps >= 1. generator: seeds the random start.

    Returns:
        the loss increase (a float >= 0 up to round-off).

    Raises:
        ValueError: ``rho`` <= 0 or ``steps`` < 1.
    """
    if rho <= 0 or steps < 1:
        raise ValueError(f"need rho > 0 and steps >= 1, got rho={rho}, steps={steps}")
    params = _params(params)
    with torch.no_grad():
        base = float(_loss(closure))
    eps = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    norm = torch.sqrt(sum((e**2).sum() for e in eps))
    eps = [e * (rho / norm) for e in eps]
    best = -float("inf")
    for _ in range(steps):
        _add(params, eps)
        try:
            loss = _loss(closure)
            grads = torch.autograd.grad(loss, params)
        finally:
            _add(params, eps, -1.0)
        best = max(best, float(loss.detach()))
        gnorm = torch.sqrt(sum((g**2).sum() for g in grads))
        if float(gnorm) == 0:
            break
        eps = [e + rho * g / gnorm for e, g in zip(eps, grads)]
        norm = torch.sqrt(sum((e**2).sum() for e in eps))
        eps = [e * (rho / norm) for e in eps]
    _add(params, eps)
    try:
        with torch.no_grad():
            best = max(best, float(_loss(closure)))
    finally:
        _add(params, eps, -1.0)
    return best - base


def filter_normalized_direction(model: nn.Module, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    r"""A random direction scaled filter by filter to the weights' norms (Li et al. 2018, eq. 1).

    Each output filter (row of a weight's first dimension) of ``d`` gets the norm of the same filter of the
    weights, so networks of different scale can be compared; biases and BatchNorm parameters (1-D) get zero, as in
    the paper.

    Args:
        model: the trained network. generator: seeds the direction.

    Returns:
        one tensor per trainable parameter (``model.parameters()`` order).
    """
    direction = []
    for p in _params(model):
        if p.dim() <= 1:
            direction.append(torch.zeros_like(p))
            continue
        d = torch.randn(p.shape, generator=generator).to(p)
        dims = tuple(range(1, p.dim()))
        d = d * (p.detach().norm(dim=dims, keepdim=True) / (d.norm(dim=dims, keepdim=True) + 1e-10))
        direction.append(d)
    return direction


@torch.no_grad()
def loss_along_direction(
    closure: Closure,
    params: Iterable[torch.Tensor] | nn.Module,
    direction: Sequence[torch.Tensor],
    alphas: Sequence[float] | torch.Tensor,
) -> torch.Tensor:
    r""":math:`L(w + \alpha d)` for each :math:`\alpha` in ``alphas``; the parameters are restored on return.

    Args:
        closure: computes the scalar loss. params: tensors or a module (same order as ``direction``).
        direction: one tensor per parameter (e.g. :func:`filter_normalized_direction`).
        alphas: the step sizes (A,).

    Returns:
        (A,) float64 losses.

    Raises:
        ValueError: ``direction`` does not match ``params``.
    """
    params = _params(params)
    if len(direction) != len(params) or any(d.shape != p.shape for d, p in zip(direction, params)):
        raise ValueError("direction must hold one tensor per parameter, with the same shapes")
    out = []
    for a in torch.as_tensor(alphas, dtype=torch.float64).tolist():
        _add(params, list(direction), a)
        try:
            out.append(float(_loss(closure)))
        finally:
            _add(params, list(direction), -a)
    return torch.tensor(out, dtype=torch.float64)
