"""Style transfer (Gram matrix by hand, losses fall), CycleGAN's losses by hand and a short run, the discriminator's
input gradient against a linear case, and the spectrally normalised DCGAN discriminator."""

import pytest
import torch
import torch.nn as nn

from cvkit.generative.cyclegan import cycle_consistency_loss, lsgan_loss, train_cyclegan
from cvkit.generative.gan import discriminator_gradient_norms
from cvkit.generative.style_transfer import gram_matrix, style_transfer
from cvkit.layers.weight_norms import singular_values
from cvkit.models.cyclegan import CycleGANGenerator, PatchDiscriminator
from cvkit.models.dcgan import DCGANDiscriminator


def test_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # N = 2 maps of M = 2 positions
    torch.testing.assert_close(gram_matrix(f), torch.tensor([[[5.0, 2.0], [2.0, 1.0]]]) / 4)


def test_style_transfer_moves_towards_the_style():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
    content, style = torch.rand(3, 24, 24), torch.rand(3, 20, 20) * 0.3 + 0.7
    before = [p.detach().clone() for p in net.parameters()]
    out = style_transfer(net, content, style, ["3"], ["1", "3"], steps=30, style_weight=100.0, lr=0.05)
    assert out.image.shape == (1, 3, 24, 24) and out.style_loss[-1] < 0.5 * out.style_loss[0]
    assert 0 <= out.image.min() and out.image.max() <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters())), "the network's weights are not changed"
    with pytest.raises(KeyError):
        style_transfer(net, content, style, ["9"], ["1"], steps=1)


def test_cycle_and_lsgan_losses_by_hand():
    identity = nn.Identity()
    x, y = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    assert cycle_consistency_loss(identity, identity, x, y) == 0
    invert = lambda t: 1 - t  # noqa: E731
    assert cycle_consistency_loss(invert, invert, x, y) == 0  # an invertible pair: no cycle loss
    assert lsgan_loss(torch.tensor([1.0, 0.0]), True) == 0.5 and lsgan_loss(torch.tensor([1.0, 0.0]), False) == 0.5


def test_train_cyclegan_runs_and_lowers_the_cycle_loss():
    torch.manual_seed(0)
    xs = [torch.rand(4, 1, 16, 16) for _ in range(4)]
    ys = [torch.rand(4, 3, 16, 16) for _ in range(4)]
    G, F_ = CycleGANGenerator(1, 3, 4, 1), CycleGANGenerator(3, 1, 4, 1)
    h = train_cyclegan(
        G, F_, PatchDiscriminator(1, 4), PatchDiscriminator(3, 4), xs, ys, steps=30, lr=2e-3, device="cpu"
    )
    assert len(h.cycle) == 30 and sum(h.cycle[-5:]) < sum(h.cycle[:5])
    with pytest.raises(ValueError, match="steps"):
        train_cyclegan(G, F_, PatchDiscriminator(1, 4), PatchDiscriminator(3, 4), xs, ys, steps=0)


class LinearCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 1)

    def forward(self, x):
        return self.fc(x.flatten(1)).squeeze(1)


def test_discriminator_gradient_norm_of_a_linear_map_is_its_weight_norm():
    critic = LinearCritic()
    norms = discriminator_gradient_norms(critic, torch.rand(5, 3, 2, 2))
    torch.testing.assert_close(norms, critic.fc.weight.norm().expand(5))


def test_spectral_norm_discriminator():
    torch.manual_seed(0)
    d = DCGANDiscriminator(width=8, spectral_norm=True)
    for _ in range(20):
        d(torch.rand(4, 1, 28, 28))  # power iterations converge
    sigmas = [singular_values(m.weight)[0].item() for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(sigmas) == 3 and max(abs(s - 1) for s in sigmas) < 1e-2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_frechet_distance_against_scipy():
    import numpy as np
    from scipy.linalg import sqrtm

    from cvkit.generative.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=g, dtype=torch.float64)
    b = torch.randn(150, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 5, generator=g, dtype=torch.float64) + 1
    ca, cb = np.cov(a.numpy().T), np.cov(b.numpy().T)
    ref = ((a.mean(0) - b.mean(0)) ** 2).sum().item() + np.trace(ca + cb - 2 * sqrtm(ca @ cb).real)
    assert abs(frechet_distance(a, b) - ref) < 1e-6 * max(1, ref)
    assert abs(frechet_distance(a, a)) < 1e-9
