"""Constrained optimisation against the lecture's worked example (solved by hand) and scipy's SLSQP."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from cvkit.train.constrained import (
    augmented_lagrangian,
    project_onto_ball,
    project_onto_hyperplane,
    projected_gradient_descent,
)


def lecture_f(w):
    return w[0] ** 2 + w[1]


def test_lecture_example_by_hand():
    # min w1^2 + w2 s.t. w1 + w2 = 1: grad f = lambda grad h -> (2 w1, 1) = lambda (1, 1): lambda = 1, w = (1/2, 1/2), f = 3/4
    res, lam, nu = augmented_lagrangian(lecture_f, [3.0, -2.0], equalities=[lambda w: w[0] + w[1] - 1])
    torch.testing.assert_close(res.x, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6, rtol=0)
    assert abs(res.fun - 0.75) < 1e-6 and abs(float(lam[0]) - 1.0) < 1e-5 and nu.numel() == 0
    pgd = projected_gradient_descent(
        lecture_f, lambda w: project_onto_hyperplane(w, [1.0, 1.0], 1.0), [3.0, -2.0], lr=0.2, steps=100
    )
    torch.testing.assert_close(pgd.x, torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6, rtol=0)


def landscape(w):
    return -(torch.cos((w[0] - 0.1) * w[1]) ** 2) - w[0] * torch.sin(3 * w[0] + w[1])


def test_inequality_matches_slsqp():
    # the lecture's landscape inside the disk |w| <= 0.5 (g(w) = 0.25 - |w|^2 >= 0): its nearby minimum (0.75, -0.32)
    # lies outside, so the constraint is active
    def np_f(w):
        return float(landscape(torch.as_tensor(w)))

    ref = minimize(np_f, [0.2, 0.2], method="SLSQP", constraints=[{"type": "ineq", "fun": lambda w: 0.25 - w @ w}])
    ours, _, nu = augmented_lagrangian(landscape, [0.2, 0.2], inequalities=[lambda w: 0.25 - (w**2).sum()])
    np.testing.assert_allclose(ours.x.numpy(), ref.x, atol=1e-4)
    assert abs(float((ours.x**2).sum()) - 0.25) < 1e-6 and float(nu[0]) > 0, "active constraint, positive multiplier"
    pgd = projected_gradient_descent(landscape, lambda w: project_onto_ball(w, 0.5), [0.2, 0.2], lr=0.05, steps=500)
    np.testing.assert_allclose(pgd.x.numpy(), ref.x, atol=1e-3)


def test_projections():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(project_onto_ball(w, 1.0), torch.tensor([0.6, 0.8], dtype=torch.float64))
    torch.testing.assert_close(project_onto_ball(w, 10.0), w)
    torch.testing.assert_close(
        project_onto_hyperplane(w, [1.0, 1.0], 1.0), torch.tensor([0.0, 1.0], dtype=torch.float64)
    )


def test_errors():
    with pytest.raises(ValueError, match="at least one constraint"):
        augmented_lagrangian(lecture_f, [0.0, 0.0])
    with pytest.raises(ValueError, match="non-zero"):
        project_onto_hyperplane(torch.zeros(2), [0.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="radius"):
        project_onto_ball(torch.zeros(2), 0.0)
    with pytest.raises(ValueError, match="scalar"):
        projected_gradient_descent(lambda w: w, lambda w: w, [1.0, 2.0])
