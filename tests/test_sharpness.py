"""Sharpness measurements against the exact Hessian (torch.autograd.functional.hessian) and a quadratic by hand."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.train.sharpness import (
    filter_normalized_direction,
    hessian_vector_product,
    loss_along_direction,
    top_hessian_eigenvalue,
    worst_case_loss_increase,
)


def tiny_problem():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(16, 3, generator=g, dtype=torch.float64), torch.randint(0, 2, (16,), generator=g)
    return model, (lambda: F.cross_entropy(model(x), y)), x, y


def exact_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(theta):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = theta[i : i + s.numel()].view(s)
            i += s.numel()
        return F.cross_entropy(torch.func.functional_call(model, params, (x,)), y)

    return torch.autograd.functional.hessian(loss, flat)


def test_hvp_and_top_eigenvalue_match_the_exact_hessian():
    model, closure, x, y = tiny_problem()
    H = exact_hessian(model, x, y)
    v = [
        torch.randn(p.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        for p in model.parameters()
    ]
    hv = torch.cat([t.reshape(-1) for t in hessian_vector_product(closure, model, v)])
    torch.testing.assert_close(hv, H @ torch.cat([t.reshape(-1) for t in v]))
    eig = torch.linalg.eigvalsh(H)
    largest = eig[eig.abs().argmax()].item()
    ours = top_hessian_eigenvalue(closure, model, iterations=200, generator=torch.Generator().manual_seed(0))
    assert abs(ours - largest) < 1e-4 * abs(largest), (ours, largest)


def test_worst_case_increase_on_a_quadratic_is_half_lambda_rho_squared():
    # L(w) = 1/2 w^T A w at w = 0 with eigenvalues 4, 1, 0.25: max over |e| <= rho is 1/2 * 4 * rho^2
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    A = torch.diag(torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64))
    closure = lambda: 0.5 * w @ A @ w  # noqa: E731
    rho = 0.1
    value = worst_case_loss_increase(closure, [w], rho, steps=50, generator=torch.Generator().manual_seed(0))
    assert abs(value - 0.5 * 4 * rho**2) < 1e-6
    assert torch.all(w == 0), "the weights are restored"
    assert abs(top_hessian_eigenvalue(closure, [w], iterations=60) - 4.0) < 1e-6


def test_loss_along_direction_restores_weights_and_starts_at_the_loss():
    model, closure, *_ = tiny_problem()
    before = [p.detach().clone() for p in model.parameters()]
    d = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    for p, di in zip(model.parameters(), d):
        if p.dim() > 1:
            torch.testing.assert_close(di.norm(dim=1), p.detach().norm(dim=1))
        else:
            assert torch.all(di == 0)
    losses = loss_along_direction(closure, model, d, [-1.0, 0.0, 1.0])
    assert abs(losses[1].item() - closure().item()) < 1e-12
    for p, b in zip(model.parameters(), before):
        torch.testing.assert_close(p.detach(), b, atol=1e-12, rtol=0)


def test_errors():
    model, closure, *_ = tiny_problem()
    with pytest.raises(ValueError, match="iterations"):
        top_hessian_eigenvalue(closure, model, iterations=0)
    with pytest.raises(ValueError, match="rho"):
        worst_case_loss_increase(closure, model, 0.0)
    with pytest.raises(ValueError, match="scalar"):
        top_hessian_eigenvalue(lambda: model(torch.zeros(2, 3, dtype=torch.float64)), model)
    with pytest.raises(ValueError, match="one tensor per parameter"):
        loss_along_direction(closure, model, [], [0.0])


def test_fit_sharpness_aware_rho_zero_is_plain_adam_and_sam_takes_two_gradients():
    from cvkit.train.optim import fit_sharpness_aware

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 5, generator=g), torch.randint(0, 3, (32,), generator=g)
    batches = [(x[:16], y[:16]), (x[16:], y[16:])]
    torch.manual_seed(0)
    a = nn.Linear(5, 3)
    b = nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    h = fit_sharpness_aware(a, batches, rho=0.0, lr=0.01, epochs=2, device="cpu", verbose=False)
    opt = torch.optim.Adam(b.parameters(), lr=0.01)
    for _ in range(2):
        for xb, yb in batches:
            opt.zero_grad()
            F.cross_entropy(b(xb), yb).backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    assert h.last["gradient_evaluations"] == 4
    c = nn.Linear(5, 3)
    h = fit_sharpness_aware(c, batches, batches, rho=0.05, lr=0.01, epochs=1, device="cpu", verbose=False)
    assert h.last["gradient_evaluations"] == 4 and "val_accuracy" in h.last
    with pytest.raises(ValueError, match="base"):
        fit_sharpness_aware(c, batches, rho=0.05, base="rmsprop")
