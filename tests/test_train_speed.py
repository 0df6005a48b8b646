"""The fast path of cvkit.train: precision choice, the speed plan, no host sync per step, and
that the sync-free bookkeeping still names the step of a NaN (resume is tested in test_train.py).

Speed itself is measured in benchmarks/train_speed.py, never asserted here.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import cvkit
from cvkit.data import DeviceLoader, flip_and_translate
from cvkit.train import (
    NonFiniteLossError,
    StepOutput,
    TrainConfig,
    choose_precision,
    classification_step,
    fit,
    make_optimizer,
    plan_speed,
)
from cvkit.train import speed as speed_module
from cvkit.train.speed import COMPILE_MIN_STEPS, cudnn_benchmark

CUDA = torch.device("cuda")  # constructing a device object needs no GPU
CVKIT_DIR = str(Path(cvkit.__file__).resolve().parent)


def fake_gpu(monkeypatch, capability: tuple[int, int], triton: bool = True) -> None:
    """Make torch answer like a CUDA GPU of ``capability`` (7.5 = T4, 8.0 = A100) without touching a real one."""

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return capability >= (8, 0) or including_emulation  # a T4 says True unless emulation is excluded

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"fake sm_{capability[0]}{capability[1]}")
    monkeypatch.setattr(speed_module, "triton_available", lambda: triton)


# --------------------------------------------------------------------------- precision


def test_t4_gets_fp16_with_grad_scaler_although_torch_says_bf16_is_supported(monkeypatch):
    fake_gpu(monkeypatch, (7, 5))
    p = choose_precision("auto", CUDA)
    assert (p.name, p.dtype, p.scale_grads) == ("fp16", torch.float16, True)
    with pytest.raises(ValueError, match="no bf16 tensor cores"):
        choose_precision("bf16", CUDA)


def test_ampere_and_later_get_bf16_without_scaler(monkeypatch):
    for capability in [(8, 0), (9, 0)]:
        fake_gpu(monkeypatch, capability)
        p = choose_precision("auto", CUDA)
        assert (p.name, p.dtype, p.scale_grads) == ("bf16", torch.bfloat16, False)
        assert choose_precision("fp16", CUDA).scale_grads  # fp16 asked for explicitly still scales


def test_cpu_precisions():
    cpu = torch.device("cpu")
    assert choose_precision("auto", cpu).dtype is None
    assert choose_precision("bf16", cpu).dtype is torch.bfloat16
    assert not choose_precision("bf16", cpu).scale_grads
    assert not choose_precision("fp32", cpu).grad_scaler(cpu).is_enabled()
    with pytest.raises(ValueError, match="needs a GPU"):
        choose_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("fp8", cpu)


# --------------------------------------------------------------------------- the speed plan


def test_plan_on_a_t4_turns_on_every_gpu_switch(monkeypatch):
    fake_gpu(monkeypatch, (7, 5))
    plan = plan_speed(TrainConfig(), CUDA, total_steps=COMPILE_MIN_STEPS)
    assert plan.precision.name == "fp16" and plan.precision.scale_grads
    assert plan.channels_last and plan.fused_optimizer and plan.cudnn_benchmark and plan.compile
    assert (
        plan.describe() == "cuda: fp16 autocast, GradScaler, channels_last, compiled, fused optimizer, cudnn.benchmark"
    )


def test_plan_compiles_only_long_runs_and_only_with_triton(monkeypatch):
    fake_gpu(monkeypatch, (8, 0))
    assert not plan_speed(TrainConfig(), CUDA, COMPILE_MIN_STEPS - 1).compile
    assert plan_speed(TrainConfig(), CUDA, COMPILE_MIN_STEPS).compile
    assert not plan_speed(TrainConfig(compile=False), CUDA, 10 * COMPILE_MIN_STEPS).compile
    fake_gpu(monkeypatch, (8, 0), triton=False)
    assert not plan_speed(TrainConfig(), CUDA, 10 * COMPILE_MIN_STEPS).compile


def test_plan_does_not_compile_models_whose_shapes_change_unless_asked(monkeypatch):
    from cvkit.models import create_model
    from cvkit.train.speed import has_dynamic_shapes

    fake_gpu(monkeypatch, (8, 0))
    assert not plan_speed(TrainConfig(), CUDA, 10 * COMPILE_MIN_STEPS, dynamic_shapes=True).compile
    assert plan_speed(TrainConfig(compile=True), CUDA, 10, dynamic_shapes=True).compile  # asked for: compiled
    assert has_dynamic_shapes(create_model("faster_rcnn_small", widths=(8, 16, 32), representation=32))
    assert has_dynamic_shapes(create_model("mask_rcnn_small", widths=(8, 16, 32), representation=32, mask_channels=8))
    assert not has_dynamic_shapes(tiny_model())
    flagged = tiny_model()
    flagged.dynamic_shapes = True
    assert has_dynamic_shapes(flagged)


def test_plan_on_cpu_is_plain_unless_asked():
    cpu = torch.device("cpu")
    plan = plan_speed(TrainConfig(), cpu, total_steps=100 * COMPILE_MIN_STEPS)
    assert not (plan.channels_last or plan.compile or plan.fused_optimizer or plan.cudnn_benchmark)
    assert plan.describe() == "cpu: fp32, NCHW, eager"
    forced = plan_speed(TrainConfig(channels_last=True, compile=True, precision="bf16"), cpu, total_steps=10)
    assert forced.channels_last and forced.compile and forced.precision.name == "bf16"
    with pytest.raises(ValueError, match="compile must be"):
        TrainConfig(compile="yes")


def test_cudnn_benchmark_is_restored():
    before = torch.backends.cudnn.benchmark
    with cudnn_benchmark(True):
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark == before


def test_make_optimizer_decays_weights_only_and_can_fuse():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 36, 2))
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1), fused=True)
    decay, no_decay = opt.param_groups
    assert [p.dim() for p in decay["params"]] == [4, 2] and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert opt.defaults["fused"] is True
    assert make_optimizer(model, TrainConfig(optimizer="sgd")).defaults["nesterov"]


# --------------------------------------------------------------------------- no host sync per step


def tiny_data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    return images, labels


def tiny_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3)
    )


# Tensor methods that copy a value to the host, so on a GPU they wait for every queued kernel.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def count_host_reads_from_cvkit():
    """Count the calls of :data:`HOST_READS` made directly by code inside the cvkit package."""
    counts: collections.Counter = collections.Counter()
    saved = {name: torch.Tensor.__dict__.get(name) for name in HOST_READS}
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *args, _name=name, _original=original, **kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(CVKIT_DIR):
                counts[f"{_name} at {Path(caller.f_code.co_filename).name}:{caller.f_lineno}"] += 1
            return _original(self, *args, **kwargs)

        setattr(torch.Tensor, name, wrapper)
    try:
        yield counts
    finally:
        for name, original in saved.items():
            if original is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, original)


@pytest.mark.parametrize("augment", [None, flip_and_translate()])
def test_host_reads_do_not_grow_with_the_number_of_steps(augment):
    images, labels = tiny_data(128)
    reads = {}
    for steps in (4, 16):
        loader = DeviceLoader(images, labels, batch_size=128 // steps, augment=augment, device="cpu")
        with count_host_reads_from_cvkit() as counts:
            fit(tiny_model(), loader, epochs=1, progress=False, verbose=False, check_every=1000)
        reads[steps] = dict(counts)
    assert reads[4] == reads[16], f"cvkit reads tensors back per step: {reads}"
    assert sum(reads[16].values()) <= 2, reads  # the end-of-epoch flush


def test_host_reads_happen_once_per_check():
    images, labels = tiny_data(128)
    loader = DeviceLoader(images, labels, batch_size=8, device="cpu")  # 16 steps
    with count_host_reads_from_cvkit() as counts:
        fit(tiny_model(), loader, epochs=1, progress=False, verbose=False, check_every=4)
    assert sum(counts.values()) == 16 // 4, dict(counts)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.set_sync_debug_mode)")
@pytest.mark.parametrize("precision", ["auto", "fp16"])
def test_cuda_syncs_do_not_grow_with_the_number_of_steps(precision):
    images, labels = tiny_data(256)
    syncs = {}
    for steps in (4, 16):
        loader = DeviceLoader(images, labels, batch_size=256 // steps, augment=flip_and_translate(), device="cuda")
        model = tiny_model()
        fit(model, loader, epochs=1, progress=False, verbose=False, precision=precision, compile=False)  # warm-up
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                fit(
                    model,
                    loader,
                    epochs=1,
                    progress=False,
                    verbose=False,
                    check_every=1000,
                    precision=precision,
                    compile=False,
                )
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs[steps] = sum("synchroniz" in str(w.message) for w in caught)
    assert syncs[4] == syncs[16], syncs


# --------------------------------------------------------------------------- the bookkeeping still does its job


@pytest.mark.parametrize("check_every", [1, 4, 100])
def test_nan_loss_names_the_step(check_every):
    images, labels = tiny_data(160)
    loader = DeviceLoader(images, labels, batch_size=16, device="cpu")  # 10 steps per epoch
    calls = {"n": 0}

    def step(model, batch):
        calls["n"] += 1
        out = classification_step(model, batch)
        if calls["n"] == 10 + 7:  # epoch 2, step 7
            out = StepOutput(out.loss * float("nan"), out.count, out.correct)
        return out

    with pytest.raises(NonFiniteLossError, match="epoch 2, step 7"):
        fit(tiny_model(), loader, step=step, epochs=3, progress=False, verbose=False, check_every=check_every)


def test_history_reports_training_time_and_throughput():
    images, labels = tiny_data(64)
    history = fit(tiny_model(), DeviceLoader(images, labels, 16, device="cpu"), epochs=2, progress=False, verbose=False)
    for row in history.rows:
        assert 0 < row["train_seconds"] <= row["seconds"]
        assert row["images_per_second"] == pytest.approx(64 / row["train_seconds"])
        assert 0 <= row["train_accuracy"] <= 1


def test_loader_longer_than_its_len_is_reported():
    class Liar(list):
        def __len__(self):
            return 2

    images, labels = tiny_data(48)
    batches = Liar([(images[i : i + 16].float() / 255, labels[i : i + 16]) for i in range(0, 48, 16)])
    with pytest.raises(ValueError, match="more batches than its len"):
        fit(tiny_model(), batches, epochs=1, progress=False, verbose=False)
