"""Derivative-free search against scipy's Nelder-Mead, a hand-computed simplex step, and a function without a gradient."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize, rosen

from cvkit.train.derivative_free import nelder_mead, random_search


def rosenbrock(w):
    return torch.as_tensor(rosen(w.numpy()))


def test_nelder_mead_matches_scipy_on_rosenbrock():
    ours = nelder_mead(rosenbrock, [-1.2, 1.0], iterations=400)
    ref = minimize(
        rosen, np.array([-1.2, 1.0]), method="Nelder-Mead", options=dict(maxiter=400, xatol=1e-4, fatol=1e-4)
    )
    assert ref.success
    np.testing.assert_allclose(ours.x.numpy(), ref.x, atol=1e-3)
    np.testing.assert_allclose(ours.x.numpy(), [1.0, 1.0], atol=1e-3)
    # the same algorithm with the same initial simplex and order of tests: the same number of evaluations (+-10%)
    assert abs(ours.evaluations - ref.nfev) <= 0.1 * ref.nfev, (ours.evaluations, ref.nfev)


def test_nelder_mead_first_step_by_hand():
    # f = x^2 + y^2 from (1, 1): simplex (1, 1), (1.05, 1), (1, 1.05) -> values 2, 2.1025, 2.1025 (sorted stably)
    # worst (1, 1.05); centroid (1.025, 1); reflection (1.05, 0.95): f = 2.005 -> not better than the best (2),
    # better than the second worst (2.1025): accepted, so the best stays (1, 1) after one iteration
    res = nelder_mead(lambda w: (w**2).sum(), [1.0, 1.0], iterations=1)
    torch.testing.assert_close(res.path[1], torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert res.evaluations == 3 + 1


def test_random_search_minimises_a_step_function_that_has_no_gradient():
    # piecewise constant: autograd's gradient is zero everywhere, gradient descent cannot move
    target = torch.tensor([0.7, -1.3], dtype=torch.float64)

    def staircase(w):
        return torch.floor(4 * (w - target).abs()).sum()

    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    staircase(w).backward()
    assert torch.all(w.grad == 0)
    res = random_search(staircase, [0.0, 0.0], sigma=0.5, iterations=300, generator=torch.Generator().manual_seed(0))
    assert res.fun == 0.0 and staircase(torch.zeros(2, dtype=torch.float64)) > 0
    assert res.evaluations == 301 and res.path.shape == (301, 2)
    assert torch.all(res.values[1:] <= res.values[:-1]), "the best value never gets worse"


def test_errors():
    with pytest.raises(ValueError, match="sigma"):
        random_search(lambda w: w.sum(), [0.0], sigma=0)
    with pytest.raises(ValueError, match="grow"):
        random_search(lambda w: w.sum(), [0.0], grow=0.5)
    with pytest.raises(ValueError, match="step"):
        nelder_mead(lambda w: w.sum(), [0.0], step=-1)
    with pytest.raises(ValueError, match="at least one"):
        nelder_mead(lambda w: w.sum(), [])
