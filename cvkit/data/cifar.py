"""CIFAR-10 (Krizhevsky, 2009): 60,000 colour 32x32 images in 10 classes, for full-profile training on a GPU.

No system package ships CIFAR-10, so offline it is found only through ``path=`` or
``$CVKIT_DATA/cifar-10/``; with internet torchvision downloads it into ``~/.cache/cvkit/cifar-10/``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from cvkit.data.labeled import LabeledImages
from cvkit.data.sources import Resolved, find_dataset

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
FOLDER = "cifar-10-batches-py"
_FIX = (
    "run once with internet (Colab has it) so torchvision downloads CIFAR-10, or unpack "
    "cifar-10-python.tar.gz into $CVKIT_DATA/cifar-10/ (giving $CVKIT_DATA/cifar-10/cifar-10-batches-py/...), "
    "or pass path=<folder holding cifar-10-batches-py>. Offline notebooks use Fashion-MNIST instead."
)


def locate_cifar10(path: str | os.PathLike | None = None, download: bool = True) -> Resolved:
    """Find the folder that holds ``cifar-10-batches-py/`` (torchvision's layout).

    Raises:
        DatasetNotFoundError: nothing found and no download possible; the message lists what was tried.
    """
    files = [f"{FOLDER}/{b}" for split in BATCHES.values() for b in split]
    return find_dataset("cifar-10", files, path=path, download=_download, allow_download=download, fix=_FIX)


def load_cifar10(
    split: Literal["train", "test"] = "train",
    *,
    path: str | os.PathLike | None = None,
    download: bool = True,
    limit: int | None = None,
) -> LabeledImages:
    """Load one split of CIFAR-10 as tensors.

    Args:
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000 images).
        path: folder holding ``cifar-10-batches-py/``.
        download: allow a torchvision download (needs internet).
        limit: keep a class-balanced seeded subset of this many images.

    Returns:
        LabeledImages: ``images`` (N, 3, 32, 32) uint8, ``labels`` (N,) int64 in [0, 10).

    Raises:
        ValueError: unknown split.
        DatasetNotFoundError: no copy and no download (message lists every place tried).
    """
    if split not in BATCHES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    where = locate_cifar10(path, download)
    images, labels = [], []
    for name in BATCHES[split]:
        with open(where.directory / FOLDER / name, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))  # rows are CHW
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    data = LabeledImages(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(labels)),
        list(CIFAR10_CLASSES),
        where.label,
    )
    return data.subset(limit)


def _download(folder: Path) -> None:
    from torchvision.datasets import CIFAR10

    CIFAR10(root=str(folder), download=True)
