"""Autoencoders, the VAE's ELBO, the GAN losses and loop, and the low-level vision helpers."""

import math

import pytest
import torch

from cvkit.generative import (
    classical_baseline,
    degrade,
    discriminator_loss,
    down_up,
    gaussian_kl,
    generator_loss,
    negative_elbo,
    psnr,
    random_holes,
    random_patches,
    restoration_step,
    train_gan,
)
from cvkit.models.autoencoder import ConvAutoencoder
from cvkit.models.dcgan import DCGANDiscriminator, DCGANGenerator
from cvkit.models.restoration import RestorationNet
from cvkit.models.vae import ConvVAE, reparameterize
from tests.oracles import require_oracle


def test_gaussian_kl_matches_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3))).sum(1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)
    assert gaussian_kl(torch.zeros(1, 5), torch.zeros(1, 5)).item() == 0.0


def test_negative_elbo_hand_computed():
    logits = torch.zeros(1, 1, 1, 2)  # p = 0.5 for both pixels: reconstruction = 2 log 2
    x = torch.tensor([[[[0.0, 1.0]]]])
    mu, logvar = torch.tensor([[1.0]]), torch.tensor([[0.0]])  # KL = 0.5 * mu^2 = 0.5
    terms = negative_elbo(logits, x, mu, logvar, beta=2.0)
    assert terms.reconstruction.item() == pytest.approx(2 * math.log(2))
    assert terms.kl.item() == pytest.approx(0.5)
    assert terms.loss.item() == pytest.approx(2 * math.log(2) + 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        negative_elbo(logits, x * 2 - 1, mu, logvar)


def test_reparameterize_is_differentiable_and_has_the_right_moments():
    mu = torch.full((20000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20000, 1), math.log(0.25), requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_vae_and_autoencoder_shapes():
    vae = ConvVAE(latent_dim=2, width=8)
    out = vae(torch.rand(3, 1, 28, 28))
    assert out.logits.shape == (3, 1, 28, 28) and out.mu.shape == (3, 2)
    assert vae.sample(4).shape == (4, 1, 28, 28)
    ae = ConvAutoencoder(latent_dim=4, width=8)
    y = ae(torch.rand(2, 1, 28, 28))
    assert y.shape == (2, 1, 28, 28) and 0 <= y.min() and y.max() <= 1
    with pytest.raises(ValueError, match="28x28"):
        ae(torch.rand(2, 1, 32, 32))


def test_gan_losses_hand_computed():
    # D(x) = sigmoid(0) = 0.5 everywhere: D loss = 2 log 2, G loss = log 2
    zeros = torch.zeros(4)
    assert discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zeros).item() == pytest.approx(math.log(2))
    # non-saturating: G's gradient stays large when D confidently rejects the fakes
    fake = torch.tensor([-6.0], requires_grad=True)
    generator_loss(fake).backward()
    nonsat = fake.grad.abs().item()
    fake.grad = None
    torch.log(1 - torch.sigmoid(fake)).mean().backward()  # the saturating objective G would minimise
    assert nonsat > 100 * fake.grad.abs().item()


def test_train_gan_updates_both_networks_on_a_toy_batch():
    g, d = DCGANGenerator(latent_dim=8, width=8), DCGANDiscriminator(width=8)
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = [p.detach().clone() for p in d.parameters()]
    data = [(torch.rand(8, 1, 28, 28) * 2 - 1, torch.zeros(8)) for _ in range(3)]
    hist = train_gan(g, d, data, epochs=2, device="cpu", verbose=False)
    assert [r["epoch"] for r in hist.rows] == [1, 2]
    assert all(0 <= r["d_real"] <= 1 and math.isfinite(r["g_loss"]) for r in hist.rows)
    assert any(not torch.equal(a, b) for a, b in zip(g0, g.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, d.parameters()))
    assert g.sample(2).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="latent_dim"):
        train_gan(torch.nn.Linear(2, 2), d, data, device="cpu")


def test_train_gan_resumes_from_its_checkpoint_as_if_never_interrupted(tmp_path):
    data = [
        (torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(i)) * 2 - 1, torch.zeros(8)) for i in range(3)
    ]

    def nets():
        torch.manual_seed(0)
        return DCGANGenerator(latent_dim=8, width=8), DCGANDiscriminator(width=8)

    g_ref, d_ref = nets()
    reference = train_gan(g_ref, d_ref, data, epochs=3, device="cpu", verbose=False, progress=False)

    def disconnect(epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt("the runtime disconnected")

    g, d = nets()
    with pytest.raises(KeyboardInterrupt):
        train_gan(
            g,
            d,
            data,
            epochs=3,
            device="cpu",
            verbose=False,
            progress=False,
            checkpoint_dir=tmp_path,
            callback=disconnect,
        )
    g, d = nets()  # a fresh kernel: everything must come from the checkpoint
    resumed = train_gan(g, d, data, epochs=3, device="cpu", verbose=False, progress=False, checkpoint_dir=tmp_path)
    assert [r["epoch"] for r in resumed.rows] == [1, 2, 3]
    assert resumed.rows[-1]["g_loss"] == pytest.approx(reference.rows[-1]["g_loss"], rel=1e-5)
    assert all(torch.allclose(a, b) for a, b in zip(g.parameters(), g_ref.parameters()))


def test_psnr_matches_torchmetrics():
    tm = require_oracle("torchmetrics")
    a, b = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    ref = tm.functional.image.peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(psnr(a, b), ref)
    # hand case: a constant error of 0.1 is 20 dB
    assert psnr(torch.full((1, 1, 4, 4), 0.6), torch.full((1, 1, 4, 4), 0.5)).item() == pytest.approx(20.0, rel=1e-5)


def test_degradations():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    noisy = degrade(x, "denoise", sigma=0.2, generator=g)
    assert (noisy - x).std().item() == pytest.approx(0.2, rel=0.05)
    flat = torch.full((1, 1, 8, 8), 0.3)
    torch.testing.assert_close(down_up(flat, 2), flat)  # a constant image survives down/up sampling
    inp = degrade(x, "inpaint", holes=3, generator=g)
    assert inp.shape == (2, 4, 32, 32)
    mask = inp[:, 3:]
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0
    assert (inp[:, :3] * mask).abs().sum() == 0  # the holes are blanked
    with pytest.raises(ValueError, match="choose one of"):
        degrade(x, "deblur")
    with pytest.raises(ValueError, match="divide"):
        down_up(torch.rand(1, 1, 9, 9), 2)


def test_inpainting_baseline_fills_holes_smoothly():
    # a linear ramp is harmonic: Laplace inpainting recovers it inside a hole
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(1, 1, 32, 32).contiguous()
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:20, 12:22] = 1
    out = classical_baseline(torch.cat([ramp * (1 - mask), mask], 1), "inpaint", iterations=2000)
    assert (out - ramp).abs().max().item() < 0.02


def test_random_holes_and_patches():
    m = random_holes((2, 3, 20, 20), holes=2, max_fraction=0.25, generator=torch.Generator().manual_seed(1))
    assert m.shape == (2, 1, 20, 20) and 0 < m.mean() < 0.25
    imgs = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).view(2, 3, 10, 10)
    p = random_patches(imgs, 5, 4, torch.Generator().manual_seed(0))
    assert p.shape == (5, 3, 4, 4)
    with pytest.raises(ValueError, match="exceeds"):
        random_patches(imgs, 1, 11)


def test_restoration_net_is_residual_and_trains_a_step():
    net = RestorationNet(channels=3, extra_channels=1, width=8, depth=3)
    for p in net.body[-1].parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(2, 4, 16, 16)
    torch.testing.assert_close(net(x), x[:, :3])  # a zero residual returns the input image
    step = restoration_step("inpaint", holes=2)
    out = step(net, (torch.rand(2, 3, 16, 16), None))
    assert out.loss.ndim == 0 and out.count == 2
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        net(torch.rand(1, 3, 8, 8))


def test_plot_gan_history_draws_both_panels():
    from cvkit.generative import GANHistory
    from cvkit.viz import plot_gan_history

    hist = GANHistory(
        [{"epoch": e, "d_loss": 1.0 / e, "g_loss": 2.0, "d_real": 0.6, "d_fake": 0.4, "seconds": 1.0} for e in (1, 2)]
    )
    fig = plot_gan_history(hist)
    losses, outputs = fig.axes
    assert [line.get_label() for line in losses.lines] == ["discriminator", "generator"]
    assert list(losses.lines[0].get_ydata()) == [1.0, 0.5] and outputs.get_ylim() == (0, 1)
