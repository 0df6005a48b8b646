"""Saliency and Grad-CAM on networks whose maps can be computed by hand, and localisation on a synthetic image."""

import pytest
import torch
import torch.nn as nn

from cvkit.inspect import capture_outputs, grad_cam, saliency_map


def tiny_cam_net(w_class: torch.Tensor) -> nn.Sequential:
    """1x1 conv making maps A^1 = x and A^2 = 2x, global average pooling, a linear layer with weights ``w_class`` (K, 2)."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    conv.weight.data = torch.tensor([1.0, 2.0]).view(2, 1, 1, 1)
    fc = nn.Linear(2, w_class.shape[0], bias=False)
    fc.weight.data = w_class
    return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def test_grad_cam_hand_computed():
    # y^c = sum_k W_ck mean(A^k)  =>  dy^c/dA^k_ij = W_ck / Z  =>  alpha_k^c = W_ck / Z (eq. 1, Z = 16 pixels)
    # L^c = ReLU(sum_k W_ck / Z A^k) = ReLU((W_c1 + 2 W_c2) x / 16) (eq. 2)
    w = torch.tensor([[1.0, -1.0], [0.5, 0.5]])
    net = tiny_cam_net(w)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1:3, 0:2] = 1.0
    x[0, 0, 3, 3] = -1.0
    for c in (0, 1):
        r = grad_cam(net, x, "0", target=c)
        assert torch.allclose(r.weights, w[c][None] / 16)
        expected = torch.relu((w[c, 0] + 2 * w[c, 1]) * x[0, 0] / 16)
        assert torch.allclose(r.coarse[0], expected)
        assert torch.allclose(r.cam[0], expected)  # same resolution: upsampling is the identity
    # class 0 is (1 - 2) x / 16 = -x / 16: only the negative pixel lights up; class 1 only the positive patch
    assert grad_cam(net, x, "0", target=0).cam[0].nonzero().tolist() == [[3, 3]]
    assert grad_cam(net, x, "0", target=1).cam[0].nonzero().tolist() == [[1, 0], [1, 1], [2, 0], [2, 1]]


def test_grad_cam_equals_cam_for_gap_networks():
    # Zhou et al. 2016: with GAP + linear, Grad-CAM is the class activation map sum_k w_k A^k up to 1 / Z
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, stride=2, padding=1), nn.ReLU()
    )
    net = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
    x = torch.randn(2, 3, 16, 16)
    r = grad_cam(net, x, "0", target=torch.tensor([1, 3]))
    acts = capture_outputs(net, x, ["0"])["0"]  # (2, 6, 8, 8)
    cams = torch.relu(torch.einsum("bk,bkhw->bhw", net[3].weight[[1, 3]], acts)) / 64
    assert torch.allclose(r.coarse, cams, atol=1e-6)
    assert r.cam.shape == (2, 16, 16) and bool((r.cam >= 0).all())
    assert torch.allclose(r.normalized().flatten(1).amax(1), torch.ones(2))
    assert r.target.tolist() == [1, 3]


def test_grad_cam_localises_a_bright_square():
    # a "detector" that responds to bright blobs: the CAM of the bright class must peak on the square
    conv = nn.Conv2d(1, 1, 3, padding=1)
    conv.weight.data.fill_(1 / 9)
    conv.bias.data.fill_(-0.5)  # fires where the local mean exceeds 0.5
    fc = nn.Linear(1, 2)
    fc.weight.data = torch.tensor([[1.0], [-1.0]])
    net = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)
    x = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.3
    x[0, 0, 20:27, 5:12] = 1.0  # the square: rows 20-26, cols 5-11
    cam = grad_cam(net, x, "1").cam[0]  # predicted class: 0 ("bright")
    y, xx = divmod(int(cam.argmax()), 32)
    assert 20 <= y < 27 and 5 <= xx < 12
    inside = cam[20:27, 5:12].sum() / cam.sum()
    assert inside > 0.9


def test_saliency_of_a_linear_model_is_the_weight():
    # score_c = <W_c, x>: d score / d x = W_c, so the map is max over channels of |W_c|
    torch.manual_seed(0)
    lin = nn.Linear(3 * 4 * 4, 5)
    net = nn.Sequential(nn.Flatten(), lin)
    x = torch.randn(3, 4, 4)
    sal = saliency_map(net, x, target=2)
    assert torch.allclose(sal, lin.weight[2].view(3, 4, 4).abs().amax(0))
    batch = saliency_map(net, torch.randn(2, 3, 4, 4))
    assert batch.shape == (2, 4, 4)


def test_bad_arguments():
    net = tiny_cam_net(torch.eye(2))
    x = torch.rand(1, 1, 4, 4)
    with pytest.raises(ValueError, match="class index"):
        grad_cam(net, x, "0", target=5)
    with pytest.raises(KeyError, match="no module named 'conv9'"):
        grad_cam(net, x, "conv9")
    with pytest.raises(ValueError, match=r"\(B, K, h, w\)"):
        grad_cam(net, x, "2")  # the flatten's output is (B, 2)
    with pytest.raises(ValueError, match="image must be"):
        saliency_map(net, torch.rand(4, 4))
    assert net.training  # the mode is restored
