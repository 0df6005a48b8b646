"""cvkit.train: it learns, resumes exactly, stops on NaN naming the step, reports OOM usefully."""

import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import cvkit.train.precision as precision_module
from cvkit.data import DeviceLoader, flip_and_translate, load_fashion_mnist
from cvkit.viz import plot_history
from cvkit.train import (
    History,
    NonFiniteLossError,
    StepOutput,
    TrainConfig,
    TrainingOutOfMemoryError,
    choose_precision,
    evaluate,
    fit,
    load_checkpoint,
    make_scheduler,
    save_checkpoint,
)


def small_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.1),
        nn.Flatten(),
        nn.Linear(8 * 14 * 14, 10),
    )


@pytest.fixture(scope="module")
def fmnist():
    return load_fashion_mnist("train", limit=2000), load_fashion_mnist("test", limit=500)


def test_fit_learns_fashion_mnist(fmnist):
    train, test = fmnist
    model = small_cnn()
    history = fit(
        model,
        DeviceLoader.from_dataset(train, 64),
        DeviceLoader.from_dataset(test, 250, shuffle=False),
        epochs=3,
        lr=3e-3,
        progress=False,
        verbose=False,
    )
    assert len(history) == 3
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_accuracy"] > 0.65  # chance is 0.10
    assert set(history.columns) >= {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "images_per_second",
    }


def _weights_equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("loader_kind", ["device", "torch"])
def test_resume_equals_uninterrupted(fmnist, tmp_path, loader_kind):
    train, _ = fmnist

    def loader():
        if loader_kind == "device":  # shuffling and augmentation from the loader's own seeded generator
            return DeviceLoader.from_dataset(train.subset(512), 64, augment=flip_and_translate())
        # the textbook DataLoader shuffles with torch's global generator: the checkpoint must restore it
        return DataLoader(TensorDataset(train.float_images()[:512], train.labels[:512]), batch_size=64, shuffle=True)

    config = TrainConfig(epochs=4, lr=2e-3, progress=False, verbose=False)
    reference = small_cnn()
    fit(reference, loader(), config=config)

    def stop_after_two(epoch, history):
        if epoch == 2:
            raise Interrupt

    interrupted = small_cnn()
    with pytest.raises(Interrupt):
        fit(interrupted, loader(), config=config, checkpoint_dir=str(tmp_path), callbacks=[stop_after_two])
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 2
    resumed = small_cnn(seed=123)  # fresh, differently initialised: everything must come from the checkpoint
    history = fit(resumed, loader(), config=config, checkpoint_dir=str(tmp_path))
    assert len(history) == 4 and history["epoch"] == [1, 2, 3, 4]
    assert _weights_equal(resumed, reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: fit loads the checkpoint onto it")
def test_a_run_checkpointed_on_cuda_resumes_on_cuda(fmnist, tmp_path):
    """The path of a Colab student whose runtime disconnected: fit on the GPU, interrupted, the same call again.

    On an H200 (2026-12-04) every such resume raised "RNG state must be a torch.ByteTensor": loading the checkpoint
    onto the GPU had moved the saved generator states there too.
    """
    train, _ = fmnist
    config = TrainConfig(epochs=3, lr=2e-3, progress=False, verbose=False, device="cuda")

    def stop_after_one(epoch, history):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(
            small_cnn(),
            DeviceLoader.from_dataset(train.subset(512), 64),
            config=config,
            checkpoint_dir=str(tmp_path),
            callbacks=[stop_after_one],
        )
    history = fit(
        small_cnn(seed=1), DeviceLoader.from_dataset(train.subset(512), 64), config=config, checkpoint_dir=str(tmp_path)
    )
    assert history["epoch"] == [1, 2, 3]


def test_nan_loss_stops_and_names_the_step():
    data = [(torch.randn(4, 3), torch.zeros(4, dtype=torch.long)) for _ in range(10)]
    model = nn.Linear(3, 2)

    calls = {"n": 0}

    def step(m, batch):
        calls["n"] += 1
        x, y = batch
        loss = nn.functional.cross_entropy(m(x), y)
        if calls["n"] == 7:
            loss = loss * float("nan")
        return StepOutput(loss, x.shape[0])

    with pytest.raises(NonFiniteLossError, match="epoch 1, step 7"):
        fit(model, data, step=step, epochs=1, progress=False, verbose=False, check_every=3)


def test_out_of_memory_names_batch_size_and_hint():
    data = [(torch.randn(16, 3), torch.zeros(16, dtype=torch.long))]

    def step(m, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(TrainingOutOfMemoryError, match=r"batch size 16.*batch_size=8"):
        fit(nn.Linear(3, 2), data, step=step, epochs=1, progress=False, verbose=False)


def test_custom_step_without_accuracy():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    data = [(x[i : i + 16], x[i : i + 16]) for i in range(0, 64, 16)]
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))

    def reconstruct(m, batch):
        inputs, targets = batch
        return StepOutput(nn.functional.mse_loss(m(inputs), targets), inputs.shape[0])

    h = fit(model, data, data, step=reconstruct, epochs=30, lr=1e-2, progress=False, verbose=False)
    assert "train_accuracy" not in h.columns
    assert h["val_loss"][-1] < 0.5 * h["val_loss"][0]


def test_evaluate_uses_eval_mode_and_restores_it():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Dropout(0.9))
    data = [(torch.ones(8, 1, 2, 2), torch.zeros(8, dtype=torch.long))]
    model.train()
    a = evaluate(model, data)
    b = evaluate(model, data)
    assert a == b and model.training  # dropout off during evaluation, mode restored after


def test_precision_choice(monkeypatch):
    assert choose_precision("auto", torch.device("cpu")).name == "fp32"
    with pytest.raises(ValueError, match="needs a GPU"):
        choose_precision("fp16", torch.device("cpu"))
    monkeypatch.setattr(precision_module.torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    t4 = choose_precision("auto", torch.device("cuda"))
    assert (t4.name, t4.dtype, t4.scale_grads) == ("fp16", torch.float16, True)
    monkeypatch.setattr(precision_module.torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    a100 = choose_precision("auto", torch.device("cuda"))
    assert (a100.name, a100.scale_grads) == ("bf16", False)


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="adam")
    with pytest.raises(TypeError, match="unknown training option"):
        fit(nn.Linear(2, 2), [(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long))], epoch=3)
    with pytest.raises(ValueError, match="empty"):
        fit(nn.Linear(2, 2), [])


def test_history_and_checkpoint_roundtrip(tmp_path):
    h = History()
    h.append({"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.5})
    h.append({"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.7})
    assert h.best()["epoch"] == 2 and h.best("train_loss", "min")["epoch"] == 2
    assert "| 2 | 0.5 | 0.7 |" in h.to_markdown()
    assert len(plot_history(h).axes) == 2
    with pytest.raises(KeyError, match="no column"):
        h["val_loss"]
    path = save_checkpoint({"model": {}, "epoch": 3, "history": h.state_dict()}, tmp_path / "c" / "last.pt")
    assert History.from_state_dict(load_checkpoint(path)["history"]).rows == h.rows
    assert not list((tmp_path / "c").glob("*.tmp"))  # no temporary file left behind
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save([1, 2], tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a cvkit training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


class _RunsWhenUnpickled:
    """Unpickling calls print("pwned"): what any object in a pickle could do instead."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoints_load_weights_only(tmp_path, capsys):
    """A checkpoint is opened with weights_only=True: an object that would run code on unpickling is refused."""
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "epoch": 1, "payload": _RunsWhenUnpickled()}, path)
    with pytest.raises(ValueError, match="weights_only loading refuses"):
        load_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_best_checkpoint_tracks_validation_accuracy(fmnist, tmp_path):
    train, test = fmnist
    fit(
        small_cnn(),
        DeviceLoader.from_dataset(train.subset(256), 64),
        DeviceLoader.from_dataset(test, 250, shuffle=False),
        epochs=2,
        progress=False,
        verbose=False,
        checkpoint_dir=str(tmp_path),
    )
    best = load_checkpoint(tmp_path / "best.pt")
    rows = best["history"]["rows"]
    assert rows[-1]["val_accuracy"] == max(r["val_accuracy"] for r in rows) and not math.isnan(rows[-1]["val_accuracy"])


@pytest.mark.parametrize("epochs, steps_per_epoch", [(1, 5), (2, 1), (1, 2), (20, 5)])
def test_onecycle_schedule_survives_tiny_runs(epochs, steps_per_epoch):
    # warmup_fraction 0.2 x 5 steps = a one-step warm-up, where torch's OneCycleLR divides by zero
    cfg = TrainConfig(epochs=epochs, lr=0.1, scheduler="onecycle", warmup_fraction=0.2 if epochs != 2 else 0.5)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(epochs * steps_per_epoch - 1):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    if cfg.warmup_fraction * epochs * steps_per_epoch >= 1:  # a warm-up of at least one step starts low
        assert lrs[0] == pytest.approx(cfg.lr / 25)  # OneCycleLR's default div_factor
    assert all(0 < lr <= cfg.lr * (1 + 1e-9) for lr in lrs)
    assert lrs[-1] < lrs[0]  # annealed below the starting rate by the last step
