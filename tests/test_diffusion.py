"""cvkit.diffusion against the papers' formulas (hand-computed) and diffusers' schedulers."""

import math

import pytest
import torch

from cvkit.diffusion import (
    DiffusionUNet,
    NoiseSchedule,
    cosine_betas,
    ddim_step,
    ddpm_step,
    diffusion_loss,
    drop_labels,
    guided_epsilon,
    inference_timesteps,
    linear_betas,
    make_schedule,
    predict_x0,
    q_sample,
    sample,
    timestep_embedding,
)
from tests.oracles import require_oracle


# -- schedules ---------------------------------------------------------------------------------
def test_linear_betas_match_ho_et_al():
    betas = linear_betas(1000)
    assert betas[0].item() == pytest.approx(1e-4)
    assert betas[-1].item() == pytest.approx(0.02)
    assert betas[1].item() == pytest.approx(1e-4 + (0.02 - 1e-4) / 999)


def test_cosine_betas_hand_computed():
    # Nichol & Dhariwal 2021 eq. 17: alpha_bar(t) = f(t/T)/f(0), f(t) = cos^2((t/T + s)/(1 + s) * pi/2)
    T, s = 4, 0.008
    f = [math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    expected = [min(1 - f[t + 1] / f[t], 0.999) for t in range(T)]
    assert cosine_betas(T).tolist() == pytest.approx(expected, rel=1e-12)
    sched = make_schedule("cosine", 1000)
    # away from the clipped end, alpha_bar equals f(t/T)/f(0) exactly
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):
        ft = math.cos(((t + 1) / 1000 + s) / (1 + s) * math.pi / 2) ** 2
        assert sched.alphas_cumprod[t].item() == pytest.approx(ft / f0, rel=1e-5)


def test_schedule_derived_quantities():
    sched = NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5]))
    assert sched.alphas.tolist() == pytest.approx([0.9, 0.8, 0.5])
    assert sched.alphas_cumprod.tolist() == pytest.approx([0.9, 0.72, 0.36])
    assert sched.alphas_cumprod_prev.tolist() == pytest.approx([1.0, 0.9, 0.72])
    # beta tilde_t = (1 - abar_{t-1}) / (1 - abar_t) * beta_t (Ho et al. eq. 7)
    assert sched.posterior_variance.tolist() == pytest.approx([0.0, 0.1 / 0.28 * 0.2, 0.28 / 0.64 * 0.5])


def test_cosine_keeps_more_signal_midway():
    lin, cos = make_schedule("linear"), make_schedule("cosine")
    assert cos.alphas_cumprod[500] > lin.alphas_cumprod[500] * 3


def test_schedule_errors():
    with pytest.raises(ValueError, match="choose one of"):
        make_schedule("quadratic")
    with pytest.raises(ValueError, match="num_steps"):
        linear_betas(0)
    with pytest.raises(ValueError, match="beta_start"):
        linear_betas(10, 0.5, 0.1)


@pytest.mark.parametrize("kind,name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedules_match_diffusers(kind, name):
    diffusers = require_oracle("diffusers")
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=name)
    ours = make_schedule(kind, 1000)
    torch.testing.assert_close(ours.betas, ref.betas, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(ours.alphas_cumprod, ref.alphas_cumprod, atol=1e-6, rtol=1e-5)


# -- forward process ------------------------------------------------------------------------------
def test_q_sample_closed_form_hand_computed():
    sched = NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5]))
    x0 = torch.tensor([1.0, -0.5]).view(2, 1, 1, 1)
    noise = torch.tensor([0.3, 2.0]).view(2, 1, 1, 1)
    out = q_sample(x0, torch.tensor([1, 2]), sched, noise)
    expected = [math.sqrt(0.72) * 1.0 + math.sqrt(0.28) * 0.3, math.sqrt(0.36) * -0.5 + math.sqrt(0.64) * 2.0]
    assert out.flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_q_sample_matches_chain_in_distribution():
    # composing the one-step kernels q(x_t | x_{t-1}) gives the closed form's mean and variance (Ho et al. eq. 4)
    sched = make_schedule("linear", 50)
    g = torch.Generator().manual_seed(0)
    x = torch.full((20000, 1, 1, 1), 0.7)
    for t in range(50):
        x = (1 - sched.betas[t]).sqrt() * x + sched.betas[t].sqrt() * torch.randn(x.shape, generator=g)
    ab = sched.alphas_cumprod[-1].item()
    assert x.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.02)
    assert x.var().item() == pytest.approx(1 - ab, rel=0.05)


def test_q_sample_matches_diffusers_add_noise():
    diffusers = require_oracle("diffusers")
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000)
    x0, noise = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 10, 500, 999])
    torch.testing.assert_close(q_sample(x0, t, make_schedule("linear"), noise), ref.add_noise(x0, noise, t))


def test_q_sample_errors():
    sched = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        q_sample(torch.zeros(2, 1, 4, 4), torch.tensor([0, 10]), sched)
    with pytest.raises(TypeError, match="integer"):
        q_sample(torch.zeros(2, 1, 4, 4), torch.tensor([0.0, 1.0]), sched)


def test_predict_x0_inverts_q_sample():
    sched = make_schedule("cosine", 100)
    x0, noise, t = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4), torch.tensor([5, 50, 95])
    torch.testing.assert_close(predict_x0(q_sample(x0, t, sched, noise), t, noise, sched), x0, atol=1e-4, rtol=1e-4)


# -- reverse steps --------------------------------------------------------------------------------
def test_ddpm_step_equation_11_hand_computed():
    sched = NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5]))
    x, eps, z = torch.tensor([[[[0.4]]]]), torch.tensor([[[[-1.0]]]]), torch.tensor([[[[0.5]]]])
    # t = 2 (paper's t = 3): alpha = 0.5, beta = 0.5, abar = 0.36, beta tilde = 0.28/0.64*0.5
    mean = (0.4 - 0.5 / math.sqrt(0.64) * -1.0) / math.sqrt(0.5)
    expected = mean + math.sqrt(0.28 / 0.64 * 0.5) * 0.5
    assert ddpm_step(eps, x, 2, sched, noise=z).item() == pytest.approx(expected, rel=1e-6)
    assert ddpm_step(eps, x, 2, sched, noise=z, variance="beta").item() == pytest.approx(
        mean + math.sqrt(0.5) * 0.5, rel=1e-6
    )
    assert ddpm_step(eps, x, 0, sched, noise=z).item() == pytest.approx(
        (0.4 - 0.1 / math.sqrt(0.1) * -1.0) / math.sqrt(0.9), rel=1e-6
    )


def test_ddpm_clipped_and_unclipped_agree_when_x0_in_range():
    # eq. 11 is eq. 7's posterior mean with x0 from eq. 15: they coincide when clipping does nothing
    sched = make_schedule("linear", 100)
    x0, eps, z = torch.rand(2, 1, 4, 4) * 1.6 - 0.8, torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    x_t = q_sample(x0, 40, sched, eps)
    a = ddpm_step(eps, x_t, 40, sched, noise=z)
    b = ddpm_step(eps, x_t, 40, sched, noise=z, clip_x0=True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("kind,name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_ddpm_step_matches_diffusers(kind, name, clip):
    diffusers = require_oracle("diffusers")
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=name, clip_sample=clip)
    sched = make_schedule(kind)
    x, eps = torch.randn(2, 1, 6, 6) * 1.5, torch.randn(2, 1, 6, 6)
    for t in (999, 500, 3, 0):
        expected = ref.step(eps, t, x, generator=torch.Generator().manual_seed(7)).prev_sample
        ours = ddpm_step(
            eps, x, t, sched, clip_x0=clip, noise=torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
        )
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_ddim_step_equation_12_hand_computed():
    sched = NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.5]))
    x, eps = torch.tensor([[[[0.4]]]]), torch.tensor([[[[-1.0]]]])
    x0 = (0.4 - math.sqrt(0.64) * -1.0) / math.sqrt(0.36)
    expected = math.sqrt(0.9) * x0 + math.sqrt(0.1) * -1.0  # eta = 0, from t = 2 to t = 0
    assert ddim_step(eps, x, 2, 0, sched).item() == pytest.approx(expected, rel=1e-6)
    # to the clean image (prev_t = -1): abar_prev = 1, so the output is x0 itself
    assert ddim_step(eps, x, 2, -1, sched).item() == pytest.approx(x0, rel=1e-6)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_step_matches_diffusers(eta):
    diffusers = require_oracle("diffusers")
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False)
    ref.set_timesteps(20)
    ours_t = inference_timesteps(1000, 20)
    assert ours_t == ref.timesteps.tolist()
    sched = make_schedule("linear")
    x, eps = torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)
    for i, t in enumerate(ours_t):
        prev_t = ours_t[i + 1] if i + 1 < len(ours_t) else -1
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
        expected = ref.step(eps, t, x, eta=eta, variance_noise=z if eta else None).prev_sample
        torch.testing.assert_close(
            ddim_step(eps, x, t, prev_t, sched, eta=eta, noise=z), expected, atol=1e-5, rtol=1e-4
        )


def test_ddim_with_perfect_noise_prediction_recovers_x0():
    # if eps_theta returns the true noise, deterministic DDIM lands exactly on x0 in one jump
    sched = make_schedule("cosine", 200)
    x0, noise = torch.rand(2, 1, 4, 4) * 2 - 1, torch.randn(2, 1, 4, 4)
    x_t = q_sample(x0, 150, sched, noise)
    torch.testing.assert_close(ddim_step(noise, x_t, 150, -1, sched), x0, atol=1e-4, rtol=1e-4)


def test_step_errors():
    sched = make_schedule("linear", 10)
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="prev_t"):
        ddim_step(x, x, 3, 5, sched)
    with pytest.raises(ValueError, match="choose one of"):
        ddpm_step(x, x, 3, sched, variance="learned")
    with pytest.raises(ValueError, match="eta"):
        ddim_step(x, x, 3, 2, sched, eta=-1)


def test_ddpm_step_checks_variance_at_the_last_step_too():
    """t = 0 returns the mean without reading the variance; a misspelt one must still be refused there."""
    sched = make_schedule("linear", 10)
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="choose one of"):
        ddpm_step(x, x, 0, sched, variance="fixed_small")
    with pytest.raises(ValueError, match="choose one of"):
        ddpm_step(x, x, 5, sched, prev_t=-1, variance="fixed_small")


# -- guidance and loss ----------------------------------------------------------------------------
def _toy_model(x, t, y=None):
    # eps depends on the label so guidance has something to extrapolate
    shift = torch.zeros(x.shape[0]) if y is None else torch.where(y < 0, torch.zeros_like(y), y + 1).float()
    return 0.5 * x + shift.view(-1, 1, 1, 1)


def test_guided_epsilon_formula():
    x, t, y = torch.randn(2, 1, 3, 3), torch.tensor([4, 4]), torch.tensor([0, 2])
    eps_c, eps_u = _toy_model(x, t, y), _toy_model(x, t, torch.tensor([-1, -1]))
    w = 2.0  # Ho & Salimans eq. 6: (1 + w) eps_c - w eps_u, i.e. scale s = 1 + w
    torch.testing.assert_close(guided_epsilon(_toy_model, x, t, y, 1 + w), (1 + w) * eps_c - w * eps_u)
    torch.testing.assert_close(guided_epsilon(_toy_model, x, t, y, 1.0), eps_c)
    torch.testing.assert_close(guided_epsilon(_toy_model, x, t, y, 0.0), eps_u)


def test_drop_labels_rate():
    labels = torch.zeros(20000, dtype=torch.long)
    dropped = drop_labels(labels, 0.1, torch.Generator().manual_seed(0))
    assert set(dropped.unique().tolist()) == {-1, 0}
    assert (dropped == -1).float().mean().item() == pytest.approx(0.1, abs=0.01)


def test_diffusion_loss_is_mse_to_the_noise():
    sched = make_schedule("linear", 100)
    x0, noise, t = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4), torch.tensor([1, 50, 99])
    perfect = lambda x_t, tt: noise  # noqa: E731
    assert diffusion_loss(perfect, x0, sched, t=t, noise=noise).item() == 0.0
    zero = lambda x_t, tt: torch.zeros_like(x_t)  # noqa: E731
    assert diffusion_loss(zero, x0, sched, t=t, noise=noise).item() == pytest.approx(noise.pow(2).mean().item())


# -- U-Net and an end-to-end sanity run ------------------------------------------------------------
def test_timestep_embedding_matches_diffusers():
    require_oracle("diffusers")
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0, 1, 17, 999])
    torch.testing.assert_close(timestep_embedding(t, 32), get_timestep_embedding(t, 32, downscale_freq_shift=0))


def test_timestep_embedding_hand_computed():
    emb = timestep_embedding(torch.tensor([2]), 4)  # freqs 1 and 10000^(-1/2) = 0.01
    assert emb[0].tolist() == pytest.approx([math.sin(2), math.sin(0.02), math.cos(2), math.cos(0.02)], rel=1e-6)


def test_unet_shapes_and_conditioning():
    net = DiffusionUNet(base_channels=8, num_classes=3).eval()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([0, 999])
    assert net(x, t).shape == (2, 1, 28, 28)
    a, b = net(x, t, torch.tensor([0, 0])), net(x, t, torch.tensor([1, 1]))
    assert not torch.allclose(a, b), "the class label must change the prediction"
    torch.testing.assert_close(net(x, t, None), net(x, t, torch.tensor([-1, -1])))
    assert DiffusionUNet(base_channels=8)(torch.randn(1, 1, 17, 23), torch.tensor([3])).shape == (1, 1, 17, 23)
    with pytest.raises(ValueError, match="unconditional"):
        DiffusionUNet(base_channels=8)(x, t, torch.tensor([0, 1]))


def test_sampling_with_oracle_denoiser_reaches_the_data():
    # the data is a single image x*; the optimal eps predictor is (x_t - sqrt(abar) x*) / sqrt(1 - abar).
    sched = make_schedule("linear", 100)
    target = torch.linspace(-0.8, 0.8, 16).view(1, 1, 4, 4)

    def oracle(x_t, t):
        ab = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x_t - ab.sqrt() * target) / (1 - ab).sqrt()

    g = torch.Generator().manual_seed(0)
    for method, steps in (("ddpm", None), ("ddim", 10)):
        out = sample(oracle, (3, 1, 4, 4), sched, method=method, num_steps=steps, record=4, generator=g, device="cpu")
        torch.testing.assert_close(out.images, target.expand(3, -1, -1, -1), atol=1e-3, rtol=0)
        assert out.states.shape[1:] == (3, 1, 4, 4) and out.timesteps[-1] == -1


class _RecordsMode(torch.nn.Module):
    """A noise predictor with dropout that records whether it ran in training mode."""

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
        self.modes = []

    def forward(self, x, t):
        self.modes.append(self.training)
        return self.drop(torch.ones_like(x))


def test_sample_runs_the_model_in_eval_mode_and_restores_its_mode():
    model = _RecordsMode().train()
    out = sample(model, (2, 1, 4, 4), make_schedule("linear", 10), num_steps=3, device="cpu")
    assert model.modes == [False, False, False]  # dropout off while sampling, as the docstring says
    assert model.training  # and back in training mode afterwards
    assert torch.isfinite(out.images).all()
    model.eval()
    sample(model, (2, 1, 4, 4), make_schedule("linear", 10), num_steps=2, device="cpu")
    assert not model.training  # an eval model stays in eval mode


def test_plot_schedules_shows_q_sample_of_the_chosen_schedule():
    from cvkit.viz import plot_schedules

    schedules = {"linear": make_schedule("linear", 100), "cosine": make_schedule("cosine", 100)}
    x0 = torch.rand(1, 3, 8, 8) * 2 - 1
    eps = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    fig = plot_schedules(schedules, x0, "cosine", 40, noise=eps)
    curves, snr, image = fig.axes
    assert [line.get_linewidth() for line in curves.lines[:2]] == [1, 2]  # the chosen schedule drawn thicker
    expected = ((q_sample(x0, 40, schedules["cosine"], eps)[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0)
    assert torch.allclose(torch.as_tensor(image.images[0].get_array().data), expected)
    with pytest.raises(KeyError, match="kind must be one of"):
        plot_schedules(schedules, x0, "sigmoid", 40)


def test_guidance_class_share_counts_samples_of_their_class():
    from cvkit.diffusion import guidance_class_share

    schedule = make_schedule("cosine", 100)
    calls = []

    def model(x, t, y):  # predicts noise that pushes the image towards brightness y / 10 (-1: no class -> dark)
        calls.append(y.clone())
        target = torch.where(y >= 0, y.float() / 10, torch.zeros_like(y, dtype=torch.float)) * 2 - 1  # in [-1, 1]
        ab = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        return (x - ab.sqrt() * target.view(-1, 1, 1, 1)) / (1 - ab).sqrt()

    def classifier(images):  # the class whose brightness is nearest
        return -(images.mean((1, 2, 3))[:, None] - torch.arange(10) / 10).abs()

    out = guidance_class_share(
        model, classifier, schedule, (0.0, 1.0), samples_per_class=2, num_steps=10, image_shape=(1, 4, 4), device="cpu"
    )
    assert out["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    assert out["shares"][1.0] == 1.0, "the conditional model makes every class"
    assert out["shares"][0.0] == pytest.approx(0.1), "the unconditional model makes class 0 only"
    assert all((c == -1).all() for c in calls[:10]), "scale 0 calls the model on 'no class' only (one pass)"
    assert out["images"][1.0].shape == (20, 1, 4, 4) and 0 <= out["images"][1.0].min() <= out["images"][1.0].max() <= 1
