r"""Derivative-free optimisation: minimise a function you can only evaluate (lecture 01; seed 002, "Algorithms
for optimization problems").

Gradient methods need :math:`\nabla f`. When the derivative is not defined (integers, a step function such as a
0-1 error) or too hard to compute (a simulator, a black box), derivative-free methods sample the variable space and
search. Two classics, both deterministic given a seed:

* :func:`random_search`: a (1+1) evolution strategy (Rechenberg 1973; Rastrigin 1963): perturb the best point with
  Gaussian noise, keep the candidate when it is better, widen the step after a success and shrink it after a failure
  (the "1/5th success rule" in its simplest multiplicative form).
* :func:`nelder_mead`: the downhill simplex (Nelder & Mead, Computer Journal 1965) with the standard coefficients
  reflection 1, expansion 2, contraction 1/2, shrink 1/2, in the order of Lagarias et al. (SIAM J. Optim. 1998),
  which is also scipy's.

Both take ``f(w) -> float`` on a (P,) float64 tensor, count every evaluation, and return an :class:`OptimizeResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

Objective = Callable[[torch.Tensor], "float | torch.Tensor"]


@dataclass
class OptimizeResult:
    """What a derivative-free (or constrained) run found.

    Attributes:
        x: (P,) float64, the best point.
        fun: f(x), a float.
        evaluations: how many times f was called.
        path: (T, P) float64, the best point after each iteration (the start first), for plots.
        values: (T,) float64, f along ``path``.
    """

    x: torch.Tensor
    fun: float
    evaluations: int
    path: torch.Tensor = field(repr=False)
    values: torch.Tensor = field(repr=False)


def _start(x0: Sequence[float] | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x0, dtype=torch.float64).detach().clone().reshape(-1)
    if x.numel() == 0:
        raise ValueError("x0 must hold at least one value")
    return x


def _evaluate(f: Objective, x: torch.Tensor) -> float:
    with torch.no_grad():
        value = f(x)
    value = float(value)
    return value if value == value else float("inf")  # NaN counts as infinitely bad


def random_search(
    f: Objective,
    x0: Sequence[float] | torch.Tensor,
    *,
    sigma: float = 0.5,
    iterations: int = 200,
    grow: float = 1.5,
    shrink: float = 0.9,
    generator: torch.Generator | None = None,
) -> OptimizeResult:
    r"""(1+1) evolution strategy: ``x' = x + sigma * N(0, I)``; keep ``x'`` if ``f(x') <= f(x)``.

    After a success the step widens (``sigma *= grow``), after a failure it narrows (``sigma *= shrink``), so the
    search takes big steps far from a minimum and small ones near it; on a tie (a plateau of a step function) it
    moves and keeps the step. Uses no derivative of ``f``.

    Args:
        f: objective, ``f(x)`` for ``x`` a (P,) float64 tensor, returning a float or a scalar tensor (NaN = +inf).
        x0: start, P values.
        sigma: initial step standard deviation (units of ``x``), > 0.
        iterations: candidates to try (one evaluation each), >= 1.
        grow, shrink: step multipliers after a success (> 1) and a failure (in (0, 1)).
        generator: seeds the perturbations (``None``: torch's global generator).

    Returns:
        :class:`OptimizeResult` with ``evaluations = iterations + 1``.

    Raises:
        ValueError: a non-positive ``sigma``, ``iterations`` < 1, or multipliers on the wrong side of 1.
    """
    if sigma <= 0 or iterations < 1:
        raise ValueError(f"need sigma > 0 and iterations >= 1, got sigma={sigma}, iterations={iterations}")
    if not (grow > 1 and 0 < shrink < 1):
        raise ValueError(f"need grow > 1 and 0 < shrink < 1, got grow={grow}, shrink={shrink}")
    x = _start(x0)
    fx = _evaluate(f, x)
    path, values = [x.clone()], [fx]
    for _ in range(iterations):
        candidate = x + sigma * torch.randn(x.shape, generator=generator, dtype=torch.float64)
        fc = _evaluate(f, candidate)
        if fc < fx:  # success: move and widen
            x, fx, sigma = candidate, fc, sigma * grow
        elif fc == fx:  # a plateau (a step function): move, keep the step, so the search can drift off it
            x = candidate
        else:
            sigma *= shrink
        path.append(x.clone())
        values.append(fx)
    return OptimizeResult(x, fx, iterations + 1, torch.stack(path), torch.tensor(values, dtype=torch.float64))


def nelder_mead(
    f: Objective,
    x0: Sequence[float] | torch.Tensor,
    *,
    step: float = 0.05,
    iterations: int = 200,
    xatol: float = 1e-4,
    fatol: float = 1e-4,
) -> OptimizeResult:
    r"""Downhill simplex (Nelder & Mead 1965): move a simplex of P + 1 points by reflecting its worst vertex.

    Each iteration sorts the vertices by f, takes the centroid :math:`\bar x` of all but the worst
    :math:`x_{P}`, and tries in turn: reflection :math:`x_r = \bar x + (\bar x - x_P)`; expansion
    :math:`x_e = \bar x + 2(\bar x - x_P)` if :math:`x_r` is the best so far; an outside
    (:math:`\bar x + \tfrac12 (x_r - \bar x)`) or inside (:math:`\bar x - \tfrac12(\bar x - x_P)`) contraction
    otherwise; and when all fail, a shrink of every vertex halfway towards the best one. Stops when the simplex is
    smaller than ``xatol`` and its values differ by less than ``fatol`` (scipy's criterion).

    The initial simplex is scipy's: ``x0`` and, for each coordinate i, ``x0`` with ``x0[i] *= 1 + step``
    (or ``x0[i] = 0.00025`` when it is zero).

    Args:
        f: objective on a (P,) float64 tensor (NaN = +inf).
        x0: start, P values.
        step: relative size of the initial simplex, > 0.
        iterations: maximum number of iterations, >= 1.
        xatol, fatol: convergence tolerances on the simplex size and on f.

    Returns:
        :class:`OptimizeResult` (``path`` holds the best vertex after each iteration).

    Raises:
        ValueError: ``step`` <= 0 or ``iterations`` < 1.
    """
    if step <= 0 or iterations < 1:
        raise ValueError(f"need step > 0 and iterations >= 1, got step={step}, iterations={iterations}")
    x = _start(x0)
    n = x.numel()
    simplex = [x.clone()]
    for i in range(n):
        v = x.clone()
        v[i] = v[i] * (1 + step) if v[i] != 0 else 0.00025
        simplex.append(v)
    simplex = torch.stack(simplex)  # (P + 1, P)
    values = torch.tensor([_evaluate(f, v) for v in simplex], dtype=torch.float64)
    evaluations = n + 1
    order = torch.argsort(values, stable=True)
    simplex, values = simplex[order], values[order]
    path, best_values = [simplex[0].clone()], [float(values[0])]
    for _ in range(iterations):
        if (simplex[1:] - simplex[0]).abs().max() <= xatol and (values[1:] - values[0]).abs().max() <= fatol:
            break
        centroid = simplex[:-1].mean(0)
        worst = simplex[-1]
        xr = centroid + (centroid - worst)  # reflection
        fr = _evaluate(f, xr)
        evaluations += 1
        shrink = False
        if fr < values[0]:
            xe = centroid + 2 * (centroid - worst)  # expansion
            fe = _evaluate(f, xe)
            evaluations += 1
            new, fnew = (xe, fe) if fe < fr else (xr, fr)
        elif fr < values[-2]:
            new, fnew = xr, fr
        elif fr < values[-1]:
            xc = centroid + 0.5 * (xr - centroid)  # outside contraction
            fc = _evaluate(f, xc)
            evaluations += 1
            new, fnew = xc, fc
            shrink = fc > fr
        else:
            xc = centroid - 0.5 * (centroid - worst)  # inside contraction
            fc = _evaluate(f, xc)
            evaluations += 1
            new, fnew = xc, fc
            shrink = fc >= values[-1]
        if shrink:
            simplex = simplex[0] + 0.5 * (simplex - simplex[0])  # every vertex halfway to the best
            values = torch.cat([values[:1], torch.tensor([_evaluate(f, v) for v in simplex[1:]], dtype=torch.float64)])
            evaluations += n
        else:
            simplex[-1], values[-1] = new, fnew
        order = torch.argsort(values, stable=True)
        simplex, values = simplex[order], values[order]
        path.append(simplex[0].clone())
        best_values.append(float(values[0]))
    return OptimizeResult(
        simplex[0].clone(),
        float(values[0]),
        evaluations,
        torch.stack(path),
        torch.tensor(best_values, dtype=torch.float64),
    )
