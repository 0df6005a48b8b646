"""Weight and spectral normalization against torch.nn.utils.parametrizations; the orthogonality penalty by hand."""

import pytest
import torch
import torch.nn as nn
from torch.nn.utils import parametrizations

from cvkit.layers.weight_norms import (
    orthogonality_penalty,
    singular_values,
    spectral_normalize,
    spectral_normalize_all,
    weight_matrix,
    weight_normalize,
)


def test_weight_norm_matches_torch_and_keeps_the_function():
    torch.manual_seed(0)
    ours, theirs = nn.Conv2d(3, 5, 3), nn.Conv2d(3, 5, 3)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 8, 8)
    before = ours(x)
    weight_normalize(ours)
    parametrizations.weight_norm(theirs)
    torch.testing.assert_close(ours(x), before)
    torch.testing.assert_close(ours.parametrizations.weight.original0, theirs.parametrizations.weight.original0)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    torch.testing.assert_close(
        ours.parametrizations.weight.original1.grad, theirs.parametrizations.weight.original1.grad
    )
    torch.testing.assert_close(
        ours.parametrizations.weight.original0.grad, theirs.parametrizations.weight.original0.grad
    )


def test_weight_norm_with_unit_g_gives_the_seeds_identity():
    # g = 1: rows of unit norm, so sigma_1^2 + ... + sigma_T^2 = |W|_F^2 = d_o (the number of outputs)
    layer = weight_normalize(nn.Linear(20, 7))
    with torch.no_grad():
        layer.parametrizations.weight.original0.fill_(1.0)
    s = singular_values(layer.weight)
    torch.testing.assert_close((s**2).sum(), torch.tensor(7.0))


def test_spectral_norm_matches_torch_with_the_same_vectors():
    torch.manual_seed(0)
    ours, theirs = nn.Linear(6, 4), nn.Linear(6, 4)
    theirs.load_state_dict(ours.state_dict())
    spectral_normalize(ours)
    parametrizations.spectral_norm(theirs)
    p_ours, p_theirs = ours.parametrizations.weight[0], theirs.parametrizations.weight[0]
    p_ours._u.copy_(p_theirs._u)
    p_ours._v.copy_(p_theirs._v)
    x = torch.randn(3, 6)
    for _ in range(3):  # training mode: one power iteration per forward, in both
        torch.testing.assert_close(ours(x), theirs(x))
    ours(x).sum().backward()
    theirs(x).sum().backward()
    torch.testing.assert_close(ours.parametrizations.weight.original.grad, theirs.parametrizations.weight.original.grad)


def test_spectral_norm_makes_the_largest_singular_value_one():
    torch.manual_seed(0)
    conv = spectral_normalize(nn.Conv2d(8, 16, 3))
    for _ in range(30):
        conv(torch.randn(1, 8, 5, 5))
    s = singular_values(conv.weight)
    assert abs(s[0].item() - 1) < 1e-3
    conv.eval()
    w1 = conv.weight.detach().clone()
    torch.testing.assert_close(conv.weight.detach(), w1)  # no update in eval mode
    model = spectral_normalize_all(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)))
    assert sum(1 for m in model.modules() if hasattr(m, "parametrizations")) == 2


def test_orthogonality_penalty():
    # hand case: W = [[1, 0], [0, 2]] -> W W^T - I = diag(0, 3): penalty 9
    assert orthogonality_penalty(torch.tensor([[1.0, 0.0], [0.0, 2.0]])).item() == 9.0
    q = parametrizations.orthogonal(nn.Linear(8, 3)).weight.detach()  # torch's exactly orthogonal rows
    assert orthogonality_penalty(q).item() < 1e-10
    assert orthogonality_penalty(q.T).item() < 1e-10  # tall matrix: columns orthonormal, the smaller Gram
    assert weight_matrix(torch.zeros(4, 2, 3, 3)).shape == (4, 18)


def test_errors():
    with pytest.raises(ValueError, match="2 dimensions"):
        spectral_normalize(nn.Linear(3, 2), "bias")
    with pytest.raises(ValueError, match="no tensor"):
        weight_normalize(nn.ReLU())
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral_normalize(nn.Linear(3, 2), n_power_iterations=0)
