"""The Oxford-IIIT Pet dataset (Parkhi et al., CVPR 2012) as semantic segmentation: pet, background, border.

7,349 photos of 37 cat and dog breeds, each with a *trimap*: a PNG whose pixels are 1 (the pet), 2 (background)
or 3 (the uncertain border around the pet). Here the trimap becomes a semantic map with the kit's convention,
0 for background: ``0 background, 1 pet, 2 border`` (:data:`PETS_CLASSES`).

No system package ships it, so offline it is found only through ``path=`` or ``$CVKIT_DATA/oxford-iiit-pet/``;
with internet torchvision downloads it (about 800 MB) into ``~/.cache/cvkit/oxford-iiit-pet/``. The folder holds
torchvision's layout::

    oxford-iiit-pet/images/<name>.jpg
    oxford-iiit-pet/annotations/trimaps/<name>.png
    oxford-iiit-pet/annotations/trainval.txt, test.txt      # lines "<name> <class 1-37> <species 1-2> <breed id>"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from cvkit.data.photos import resize
from cvkit.data.sources import Resolved, find_dataset

PETS_CLASSES = ("background", "pet", "border")
PETS_SPLITS = ("trainval", "test")
PETS_FOLDER = "oxford-iiit-pet"
# trimap pixel value -> semantic class: 1 pet -> 1, 2 background -> 0, 3 border -> 2
_TRIMAP_TO_CLASS = np.array([0, 1, 0, 2], dtype=np.int64)
_FIX = (
    "run once with internet (Colab has it) so torchvision downloads Oxford-IIIT Pet, or unpack images.tar.gz and "
    "annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ into $CVKIT_DATA/oxford-iiit-pet/oxford-iiit-pet/, "
    "or pass path=<folder holding oxford-iiit-pet/>. Offline notebooks use the synthetic shapes instead."
)


def locate_oxford_pets(path: str | os.PathLike | None = None, download: bool = True) -> Resolved:
    """Find the folder that holds ``oxford-iiit-pet/`` (torchvision's layout), downloading it when allowed.

    Raises:
        DatasetNotFoundError: nothing found and no download possible; the message lists what was tried.
    """
    files = [f"{PETS_FOLDER}/annotations/{split}.txt" for split in PETS_SPLITS]
    return find_dataset("oxford-iiit-pet", files, path=path, download=_download, allow_download=download, fix=_FIX)


def load_oxford_pets(
    split: Literal["trainval", "test"] = "trainval",
    *,
    image_size: int = 64,
    limit: int | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    download: bool = True,
) -> dict:
    """Load Oxford-IIIT Pet images and trimaps as tensors for semantic segmentation.

    Each photo is centre-cropped to a square and resized to ``image_size`` (antialiased bilinear); its trimap gets
    the same crop and a nearest-neighbour resize, so classes stay whole numbers.

    Args:
        split: ``"trainval"`` (3,680 images) or ``"test"`` (3,669 images), the official lists.
        image_size: side of the square images, in pixels.
        limit: keep this many images, the first of a seeded shuffle of the split (``None``: all).
        seed: the shuffle's seed.
        path: folder holding ``oxford-iiit-pet/``.
        download: allow a torchvision download (needs internet, about 800 MB).

    Returns:
        dict with ``images`` (N, 3, S, S) float32 in [0, 1], ``semantic`` (N, S, S) int64 in {0, 1, 2}
        (:data:`PETS_CLASSES`: background, pet, border), ``names`` (the N image names), ``classes``
        (:data:`PETS_CLASSES`) and ``source`` (where the files were found).

    Raises:
        ValueError: unknown split, non-positive ``image_size`` or ``limit``, or a listed image without its trimap.
        DatasetNotFoundError: no copy and no download (the message lists every place tried).
    """
    from PIL import Image

    if split not in PETS_SPLITS:
        raise ValueError(f"split must be one of {PETS_SPLITS}, got {split!r}")
    if not isinstance(image_size, int) or image_size <= 0:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of images or None, got {limit}")
    where = locate_oxford_pets(path, download)
    base = where.directory / PETS_FOLDER
    names = [
        line.split()[0] for line in (base / "annotations" / f"{split}.txt").read_text().splitlines() if line.strip()
    ]
    if limit is not None and limit < len(names):
        order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed))[:limit]
        names = [names[i] for i in order.tolist()]
    images, semantic = [], []
    for name in names:
        image_file, trimap_file = base / "images" / f"{name}.jpg", base / "annotations" / "trimaps" / f"{name}.png"
        if not trimap_file.is_file():
            raise ValueError(
                f"{image_file.name} is listed in {split}.txt but {trimap_file} is missing; re-download the annotations"
            )
        with Image.open(image_file) as im:
            photo = (
                torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255
            )
        with Image.open(trimap_file) as im:
            trimap = np.asarray(im, dtype=np.uint8)
        if trimap.shape != tuple(photo.shape[1:]) or trimap.max() > 3:
            raise ValueError(
                f"{trimap_file}: expected a trimap of values 1-3 with the photo's size {tuple(photo.shape[1:])}, "
                f"got shape {trimap.shape}, values up to {trimap.max()}"
            )
        images.append(resize(photo, image_size))
        semantic.append(_resize_labels(torch.from_numpy(_TRIMAP_TO_CLASS[trimap]), image_size))
    return {
        "images": torch.stack(images) if images else torch.empty(0, 3, image_size, image_size),
        "semantic": torch.stack(semantic) if semantic else torch.empty(0, image_size, image_size, dtype=torch.int64),
        "names": names,
        "classes": PETS_CLASSES,
        "source": where.label,
    }


def _resize_labels(labels: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop an (H, W) int64 label map to a square and resize it with nearest neighbours (as :func:`resize`)."""
    h, w = labels.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = labels[top : top + side, left : left + side]
    return F.interpolate(square[None, None].float(), size=(size, size), mode="nearest-exact")[0, 0].long()


def _download(folder: Path) -> None:
    from torchvision.datasets import OxfordIIITPet

    OxfordIIITPet(root=str(folder), split="trainval", target_types="segmentation", download=True)
