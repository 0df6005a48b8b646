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
    assert use_profile("fast", fast=dict(n=1), full=dict(n=2), seed=None).seed is None, (
        "seed=None leaves generators alone"
    )
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


def test_record_results_outside_a_kernel_prints_and_converts(capsys):
    import numpy as np
    import torch

    from cvkit.runtime import record_results

    assert (
        record_results(
            acc=torch.tensor(0.912345678), epochs=np.int64(3), ok=np.bool_(True), note="small CNN", loss=float("nan")
        )
        is None
    )
    assert capsys.readouterr().out.strip() == "recorded (live): acc=0.9123, epochs=3, ok=True, note=small CNN, loss=nan"
    record_results({"random init (ViT)": 0.5, "SimCLR": np.float32(0.7)}, mae=0.6, source="checkpoint")
    assert capsys.readouterr().out.strip() == "recorded (checkpoint): random_init_vit=0.5, simclr=0.7, mae=0.6"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(source="cache", acc=1.0), ValueError, "source must be one of"),
        (dict(), ValueError, "at least one"),
        (dict(acc=[0.9]), TypeError, "acc: record a number"),
        (dict(acc=__import__("torch").ones(2)), TypeError, "one number, got shape \\(2,\\)"),
        (dict(name="x" * 81), ValueError, "at most 80"),
        (dict(a_b=1, **{"a b": 2}), ValueError, "both named .a_b."),
        (dict(**{"()": 1}), ValueError, "letter or digit"),
    ],
)
def test_record_results_refuses_what_a_report_cannot_hold(kwargs, error, match):
    from cvkit.runtime import record_results

    with pytest.raises(error, match=match):
        record_results(**kwargs)


def test_recorded_results_reads_display_outputs_last_value_wins():
    from cvkit.runtime import RESULTS_MIME, recorded_results

    def out(source, **values):
        return {
            "output_type": "display_data",
            "data": {
                RESULTS_MIME: {"source": source, "values": [[k, v] for k, v in values.items()]},
                "text/plain": "x",
            },
            "metadata": {},
        }

    nb = {
        "cells": [
            {"cell_type": "markdown", "source": "# t"},
            {
                "cell_type": "code",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi"}, out("live", acc=0.5, mIoU=None)],
            },
            {
                "cell_type": "code",
                "outputs": [
                    out("checkpoint", acc=0.9),
                    out("live", acc=0.6),
                    {"output_type": "display_data", "data": {RESULTS_MIME: {"source": "bogus", "values": {"z": 1}}}},
                ],
            },
        ]
    }
    assert recorded_results(nb) == [
        {"name": "acc", "value": 0.6, "source": "live"},
        {"name": "mIoU", "value": None, "source": "live"},
        {"name": "acc", "value": 0.9, "source": "checkpoint"},
    ]
