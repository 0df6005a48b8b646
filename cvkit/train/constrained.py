r"""Constrained optimisation: minimise :math:`f(w)` subject to :math:`h(w) = 0` and :math:`g(w) \ge 0`
(lecture 01; seed 002, "Optimization problems").

Two methods that reuse gradient descent:

* :func:`projected_gradient_descent`: a gradient step, then the nearest feasible point
  (:math:`w \leftarrow \Pi_C(w - \lambda\nabla f(w))`), for sets whose projection is cheap: a hyperplane
  (:func:`project_onto_hyperplane`), a ball (:func:`project_onto_ball`; a max-norm weight constraint is one).
* :func:`augmented_lagrangian`: the method of multipliers (Hestenes 1969, Powell 1969; Rockafellar's form for
  inequalities; Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 17.36 and 17.65). It minimises, without
  constraints,

  .. math:: L_A(w; \lambda, \nu, \mu) = f(w) - \sum_i \lambda_i h_i(w) + \frac\mu2 \sum_i h_i(w)^2
            + \frac1{2\mu}\sum_j \big(\max(0, \nu_j - \mu g_j(w))^2 - \nu_j^2\big)

  then updates the multipliers :math:`\lambda_i \leftarrow \lambda_i - \mu h_i(w)`,
  :math:`\nu_j \leftarrow \max(0, \nu_j - \mu g_j(w))`. At the solution :math:`\nabla f = \sum_i \lambda_i \nabla h_i
  + \sum_j \nu_j \nabla g_j` (the KKT conditions), so the multipliers come out as a by-product.

Functions take and return float64 tensors; gradients come from autograd.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from cvkit.train.derivative_free import OptimizeResult, _start

Function = Callable[[torch.Tensor], torch.Tensor]


def project_onto_hyperplane(w: torch.Tensor, a: Sequence[float] | torch.Tensor, b: float) -> torch.Tensor:
    r"""The nearest point to ``w`` on :math:`\{v : a^\top v = b\}`: :math:`w - \frac{a^\top w - b}{\lVert a\rVert^2} a`.

    Args:
        w: (P,) point. a: (P,) normal vector (not zero). b: offset.

    Returns:
        (P,) tensor of ``w``'s dtype.

    Raises:
        ValueError: ``a`` is zero or its length differs from ``w``'s.
    """
    a = torch.as_tensor(a, dtype=w.dtype, device=w.device)
    if a.shape != w.shape or float(a.norm()) == 0:
        raise ValueError(f"a must be a non-zero vector of shape {tuple(w.shape)}, got {a.tolist()}")
    return w - (a @ w - b) / (a @ a) * a


def project_onto_ball(
    w: torch.Tensor, radius: float, center: Sequence[float] | torch.Tensor | None = None
) -> torch.Tensor:
    r"""The nearest point to ``w`` in the ball :math:`\lVert v - c\rVert_2 \le r` (``w`` itself when inside).

    Args:
        w: (P,) point. radius: r > 0. center: (P,) c (default: the origin).

    Returns:
        (P,) tensor of ``w``'s dtype.

    Raises:
        ValueError: ``radius`` <= 0.
    """
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    c = torch.zeros_like(w) if center is None else torch.as_tensor(center, dtype=w.dtype, device=w.device)
    d = w - c
    norm = d.norm()
    return w if norm <= radius else c + d * (radius / norm)


def _value_and_grad(f: Function, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    value = f(x)
    if value.dim() != 0:
        raise ValueError(f"f must return a scalar tensor, got shape {tuple(value.shape)}")
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad


def projected_gradient_descent(
    f: Function,
    project: Callable[[torch.Tensor], torch.Tensor],
    x0: Sequence[float] | torch.Tensor,
    *,
    lr: float = 0.1,
    steps: int = 100,
) -> OptimizeResult:
    r"""Gradient descent that stays feasible: :math:`w \leftarrow \Pi_C(w - \lambda \nabla f(w))`.

    Args:
        f: differentiable objective on a (P,) float64 tensor, returning a scalar tensor.
        project: :math:`\Pi_C`, maps any (P,) point to the nearest feasible one (e.g.
            ``lambda w: project_onto_hyperplane(w, [1, 1], 1)``).
        x0: start (projected first). lr: step size > 0. steps: number of updates >= 1.

    Returns:
        :class:`OptimizeResult` (``evaluations`` counts gradient evaluations).

    Raises:
        ValueError: ``lr`` <= 0, ``steps`` < 1, or ``f`` not scalar.
    """
    if lr <= 0 or steps < 1:
        raise ValueError(f"need lr > 0 and steps >= 1, got lr={lr}, steps={steps}")
    x = project(_start(x0))
    path, values = [x.clone()], []
    for _ in range(steps):
        value, grad = _value_and_grad(f, x)
        values.append(value)
        x = project(x - lr * grad).detach()
        path.append(x.clone())
    with torch.no_grad():
        final = float(f(x))
    values.append(final)
    return OptimizeResult(x, final, steps + 1, torch.stack(path), torch.tensor(values, dtype=torch.float64))


def augmented_lagrangian(
    f: Function,
    x0: Sequence[float] | torch.Tensor,
    *,
    equalities: Sequence[Function] = (),
    inequalities: Sequence[Function] = (),
    mu: float = 10.0,
    outer: int = 20,
    inner: int = 50,
    tol: float = 1e-8,
) -> tuple[OptimizeResult, torch.Tensor, torch.Tensor]:
    r"""Minimise ``f`` subject to ``h(w) = 0`` for each ``h`` in ``equalities`` and ``g(w) >= 0`` for each ``g`` in
    ``inequalities``, by the method of multipliers (module docstring).

    Each outer iteration minimises :math:`L_A` with L-BFGS (``inner`` iterations, strong-Wolfe line search) and
    updates the multipliers; it stops when the constraint violation falls below ``tol``.

    Args:
        f: differentiable objective on a (P,) float64 tensor, returning a scalar tensor.
        x0: start, P values.
        equalities, inequalities: scalar-valued differentiable constraint functions.
        mu: penalty weight > 0 (kept fixed: the multipliers do the rest).
        outer: multiplier updates >= 1. inner: L-BFGS iterations per update >= 1.
        tol: stop when :math:`\max(|h_i|, \max(0, -g_j)) <` ``tol``.

    Returns:
        ``(result, lambdas, nus)``: the :class:`OptimizeResult` (``path`` after each outer iteration) and the
        multipliers of the equalities (E,) and inequalities (I,), float64.

    Raises:
        ValueError: no constraint (use plain gradient descent), ``mu`` <= 0, ``outer`` or ``inner`` < 1.
    """
    if not equalities and not inequalities:
        raise ValueError("augmented_lagrangian needs at least one constraint")
    if mu <= 0 or outer < 1 or inner < 1:
        raise ValueError(f"need mu > 0, outer >= 1 and inner >= 1, got mu={mu}, outer={outer}, inner={inner}")
    x = _start(x0)
    lam = torch.zeros(len(equalities), dtype=torch.float64)
    nu = torch.zeros(len(inequalities), dtype=torch.float64)
    evaluations = 0

    def lagrangian(w: torch.Tensor) -> torch.Tensor:
        value = f(w)
        for i, h in enumerate(equalities):
            hw = h(w)
            value = value - lam[i] * hw + 0.5 * mu * hw**2  # eq. 17.36
        for j, g in enumerate(inequalities):
            value = value + ((nu[j] - mu * g(w)).clamp_min(0) ** 2 - nu[j] ** 2) / (2 * mu)  # eq. 17.65
        return value

    path, values = [x.clone()], [float(f(x).detach())]
    for _ in range(outer):
        w = x.clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [w], lr=1, max_iter=inner, line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14
        )

        def closure() -> torch.Tensor:
            nonlocal evaluations
            opt.zero_grad()
            loss = lagrangian(w)
            loss.backward()
            evaluations += 1
            return loss

        opt.step(closure)
        x = w.detach().clone()
        with torch.no_grad():
            h_values = torch.stack([h(x) for h in equalities]) if equalities else torch.zeros(0, dtype=torch.float64)
            g_values = (
                torch.stack([g(x) for g in inequalities]) if inequalities else torch.zeros(0, dtype=torch.float64)
            )
            lam = lam - mu * h_values
            nu = (nu - mu * g_values).clamp_min(0)
            violation = torch.cat([h_values.abs(), (-g_values).clamp_min(0)]).max()
            path.append(x.clone())
            values.append(float(f(x)))
        if float(violation) < tol:
            break
    result = OptimizeResult(x, values[-1], evaluations, torch.stack(path), torch.tensor(values, dtype=torch.float64))
    return result, lam, nu
