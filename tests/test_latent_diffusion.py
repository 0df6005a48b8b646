"""Latent diffusion: the scaler round trip, the denoiser's interface with the kit's loss and sampler, label dropout."""

import pytest
import torch

from cvkit.diffusion import LatentDenoiser, LatentScaler, diffusion_loss, encode_latents, make_schedule, sample


def test_scaler_round_trip_and_unit_scale():
    z = torch.randn(500, 16) * torch.linspace(0.1, 5, 16) + 3
    s = LatentScaler(z)
    n = s.normalize(z)
    assert n.shape == (500, 16, 1, 1)
    torch.testing.assert_close(n.flatten(1).std(0), torch.ones(16), atol=1e-4, rtol=0)
    torch.testing.assert_close(s.denormalize(n), z, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="N >= 2"):
        LatentScaler(torch.zeros(1, 4))


def test_denoiser_works_with_the_kits_loss_and_sampler():
    torch.manual_seed(0)
    model = LatentDenoiser(16, hidden=32, depth=1, num_classes=10)
    schedule = make_schedule("cosine", 100)
    z = torch.randn(8, 16, 1, 1)
    loss = diffusion_loss(model, z, schedule, torch.arange(8), p_uncond=0.5)
    assert loss.item() == pytest.approx(
        1.0, abs=0.5
    )  # a zero-initialised output predicts eps = 0: the loss is E[eps^2] = 1
    loss.backward()
    out = sample(
        model,
        (4, 16, 1, 1),
        schedule,
        method="ddim",
        num_steps=5,
        labels=torch.tensor([0, 1, 2, -1]),
        guidance_scale=2.0,
        clip_x0=False,
    )
    assert out.images.shape == (4, 16, 1, 1) and torch.isfinite(out.images).all()
    with pytest.raises(ValueError, match="unconditional"):
        LatentDenoiser(16)(z, torch.zeros(8, dtype=torch.long), torch.zeros(8, dtype=torch.long))


def test_encode_latents_batches_and_restores_mode():
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2))
    enc.train()
    x = torch.rand(10, 1, 2, 2)
    z = encode_latents(enc, x, batch_size=3)
    enc.eval()
    torch.testing.assert_close(z, enc(x).detach())
