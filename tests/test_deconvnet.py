"""The deconvnet against autograd with the deconvnet's ReLU rule (Springenberg et al. 2015), and its receptive-field support."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.inspect.deconvnet import deconvnet_projection, top_activations
from cvkit.models.zfnet import ZFNetMini


def autograd_deconvnet(features, image, layer, channel, position):
    """Backprop where each ReLU passes relu(gradient) instead of gradient * [input > 0]."""
    handles = [
        m.register_full_backward_hook(lambda mod, gin, gout: (F.relu(gout[0]),))
        for m in features
        if isinstance(m, nn.ReLU)
    ]
    try:
        x = image[None].clone().requires_grad_(True)
        out = features[: layer + 1](x)
        r, c = position
        out[0, channel, r, c].backward()  # d(unit)/d(unit) = 1, so scale by the activation afterwards
        return x.grad[0] * out[0, channel, r, c].detach()
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("first", [(7, 1), (11, 2)])
@pytest.mark.parametrize("layer", [1, 2, 4, 7])
def test_matches_modified_backprop(first, layer):
    torch.manual_seed(0)
    net = ZFNetMini(width=4, first_kernel=first[0], first_stride=first[1])
    image = torch.rand(1, 28, 28)
    with torch.no_grad():
        out = net.features[: layer + 1](image[None])
    flat = int(out[0, 1].argmax())
    pos = (flat // out.shape[-1], flat % out.shape[-1])
    ours = deconvnet_projection(net.features, image, layer, 1)
    torch.testing.assert_close(ours, autograd_deconvnet(net.features, image, layer, 1, pos), atol=1e-5, rtol=1e-4)


def test_support_is_inside_the_receptive_field():
    # one 3x3 conv then ReLU: the unit at (5, 5) sees pixels 4..6 only
    conv = nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    features = nn.Sequential(conv, nn.ReLU())
    proj = deconvnet_projection(features, torch.ones(1, 12, 12), 1, 0, position=(5, 5))
    assert proj[0, 4:7, 4:7].eq(9.0).all() and proj.abs().sum() == 81.0


def test_top_activations_and_errors():
    torch.manual_seed(0)
    net = ZFNetMini(width=4)
    images = torch.rand(6, 1, 28, 28)
    top = top_activations(net.features, images, 1, 0, k=3)
    assert len(top) == 3 and top[0].value >= top[1].value >= top[2].value
    with pytest.raises(ValueError, match="Conv2d, ReLU and MaxPool2d"):
        deconvnet_projection(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), torch.rand(1, 8, 8), 1, 0)
    with pytest.raises(ValueError, match="channel"):
        deconvnet_projection(net.features, images[0], 1, 99)
    with pytest.raises(ValueError, match="layer"):
        deconvnet_projection(net.features, images[0], 50, 0)
