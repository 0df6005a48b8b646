"""Fashion-MNIST (Xiao et al., 2017): 70,000 grey 28x28 images of clothing in 10 classes.

Read straight from the standard IDX files, wherever they are found (see
:mod:`cvkit.data.sources`): ``path=``, ``$CVKIT_DATA/fashion-mnist/``, Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/``), or a
torchvision download into ``~/.cache/cvkit/fashion-mnist/``.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from cvkit.data.labeled import LabeledImages
from cvkit.data.sources import Resolved, find_dataset

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
_FIX = (
    "install the Debian package (sudo apt-get install dataset-fashion-mnist), or put the four "
    "*-ubyte.gz files in $CVKIT_DATA/fashion-mnist/, or pass path=<folder>, or connect to the internet "
    "so torchvision can download them."
)


def locate_fashion_mnist(path: str | os.PathLike | None = None, download: bool = True) -> Resolved:
    """Find the folder holding the four Fashion-MNIST IDX files.

    Args:
        path: explicit folder holding ``train-images-idx3-ubyte.gz`` and the three other files.
        download: allow a torchvision download into the cache when nothing is found locally.

    Returns:
        Resolved: ``.directory`` and ``.label`` (``"path argument"``, ``"$CVKIT_DATA"``,
        ``"Debian package"``, ``"download cache"`` or ``"download"``).

    Raises:
        DatasetNotFoundError: the files are nowhere; the message names the four places tried.
    """
    files = [f for pair in FILES.values() for f in pair]
    return find_dataset(
        "fashion-mnist",
        files,
        path=path,
        system_dirs=[("Debian package dataset-fashion-mnist", DEBIAN_DIR)],
        download=_download,
        allow_download=download,
        fix=_FIX,
    )


def load_fashion_mnist(
    split: Literal["train", "test"] = "train",
    *,
    path: str | os.PathLike | None = None,
    download: bool = True,
    limit: int | None = None,
) -> LabeledImages:
    """Load one split of Fashion-MNIST as tensors.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        path: explicit folder with the IDX files (see :func:`locate_fashion_mnist`).
        download: allow a torchvision download when no local copy exists.
        limit: keep a class-balanced seeded subset of this many images (``None``: all).

    Returns:
        LabeledImages with ``images`` (N, 1, 28, 28) uint8 in [0, 255], ``labels`` (N,) int64 in [0, 10),
        ``classes`` the 10 names and ``source`` where the files were found.

    Raises:
        ValueError: ``split`` is not ``"train"`` or ``"test"``.
        DatasetNotFoundError: no copy found and none downloaded (message lists every place tried).
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    where = locate_fashion_mnist(path, download)
    image_file, label_file = FILES[split]
    images = torch.from_numpy(read_idx(where.directory / image_file).copy()).unsqueeze(1)  # (N, 1, 28, 28)
    labels = torch.from_numpy(read_idx(where.directory / label_file).astype(np.int64))  # (N,)
    data = LabeledImages(images, labels, list(FASHION_MNIST_CLASSES), where.label)
    return data.subset(limit)


def read_idx(file: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a NumPy array.

    The header is two zero bytes, a type code (0x08 = uint8), the number of
    dimensions, then one big-endian int32 per dimension (LeCun et al., MNIST).

    Returns:
        np.ndarray of dtype uint8 with the stored shape, e.g. (60000, 28, 28).

    Raises:
        ValueError: the file is not an uint8 IDX file.
    """
    file = Path(file)
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{file} is not an uint8 IDX file (header {raw[:4]!r}); is it a Fashion-MNIST file?")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{file} is truncated: header says {shape}, found {data.size} values")
    return data.reshape(shape)


def _download(folder: Path) -> None:
    """Download through torchvision and move the raw .gz files into ``folder``."""
    from torchvision.datasets import FashionMNIST

    FashionMNIST(root=str(folder / "_torchvision"), download=True)
    raw = folder / "_torchvision" / "FashionMNIST" / "raw"
    for pair in FILES.values():
        for name in pair:
            shutil.copyfile(raw / name, folder / name)
