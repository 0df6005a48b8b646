"""Focal loss against cross-entropy and torchvision; sharpness-aware minimization against the algorithm done by hand."""

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from cvkit.train.losses import binary_focal_loss, focal_loss, rmse
from cvkit.train.optim import SharpnessAwareMinimizer


def test_focal_with_gamma_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(16, 5, generator=g), torch.randint(0, 5, (16,), generator=g)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0), F.cross_entropy(logits, targets))


def test_focal_hand_computed():
    # two classes, p_t = 0.8 for the only example: FL = -(1 - 0.8)^2 log 0.8
    logits = torch.log(torch.tensor([[0.8, 0.2]]))
    expected = -(0.2**2) * torch.log(torch.tensor(0.8))
    torch.testing.assert_close(focal_loss(logits, torch.tensor([0]), gamma=2), expected)
    torch.testing.assert_close(
        focal_loss(logits, torch.tensor([0]), gamma=2, alpha=torch.tensor([0.25, 0.75])), 0.25 * expected
    )


@pytest.mark.parametrize("alpha", [0.25, None])
def test_binary_focal_matches_torchvision(alpha):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 7, generator=g)
    targets = (torch.rand(4, 7, generator=g) > 0.5).float()
    ours = binary_focal_loss(logits, targets, gamma=2, alpha=alpha, reduction="sum")
    ref = sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=2, reduction="sum")
    torch.testing.assert_close(ours, ref)


def test_loss_errors():
    with pytest.raises(ValueError, match="int64"):
        focal_loss(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="reduction"):
        focal_loss(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), reduction="avg")
    assert rmse(torch.tensor([3.0, 4.0]), torch.zeros(2)).item() == pytest.approx((12.5) ** 0.5)


def test_sam_step_by_hand():
    # L(w) = 0.5 * w^T A w with A = diag(1, 10): g(w) = A w
    a = torch.tensor([1.0, 10.0])
    w0 = torch.tensor([1.0, 1.0])
    w = torch.nn.Parameter(w0.clone())
    sam = SharpnessAwareMinimizer([w], torch.optim.SGD, rho=0.1, lr=0.05)
    (0.5 * (a * w * w).sum()).backward()
    sam.first_step()
    g = a * w0
    eps = 0.1 * g / g.norm()
    torch.testing.assert_close(w.detach(), w0 + eps)  # eq. 2: ascend to the worst point in the rho-ball
    (0.5 * (a * w * w).sum()).backward()
    sam.second_step()
    torch.testing.assert_close(w.detach(), w0 - 0.05 * a * (w0 + eps))  # eq. 3: descend from w with g(w + eps)


def test_sam_closure_matches_manual_steps():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    m1, m2 = torch.nn.Linear(3, 1), torch.nn.Linear(3, 1)
    m2.load_state_dict(m1.state_dict())
    s1 = SharpnessAwareMinimizer(m1.parameters(), torch.optim.SGD, lr=0.1)
    s2 = SharpnessAwareMinimizer(m2.parameters(), torch.optim.SGD, lr=0.1)

    def closure():
        s1.zero_grad()
        loss = F.mse_loss(m1(x), y)
        loss.backward()
        return loss

    s1.step(closure)
    F.mse_loss(m2(x), y).backward()
    s2.first_step()
    F.mse_loss(m2(x), y).backward()
    s2.second_step()
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q)
    with pytest.raises(ValueError, match="closure"):
        s1.step()
