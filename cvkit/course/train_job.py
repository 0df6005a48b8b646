"""``cvkit train``: a course training job from a terminal, on one process or many (``torchrun``).

::

    cvkit train --dataset fashion-mnist --model resnext_mini --epochs 5
    torchrun --nproc_per_node 2 -m cvkit train --dataset fashion-mnist --model resnext_mini --epochs 5

Trains a classifier from the model registry on one of the kit's datasets with
:func:`cvkit.train.fit` (the same progress bar and epoch lines as in a notebook) and writes,
into ``--out``: ``history.json`` (the settings and one row per epoch), ``history.csv``,
``history.png`` (the curves) and ``checkpoints/last.pt`` / ``best.pt``. Running the same
command again resumes from ``last.pt``; ``--no-resume`` starts over and moves the earlier
``--out`` aside to ``<out>.previous-<time>`` (nothing is deleted). Under ``torchrun`` every
process trains its share of each global batch and process 0 alone prints and writes.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DATASETS = ("fashion-mnist", "digits", "shapes", "cifar10")  # kept equal to cvkit.cli.TRAIN_DATASETS

# Sizes of the two profiles (cvkit.runtime.use_profile): "fast" finishes in about a minute on 2 CPU
# cores with a small model, "full" is the whole dataset for minutes on a GPU.
FAST = dict(epochs=2, train_images=6000, val_images=1000, batch_size=256)
FULL = dict(epochs=15, train_images=None, val_images=None, batch_size=256)


@dataclass
class _Data:
    """The two splits of a dataset as (N, C, H, W) uint8 images and (N,) int64 labels, and where they came from."""

    train: Any  # cvkit.data.LabeledImages
    val: Any
    augment: Callable | None
    source: str


def run(args) -> int:
    """Run ``cvkit train`` with its parsed arguments (see :mod:`cvkit.cli`); returns the exit code."""
    import torch

    from cvkit.runtime import pick_device, use_profile
    from cvkit.train import TrainConfig, distributed, fit

    device = pick_device(args.device)
    proc = distributed.setup(device)  # under torchrun: join the group now, so only process 0 prints from here on
    try:
        run = use_profile(args.profile, fast=FAST, full=FULL, device=device, seed=args.seed, verbose=proc.is_main)
        epochs = args.epochs if args.epochs is not None else run.epochs
        batch_size = args.batch_size if args.batch_size is not None else run.batch_size
        train_images = args.train_images if args.train_images is not None else run.train_images
        val_images = args.val_images if args.val_images is not None else run.val_images
        for name, value in (
            ("--epochs", epochs),
            ("--batch-size", batch_size),
            ("--train-images", train_images),
            ("--val-images", val_images),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if batch_size < proc.world_size:
            raise ValueError(
                f"--batch-size {batch_size} is smaller than the {proc.world_size} processes; "
                "each needs at least one image"
            )

        out = Path(args.out or f"build/train/{args.dataset}-{args.model}")
        checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out / "checkpoints"
        if not args.resume and proc.is_main:
            _move_aside(out)
            if args.checkpoint_dir:
                _move_aside(checkpoint_dir)
        distributed.barrier()  # nobody looks for a checkpoint before process 0 moved the old one aside

        data = load_data(args.dataset, train_images, val_images, args.augment)
        model = build_model(args.model, data.train.images.shape[1:], data.train.num_classes)

        from cvkit.data import DeviceLoader
        from cvkit.models import count_parameters

        train = DeviceLoader.from_dataset(data.train, batch_size, augment=data.augment, device=device, seed=args.seed)
        val = DeviceLoader.from_dataset(data.val, 1000, shuffle=False, device=device)
        if proc.is_main:
            share = f" = {proc.world_size} processes x {batch_size / proc.world_size:g}" if proc.distributed else ""
            print(
                f"cvkit train: {args.model} ({count_parameters(model):,} parameters) on {args.dataset} "
                f"({len(data.train):,} training, {len(data.val):,} validation images; {data.source}), "
                f"global batch {batch_size}{share}"
            )
        config = TrainConfig(
            epochs=epochs,
            lr=args.lr,
            optimizer=args.optimizer,
            precision=args.precision,
            channels_last={"auto": "auto", "on": True, "off": False}[args.channels_last],
            compile={"auto": "auto", "on": True, "off": False}[args.compile],
            sync_batchnorm=args.sync_batchnorm,
            seed=args.seed,
            device=str(device),
            checkpoint_dir=str(checkpoint_dir),
            resume=args.resume,
            progress=args.progress,
        )
        history = fit(model, train, val, config=config)
        if proc.is_main:
            settings = {
                "dataset": args.dataset,
                "model": args.model,
                "profile": run.profile,
                "processes": proc.world_size,
                "batch_size": batch_size,
                "train_images": len(data.train),
                "val_images": len(data.val),
                "device": str(device),
                "torch": torch.__version__,
                "config": config.to_dict(),
            }
            written = write_history(history, out, settings)
            print(f"wrote {', '.join(str(p) for p in written)}; checkpoints in {checkpoint_dir}")
        distributed.barrier()
    finally:
        distributed.shutdown()
    return 0


def load_data(name: str, train_images: int | None, val_images: int | None, augment: bool) -> _Data:
    """The training and validation splits of one of :data:`DATASETS`, as ``LabeledImages``.

    Args:
        name: ``"fashion-mnist"`` (train / test splits), ``"digits"`` (a seeded 1,497 / 300 split),
            ``"shapes"`` (generated 32x32 RGB images of one shape each, labels 0 circle, 1 square,
            2 triangle; seed 0 trains, seed 1 validates; 3,000 / 600 images unless sizes are given)
            or ``"cifar10"``.
        train_images, val_images: class-balanced subsets (``None``: the whole split).
        augment: flips and translations for the training batches (never for digits, whose meaning flips).

    Raises:
        ValueError: an unknown name.
        cvkit.data.DatasetNotFoundError: no copy of Fashion-MNIST or CIFAR-10 found or downloaded.
    """
    import torch

    from cvkit.data import (
        LabeledImages,
        ShapesDataset,
        flip_and_translate,
        load_cifar10,
        load_digits,
        load_fashion_mnist,
    )

    if name == "fashion-mnist":
        train, val = load_fashion_mnist("train", limit=train_images), load_fashion_mnist("test", limit=val_images)
        return _Data(train, val, flip_and_translate(2) if augment else None, train.source)
    if name == "digits":
        train, val = load_digits().split(300 / 1797)
        return _Data(train.subset(train_images), val.subset(val_images), None, "scikit-learn")
    if name == "shapes":

        def render(n: int, seed: int) -> LabeledImages:
            stacked = ShapesDataset(n, image_size=32, min_shapes=1, max_shapes=1, seed=seed).stack()
            images = (stacked["images"] * 255).round().to(torch.uint8)  # (n, 3, 32, 32)
            return LabeledImages(images, stacked["first_label"], list(ShapesDataset.classes), "generated")

        return _Data(
            render(train_images or 3000, 0),
            render(val_images or 600, 1),
            flip_and_translate(2) if augment else None,
            "generated",
        )
    if name == "cifar10":
        train, val = load_cifar10("train", limit=train_images), load_cifar10("test", limit=val_images)
        return _Data(train, val, flip_and_translate(4) if augment else None, train.source)
    raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")


def build_model(name: str, image_shape: tuple[int, ...], num_classes: int):
    """A registry classifier for images of ``image_shape`` (C, H, W) and ``num_classes`` classes.

    The builder's ``num_classes``, ``in_channels`` / ``in_chans`` and (for the MLP) ``in_features``
    are set from the data; one forward pass on two blank images checks that the model takes them.

    Raises:
        ValueError: an unknown model (the message lists the registered ones), not a classification
            model, or the model cannot take images of this size (the
            message names the registered classifiers made for it).
    """
    import inspect
    import math

    import torch

    from cvkit.models import create_model, get_spec, list_models

    try:
        spec = get_spec(name)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    if spec.task != "classification":
        raise ValueError(
            f"cvkit train trains classifiers; {name!r} is a {spec.task} model. "
            f"Choose one of {list_models('classification')}"
        )
    c = image_shape[0]
    params = inspect.signature(spec.builder).parameters
    wanted = {"num_classes": num_classes, "in_channels": c, "in_chans": c, "in_features": math.prod(image_shape)}
    kwargs = {k: v for k, v in wanted.items() if k in params}
    try:
        model = create_model(name, **kwargs)
        with torch.no_grad():
            model.eval()
            logits = model(torch.zeros(2, *image_shape))
            model.train()
        if tuple(logits.shape) != (2, num_classes):
            raise ValueError(f"it returns {tuple(logits.shape)} for 2 images, not (2, {num_classes})")
    except (RuntimeError, ValueError, TypeError) as exc:
        fits = [m for m in list_models("classification") if get_spec(m).input_shape == tuple(image_shape)]
        raise ValueError(
            f"model {name!r} cannot classify {'x'.join(map(str, image_shape))} images "
            f"into {num_classes} classes ({exc}); "
            f"registered classifiers made for this size: {fits or 'none'} (mlp takes any size)"
        ) from exc
    return model


def write_history(history, out: Path, settings: dict[str, Any]) -> list[Path]:
    """Write ``history.json`` (settings and rows), ``history.csv`` and ``history.png`` into ``out``; return them."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "history.json", out / "history.csv", out / "history.png"]
    paths[0].write_text(json.dumps({"settings": settings, "rows": history.rows}, indent=1) + "\n")
    with paths[1].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=history.columns)
        writer.writeheader()
        writer.writerows(history.rows)
    import matplotlib

    matplotlib.use("Agg")  # a terminal, maybe without a display
    import matplotlib.pyplot as plt

    from cvkit.viz import plot_history

    fig = plot_history(history, title=f"{settings['model']} on {settings['dataset']}")
    fig.savefig(paths[2], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def _move_aside(path: Path) -> None:
    """Rename an existing ``path`` to ``<path>.previous-<time>`` (never delete a run someone may want)."""
    if path.exists():
        target = path.with_name(f"{path.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}")
        for n in range(2, 1000):
            if not target.exists():
                break
            target = target.with_name(f"{path.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        path.rename(target)
        print(f"moved the earlier {path} aside to {target}")
