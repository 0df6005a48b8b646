"""What a notebook's full profile costs on this machine, from a few timed optimiser steps of each training call.

A full profile that runs for hours on a CPU cannot be timed by running it in a session. This script runs each
training call of the notebook with the notebook's own ``FULL`` values (read from its parameters cell), on a few
batches only, times the second of two runs (the first pays for start-up), and multiplies the time per step by the
full profile's steps per epoch and epochs:

    python benchmarks/full_profile_cost.py                       # every notebook listed in CALLS, 2 CPU threads
    python benchmarks/full_profile_cost.py 11_3_ssl_masked_modeling --device cuda

Only training is counted; probes, sampling and plots are not. A projection, not a measurement of the whole run.
Against epochs measured in real full runs of the same calls on 2 CPU cores it came out between 16% below and 45%
above: supervised encoder 7-8 s projected against 6.8-7.3 s measured, SimCLR 24 s against 16.6 s, CPC 618-796 s
(two runs of this script) against 693 s, the 12_diffusion DDPM 476-481 s against 571 s.
Figures measured with it are in ``benchmarks/README.md``. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import nbformat
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvkit.course.lectures.notebooks import parameters_cell_index  # noqa: E402


def full_params(notebook: str) -> dict:
    """The ``FULL`` dict of ``notebooks/<notebook>.ipynb``'s parameters cell, its values read as Python literals.

    Raises:
        ValueError: the notebook has no parameters cell, or no ``FULL = dict(...)`` in it.
    """
    path = ROOT / "notebooks" / f"{notebook}.ipynb"
    nb = nbformat.read(path, as_version=4)
    index = parameters_cell_index(nb)
    if index is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    for node in ast.walk(ast.parse(nb.cells[index].source)):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "FULL":
            return {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
    raise ValueError(f"{path}'s parameters cell has no FULL = dict(...)")


def seconds_per_step(train: Callable[[], object], steps: int) -> float:
    """Run ``train`` (which takes ``steps`` optimiser steps) twice and return the second run's seconds per step."""
    train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    tic = time.perf_counter()
    train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # kernels still queued belong to this run
    return (time.perf_counter() - tic) / steps


def ssl_calls(notebook: str, f: dict, device: str):
    """11_3 and 11_4: the supervised baseline and each pre-training method, on a few batches of the full size."""
    from cvkit.data import flip_and_translate, load_fashion_mnist
    from cvkit.lessons.ssl import ssl_method, vit_encoder
    from cvkit.models import model_factory
    from cvkit.ssl import pretrain, train_supervised

    train = load_fashion_mnist("train")
    batches, b = 4, f["batch_size"]
    images, labels = train.images[: batches * b], train.labels[: batches * b]
    budget = dict(epochs=1, batch_size=b, lr=f["lr"], device=device, seed=0, verbose=False, progress=False)
    if notebook == "11_3_ssl_masked_modeling":
        make = partial(vit_encoder, f["dim"], f["depth"])
        supervised_augment = flip_and_translate(2)
        # BEiT's k-means tokenizer is fitted once (on 5,000 images here); both timed runs train the same model
        beit = ssl_method("beit", make(), images=train.images[:5000], visual_tokens=f["visual_tokens"])
        methods = {"MAE": lambda: ssl_method("mae", make()), "BEiT": lambda: beit}
    else:
        make = model_factory("conv_encoder", widths=f["widths"])
        supervised_augment = None
        methods = {"CPC": lambda: ssl_method("cpc", make()), "DAE": lambda: ssl_method("dae", make())}

    def supervised():
        return train_supervised(make(), images, labels, augment=supervised_augment, **budget)

    def pretraining(build):
        return pretrain(build(), images, **budget)

    calls = {"supervised": supervised} | {name: partial(pretraining, build) for name, build in methods.items()}
    return [(name, call, batches, f["pretrain_images"] // b, f["epochs"]) for name, call in calls.items()]


def diffusion_calls(notebook: str, f: dict, device: str):
    """12_diffusion's DDPM (batch 128) and 12_diffusion_2's pixel DDPM (batch 64), both the cosine-schedule U-Net."""
    from cvkit.data import DeviceLoader, load_fashion_mnist
    from cvkit.diffusion import DiffusionUNet, diffusion_step, make_schedule
    from cvkit.lessons.diffusion import train_ddpm
    from cvkit.train import fit

    batches = 4
    if notebook == "12_diffusion":
        b = f["batch_size"]
        call = partial(
            train_ddpm,
            batches * b,
            1,
            b,
            f["base_channels"],
            f["lr"],
            seed=0,
            device=device,
            progress=False,
            verbose=False,
        )
        return [("DDPM", call, batches, f["train_images"] // b, f["epochs"])]
    b = 64  # the notebook's pixel loader
    loader = DeviceLoader.from_dataset(
        load_fashion_mnist("train", limit=batches * b), b, mean=[0.5], std=[0.5], device=device, drop_last=True
    )
    step = diffusion_step(make_schedule("cosine", 1000), conditional=True, p_uncond=0.1)

    def call():
        model = DiffusionUNet(in_channels=1, base_channels=f["base_channels"], num_classes=10)
        return fit(
            model, loader, step=step, epochs=1, lr=2e-3, weight_decay=0.0, device=device, verbose=False, progress=False
        )

    return [("pixel DDPM", call, batches, f["pixel_images"] // b, f["pixel_epochs"])]


def architecture_calls(notebook: str, f: dict, device: str):
    """04: the degradation experiment's three networks and the mini zoo, at the notebook's batch size of 128.

    Offline the notebook trains them on Fashion-MNIST at 28x28, as here; with internet the degradation experiment
    uses CIFAR-10 instead (50,000 colour 32x32 images), which costs more per image.
    """
    from cvkit.data import DeviceLoader, load_fashion_mnist
    from cvkit.models import create_model
    from cvkit.train import fit

    batches, b = 4, 128
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    stats = dict(mean=[0.286], std=[0.353], device=device)
    loaders = (
        DeviceLoader(train.images[: batches * b], train.labels[: batches * b], b, **stats),
        DeviceLoader(test.images[:b], test.labels[:b], 1000, shuffle=False, **stats),
    )
    steps = -(-f["train_images"] // b)

    def degradation(name: str, depth: int):
        model = create_model(name, depth=depth, in_channels=1, width=f["width"])
        return fit(
            model,
            *loaders,
            epochs=1,
            lr=0.1,
            optimizer="sgd",
            weight_decay=1e-4,
            device=device,
            verbose=False,
            progress=False,
        )

    def zoo(name: str):
        return fit(create_model(name), *loaders, epochs=1, lr=3e-3, device=device, verbose=False, progress=False)

    rows = [
        (f"{label}-{depth}", partial(degradation, name, depth), batches, steps, f["epochs"])
        for label, name, depth in (
            ("plain", "plain_cifar", f["shallow"]),
            ("plain", "plain_cifar", f["deep"]),
            ("residual", "resnet_cifar", f["deep"]),
        )
    ]
    return rows + [(name, partial(zoo, name), batches, steps, f["zoo_epochs"]) for name in f["zoo"]]


CALLS = {  # notebook -> its training calls; the notebooks whose full profile has not run on 2 CPU cores
    "04_cnn_architectures": architecture_calls,
    "11_3_ssl_masked_modeling": ssl_calls,
    "11_4_ssl_cpc_dae_tracking": ssl_calls,
    "12_diffusion": diffusion_calls,
    "12_diffusion_2_latent": diffusion_calls,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=list(CALLS), help=f"any of {', '.join(CALLS)}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpu-threads", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = [n for n in args.notebooks if n not in CALLS]
    if unknown:
        parser.error(f"no training calls listed for {unknown}; choose from {list(CALLS)}")
    torch.set_num_threads(args.cpu_threads)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} CPU threads")
    for notebook in args.notebooks:
        total = 0.0
        for name, call, steps, steps_per_epoch, epochs in CALLS[notebook](notebook, full_params(notebook), args.device):
            per_step = seconds_per_step(call, steps)
            epoch = per_step * steps_per_epoch
            total += epoch * epochs
            print(
                f"{notebook} {name}: {per_step:.3f} s per step -> {epoch:.0f} s per epoch ({steps_per_epoch} steps)"
                f" x {epochs} = {epoch * epochs / 60:.0f} min",
                flush=True,
            )
        print(f"{notebook}: training about {total / 3600:.1f} h in all (projected)", flush=True)


if __name__ == "__main__":
    main()
