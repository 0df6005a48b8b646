"""cvkit.runtime: device choice, profiles, seeds."""

import pytest
import torch

from cvkit.runtime import available_devices, headless, pick_device, resolve_profile, seed_everything, use_profile


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    """The order is the documented one: each case forced, so the test can fail on any machine."""
    mps = torch.backends.mps
    for cuda_ok, mps_ok, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda ok=cuda_ok: ok)
        monkeypatch.setattr(mps, "is_available", lambda ok=mps_ok: ok)
        assert pick_device().type == expected and pick_device("auto").type == expected
        assert available_devices() == [d for d, ok in (("cuda", cuda_ok), ("mps", mps_ok), ("cpu", True)) if ok]


def test_pick_device_on_this_machine():
    best = pick_device()
    assert best.type == available_devices()[0]  # the best device here, and a tensor can live on it
    assert torch.zeros(2, device=best).device.type == best.type
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this machine"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        pick_device("tpu")


def test_resolve_profile(monkeypatch):
    monkeypatch.delenv("CVKIT_PROFILE", raising=False)
    assert resolve_profile("fast") == "fast" and resolve_profile("full") == "full"
    assert resolve_profile("auto") == ("full" if torch.cuda.is_available() else "fast")
    monkeypatch.setenv("CVKIT_PROFILE", "full")
    assert resolve_profile("auto") == "full"
    assert resolve_profile("fast") == "fast"  # an explicit choice wins over the environment
    with pytest.raises(ValueError, match="profile must be one of"):
        resolve_profile("quick")


def test_use_profile_picks_sizes(monkeypatch, capsys):
    monkeypatch.delenv("CVKIT_PROFILE", raising=False)
    p = use_profile("fast", fast=dict(epochs=1, n=10), full=dict(epochs=9, n=1000))
    assert p.profile == "fast" and p.epochs == 1 and p["n"] == 10 and p.fast
    assert "profile: fast" in capsys.readouterr().out
    with pytest.raises(AttributeError, match="has no setting"):
        p.batch_size
    with pytest.raises(ValueError, match="same keys"):
        use_profile("fast", fast=dict(epochs=1), full=dict(steps=2))


def test_cvkit_seed_replaces_a_notebooks_seed(monkeypatch, capsys):
    monkeypatch.delenv("CVKIT_PROFILE", raising=False)
    monkeypatch.setenv("CVKIT_SEED", "3")
    p = use_profile("fast", fast=dict(n=1), full=dict(n=2))
    drawn = torch.rand(2)
    assert p.seed == 3 and "seed 3 from $CVKIT_SEED" in capsys.readouterr().out
    seed_everything(3)
    assert torch.equal(drawn, torch.rand(2)), "use_profile must seed the generators with $CVKIT_SEED"
    assert use_profile("fast", fast=dict(n=1), full=dict(n=2), seed=None).seed is None, "seed=None leaves generators alone"
    monkeypatch.setenv("CVKIT_SEED", "three")
    with pytest.raises(ValueError, match="CVKIT_SEED"):
        use_profile("fast", fast=dict(n=1), full=dict(n=2))
    monkeypatch.delenv("CVKIT_SEED")
    assert use_profile("fast", fast=dict(n=1), full=dict(n=2)).seed == 0


def test_seed_everything_repeats_draws():
    seed_everything(7)
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError):
        seed_everything(-1)
    with pytest.raises(TypeError):
        seed_everything(1.5)


def test_headless_outside_a_kernel(monkeypatch):
    monkeypatch.delenv("CVKIT_HEADLESS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert headless()  # pytest is not an IPython kernel
