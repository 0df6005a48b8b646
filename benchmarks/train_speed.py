"""Training speed: the textbook PyTorch loop against ``cvkit.train.fit``, side by side in one run.

Both ways train the same small residual network, from the same initial weights, on the same
Fashion-MNIST images, for the same number of epochs, with the same augmentation (random
left-right flip, random translation by up to 2 pixels with reflected borders), the same
optimizer (AdamW, weight decay on weights only) and the same one-cycle schedule. What differs
is only how the data reaches the model and how the step runs:

=====================  ==============================================  ==============================================
                       textbook loop (a PyTorch tutorial)              cvkit.train.fit (fast path)
=====================  ==============================================  ==============================================
data                   ``Dataset`` returning one PIL image at a time   every image on the device once, as uint8
augmentation           torchvision transforms per image, on the CPU    one batched op per batch, on the device
batches                ``DataLoader(num_workers=2)`` + ``.to(device)``  an index into the resident tensor
precision              fp32                                            bf16, or fp16 + GradScaler (T4); fp32 on CPU
memory format          NCHW                                            channels_last on CUDA
host syncs             ``loss.item()`` every step                      one every ``check_every`` (25) steps
optimizer kernels      foreach                                         fused on CUDA
torch.compile          no                                              on CUDA for long runs (``--compile``)
=====================  ==============================================  ==============================================

Usage::

    python benchmarks/train_speed.py --profile fast                  # CPU, under 2 minutes on 2 cores
    python benchmarks/train_speed.py --profile full --cpu-threads 2  # a GPU, data path limited to 2 cores (Colab)

Prints images/s of each way and their ratio, test accuracy of each after every epoch, the
training time to a target test accuracy, the device, versions and CPU threads, and the
achieved TFLOP/s (and, on a GPU, the fraction of the device's peak). Figures measured with it
are in ``benchmarks/README.md``. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing cvkit

import cvkit  # noqa: E402
from cvkit.data import DeviceLoader, LabeledImages, flip_and_translate, load_fashion_mnist  # noqa: E402
from cvkit.runtime import pick_device, seed_everything  # noqa: E402
from cvkit.train import TrainConfig, fit, make_optimizer, make_scheduler, plan_speed  # noqa: E402

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean and std (images in [0, 1])
PADDING = 2  # random translation: up to 2 pixels in x and y, reflected borders

PROFILES = {
    # about 90 s for both ways on 2 CPU cores (eval on a class-balanced half of the test set)
    "fast": dict(
        epochs=2, train_images=10_000, test_images=5_000, batch_size=256, width=16, lr=4e-3, target=0.80, compile="off"
    ),
    # a GPU: the full training and test sets
    "full": dict(
        epochs=10,
        train_images=60_000,
        test_images=10_000,
        batch_size=512,
        width=32,
        lr=4e-3,
        target=0.93,
        compile="auto",
    ),
}

# Dense tensor-core peak (TFLOP/s) from the vendors' datasheets, by autocast precision. fp32 on
# Ampere and later counts TF32, which cuDNN uses for fp32 convolutions by default.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 378.0},
    "H100 NVL": {"bf16": 835.0, "fp16": 835.0, "fp32": 418.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.0},  # SXM
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 183.0},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0},
    "T4": {"fp16": 65.0, "fp32": 8.1},
    "V100": {"fp16": 125.0, "fp32": 15.7},
}


# --------------------------------------------------------------------------- the model


class ResidualBlock(nn.Module):
    """``x + BN(conv(ReLU(BN(conv(x)))))``, then ReLU: the basic block of He et al. 2016 (ResNet), fig. 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


def conv_bn_relu(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def small_resnet(width: int = 32, num_classes: int = 10) -> nn.Sequential:
    """A 7-conv residual network for (B, 1, 28, 28) images: widths w, 2w, 4w at 28, 14 and 7 pixels.

    Returns logits (B, num_classes). About 0.29 M parameters at width 32.
    """
    return nn.Sequential(
        conv_bn_relu(1, width, pool=False),  # (B, w, 28, 28)
        ResidualBlock(width),
        conv_bn_relu(width, 2 * width, pool=True),  # (B, 2w, 14, 14)
        ResidualBlock(2 * width),
        conv_bn_relu(2 * width, 4 * width, pool=True),  # (B, 4w, 7, 7)
        ResidualBlock(4 * width),
        nn.AdaptiveMaxPool2d(1),  # (B, 4w, 1, 1)
        nn.Flatten(),  # (B, 4w)
        nn.Linear(4 * width, num_classes),
    )


def training_flops_per_image(model: nn.Module) -> float:
    """Floating-point operations of one training step per image (forward + backward), counted by torch.

    ``torch.utils.flop_counter`` counts matrix multiplies and convolutions (2 per multiply-add),
    which is what a GPU's peak refers to; elementwise ops are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(model).cpu().train()
    x = torch.randn(8, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        probe(x).sum().backward()
    return counter.get_total_flops() / 8


# --------------------------------------------------------------------------- the textbook loop


class TutorialFashionMNIST(torch.utils.data.Dataset):
    """The ``__getitem__`` of ``torchvision.datasets.FashionMNIST``: one PIL image, transformed on the CPU.

    Built on the same uint8 tensors cvkit loads, so both ways see the same images.
    """

    def __init__(self, data: LabeledImages, transform) -> None:
        self.data = data.images[:, 0]  # (N, 28, 28) uint8
        self.targets = data.labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        img = Image.fromarray(img.numpy())  # mode "L"
        return self.transform(img), target


def textbook_run(model, train_data, test_data, cfg: TrainConfig, device, batch_size, target) -> "Run":
    """Train as a PyTorch tutorial does; returns the per-epoch record."""
    from torchvision import transforms as T

    train_tf = T.Compose(
        [
            T.RandomHorizontalFlip(),
            T.RandomCrop(28, padding=PADDING, padding_mode="reflect"),
            T.ToTensor(),
            T.Normalize((MEAN,), (STD,)),
        ]
    )
    test_tf = T.Compose([T.ToTensor(), T.Normalize((MEAN,), (STD,))])
    pin = device.type == "cuda"
    train_loader = torch.utils.data.DataLoader(
        TutorialFashionMNIST(train_data, train_tf), batch_size=batch_size, shuffle=True, num_workers=2, pin_memory=pin
    )
    test_loader = torch.utils.data.DataLoader(
        TutorialFashionMNIST(test_data, test_tf), batch_size=1024, shuffle=False, num_workers=2, pin_memory=pin
    )

    seed_everything(cfg.seed)
    model.to(device)
    optimizer = make_optimizer(model, cfg)  # the same optimizer and schedule as fit
    scheduler = make_scheduler(optimizer, cfg, len(train_loader))
    criterion = nn.CrossEntropyLoss()
    run = Run("textbook loop")
    for epoch in range(cfg.epochs):
        model.train()
        running_loss, seen = 0.0, 0
        tic = time.perf_counter()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running_loss += loss.item() * images.size(0)  # a host sync every step
            seen += images.size(0)
        seconds = time.perf_counter() - tic

        model.eval()
        correct, total = 0, 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(device), labels.to(device)
                correct += (model(images).argmax(1) == labels).sum().item()
                total += labels.size(0)
        run.add_epoch(seen, seconds, correct / total, running_loss / seen, target)
    return run


# --------------------------------------------------------------------------- the cvkit way


def cvkit_run(model, train_data, test_data, cfg: TrainConfig, device, batch_size, target) -> "Run":
    """Train with :func:`cvkit.train.fit` and the device-resident loader; returns the per-epoch record."""
    train_loader = DeviceLoader.from_dataset(
        train_data,
        batch_size,
        augment=flip_and_translate(PADDING),
        mean=[MEAN],
        std=[STD],
        device=device,
        seed=cfg.seed,
    )
    test_loader = DeviceLoader.from_dataset(test_data, 1024, shuffle=False, mean=[MEAN], std=[STD], device=device)
    run = Run("cvkit.train.fit")

    def record(epoch: int, history) -> None:
        row = history.last
        run.add_epoch(train_loader.num_images, row["train_seconds"], row["val_accuracy"], row["train_loss"], target)

    fit(model, train_loader, test_loader, cfg, callbacks=[record])
    return run


def warm_up(model, train_data, test_data, cfg: TrainConfig, device, batch_size) -> float:
    """Compile and autotune (torch.compile, cudnn.benchmark) on a few batches, outside the timed runs; returns seconds."""
    tic = time.perf_counter()
    few = train_data.subset(min(len(train_data), 8 * batch_size))
    cvkit_run(copy.deepcopy(model), few, test_data.subset(2048), cfg.updated(epochs=1), device, batch_size, target=2.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tic


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class Run:
    """One way's per-epoch figures."""

    name: str
    images: int = 0
    train_seconds: float = 0.0  # training passes only, evaluation excluded
    accuracies: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    seconds_to_target: float | None = None  # training seconds until the first epoch at >= target test accuracy

    def add_epoch(self, images: int, seconds: float, accuracy: float, loss: float, target: float) -> None:
        self.images += images
        self.train_seconds += seconds
        self.accuracies.append(accuracy)
        self.losses.append(loss)
        if self.seconds_to_target is None and accuracy >= target:
            self.seconds_to_target = self.train_seconds

    @property
    def images_per_second(self) -> float:
        return self.images / self.train_seconds


def limit_cpu(threads: int | None) -> str:
    """Pin this process (and the DataLoader workers it forks) to ``threads`` cores, as on Colab."""
    if threads is not None:
        if hasattr(os, "sched_setaffinity"):
            cores = sorted(os.sched_getaffinity(0))[:threads]
            os.sched_setaffinity(0, cores)
        torch.set_num_threads(threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{torch.get_num_threads()} torch threads, {cores} usable cores of {os.cpu_count()}"


def describe_hardware(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name} (compute capability {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB)"
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


def peak_tflops(device: torch.device, precision: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():  # the longer names ("H100 PCIe", "L40S") come first
        if key in name:
            return peaks.get(precision)
    return None


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--profile",
        choices=["auto", "fast", "full"],
        default="auto",
        help="fast: CPU-sized; full: the whole training set ('auto': full on CUDA)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-images", type=int, default=None, help="class-balanced subset of the 60,000 training images")
    p.add_argument("--width", type=int, default=None, help="channels of the first stage (then 2x, 4x)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate of AdamW's one-cycle schedule")
    p.add_argument("--target", type=float, default=None, help="test accuracy for the time-to-target figure")
    p.add_argument("--cpu-threads", type=int, default=None, help="limit to this many cores (2 imitates Colab)")
    p.add_argument("--compile", choices=["auto", "on", "off"], default=None, help="torch.compile in the cvkit way")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="autocast in the cvkit way (the textbook loop is fp32)",
    )
    p.add_argument(
        "--channels-last", choices=["auto", "on", "off"], default="auto", help="memory format in the cvkit way"
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="run both ways this many times (alternating) and report the median"
    )
    p.add_argument("--only", choices=["both", "textbook", "cvkit"], default="both")
    p.add_argument(
        "--warmup",
        choices=["auto", "on", "off"],
        default="auto",
        help="compile/autotune before timing ('auto': on CUDA)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    threads = limit_cpu(args.cpu_threads)
    device = pick_device(args.device)
    profile = args.profile if args.profile != "auto" else ("full" if device.type == "cuda" else "fast")
    settings = dict(PROFILES[profile])
    for key in ("epochs", "batch_size", "train_images", "width", "lr", "target"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    compile_opt = {"auto": "auto", "on": True, "off": False}[args.compile or settings["compile"]]
    channels_last = {"auto": "auto", "on": True, "off": False}[args.channels_last]

    train_data = load_fashion_mnist(
        "train", limit=settings["train_images"] if settings["train_images"] < 60_000 else None
    )
    test_data = load_fashion_mnist("test").subset(settings["test_images"])
    cfg = TrainConfig(
        epochs=settings["epochs"],
        lr=settings["lr"],
        optimizer="adamw",
        weight_decay=5e-4,
        scheduler="onecycle",
        precision=args.precision,
        channels_last=channels_last,
        compile=compile_opt,
        device=str(device),
        seed=args.seed,
        progress=False,
        verbose=False,
    )
    steps = math.ceil(len(train_data) / settings["batch_size"])
    plan = plan_speed(cfg, device, cfg.epochs * steps)
    cfg = cfg.updated(compile=plan.compile)  # decided for the whole run, so the short warm-up compiles the same way
    seed_everything(args.seed)
    initial = small_resnet(settings["width"])
    flops = training_flops_per_image(initial)

    print("== train_speed: textbook PyTorch loop vs cvkit.train.fit ==")
    print(f"device      {device} -- {describe_hardware(device)}")
    print(
        f"versions    python {platform.python_version()}, torch {torch.__version__}, torchvision {_torchvision_version()}, cvkit {cvkit.__version__}, numpy {np.__version__}"
    )
    print(f"cpu         {threads}; load average {load_average()} (1, 5, 15 min)")
    print(
        f"profile     {profile}: {settings['epochs']} epochs, {len(train_data)} training images, {len(test_data)} test images, "
        f"batch {settings['batch_size']}, width {settings['width']}, AdamW lr {settings['lr']} one-cycle, flip + translate {PADDING}"
    )
    print(
        f"model       small_resnet: {sum(p.numel() for p in initial.parameters()) / 1e6:.3f} M parameters, "
        f"{flops / 1e6:.1f} MFLOP per training image (forward + backward)"
    )
    print(f"cvkit path  {plan.describe()}")
    print("textbook    fp32, NCHW, eager, DataLoader(num_workers=2) + PIL transforms, loss.item() per step")

    if args.warmup == "on" or (args.warmup == "auto" and device.type == "cuda"):
        print(
            f"warm-up     {warm_up(initial, train_data, test_data, cfg, device, settings['batch_size']):.1f} s (compile, autotune; not timed below)"
        )

    ways = {"textbook": textbook_run, "cvkit": cvkit_run}
    chosen = list(ways) if args.only == "both" else [args.only]
    runs: dict[str, list[Run]] = {k: [] for k in chosen}
    for r in range(args.repeats):
        for key in chosen:
            run = ways[key](
                copy.deepcopy(initial), train_data, test_data, cfg, device, settings["batch_size"], settings["target"]
            )
            runs[key].append(run)
            acc = ", ".join(f"{a:.4f}" for a in run.accuracies)
            ttt = f"{run.seconds_to_target:.1f} s" if run.seconds_to_target is not None else "not reached"
            print(
                f"run {r + 1} {run.name:<16} {run.images_per_second:8.0f} img/s  train {run.train_seconds:6.1f} s  "
                f"test accuracy per epoch [{acc}]  time to {settings['target']:.0%}: {ttt}  (load {load_average()})"
            )

    print()
    print(f"summary over {args.repeats} run(s) each (median; images/s over the training passes, evaluation excluded)")
    precisions = {"textbook": "fp32", "cvkit": plan.precision.name}
    medians = {}
    for key, rs in runs.items():
        ips = statistics.median(r.images_per_second for r in rs)
        medians[key] = ips
        acc = statistics.median(r.accuracies[-1] for r in rs)
        reached = [r.seconds_to_target for r in rs if r.seconds_to_target is not None]
        ttt = f"{statistics.median(reached):.1f} s ({len(reached)}/{len(rs)} runs)" if reached else "not reached"
        tflops = flops * ips / 1e12
        peak = peak_tflops(device, precisions[key])
        use = f" = {tflops / peak:.2%} of the {peak:g} TFLOP/s {precisions[key]} peak" if peak else ""
        print(
            f"  {rs[0].name:<16} {ips:8.0f} img/s  final test accuracy {acc:.4f}  time to {settings['target']:.0%}: {ttt}  "
            f"achieved {tflops:.3f} TFLOP/s{use}"
        )
    if len(medians) == 2:
        print(f"  ratio            cvkit / textbook = {medians['cvkit'] / medians['textbook']:.2f}x images/s")
    if device.type != "cuda":
        print("  (peak TFLOP/s is reported for CUDA devices only)")


def _torchvision_version() -> str:
    try:
        import torchvision

        return torchvision.__version__
    except Exception as exc:  # torchvision missing or broken: the textbook loop needs it
        return f"unavailable ({type(exc).__name__})"


if __name__ == "__main__":
    main()
