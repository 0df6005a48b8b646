"""CPC (patch grid against a hand unfold, causality of the context, the loss against InfoNCE written out) and the DAE."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers import ConvEncoder
from cvkit.ssl.cpc import CPC, CausalRowContext, PatchGridEncoder
from cvkit.ssl.dae import DenoisingAutoencoder


class Flat(nn.Module):
    feature_dim = 16

    def forward(self, x):
        return x.flatten(1)[:, :16]


def test_patch_grid_takes_the_patches_by_hand():
    images = torch.randn(2, 1, 12, 12)
    grid = PatchGridEncoder(Flat(), patch=4, stride=4).grid(images)  # (2, 16, 3, 3)
    assert grid.shape == (2, 16, 3, 3)
    torch.testing.assert_close(grid[1, :, 2, 1], images[1, 0, 8:12, 4:8].flatten())


def test_context_never_sees_rows_below():
    torch.manual_seed(0)
    ctx = CausalRowContext(4)
    z = torch.randn(1, 4, 6, 5, requires_grad=True)
    (g,) = torch.autograd.grad(ctx(z)[0, :, 2].sum(), z)  # row 2 of the context
    assert g[0, :, 3:].abs().sum() == 0 and g[0, :, :3].abs().sum() > 0


def test_loss_is_infonce_over_all_patch_codes():
    torch.manual_seed(0)
    model = CPC(ConvEncoder(1, (8, 16)), patch=8, stride=4, steps=1, temperature=0.5).eval()
    x = torch.randn(3, 1, 20, 20)
    z = model.encoder.grid(x)  # (3, D, 4, 4)
    c = model.context(z)
    pred = F.normalize(model.predictors[0](c[:, :, :-1].permute(0, 2, 3, 1).reshape(-1, z.shape[1])), dim=1)
    target = F.normalize(z[:, :, 1:].permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=1)
    expected = F.cross_entropy(pred @ target.T / 0.5, torch.arange(len(pred)))
    torch.testing.assert_close(model(x), expected)
    with pytest.raises(ValueError, match="too few"):
        CPC(ConvEncoder(1, (8, 16)), steps=6)(torch.randn(2, 1, 28, 28))


def test_dae_output_size_and_noise():
    dae = DenoisingAutoencoder(ConvEncoder(1, (8, 16, 16)), noise_range=(0.0, 0.0)).eval()
    x = torch.rand(2, 1, 28, 28)
    assert dae.denoise(x).shape == x.shape
    torch.testing.assert_close(dae(x), F.mse_loss(dae.denoise(x), x))  # no noise: the loss is plain reconstruction
    with pytest.raises(ValueError, match="noise_range"):
        DenoisingAutoencoder(ConvEncoder(1, (8,)), noise_range=(0.5, 0.1))
