"""PASCAL VOC detection (Everingham et al., IJCV 2010): photos with boxes of 20 object classes.

No system package ships it, so offline it is found only through ``path=`` or ``$CVKIT_DATA/voc/``; with internet
torchvision downloads it into ``~/.cache/cvkit/voc/``. The folder holds the devkit layout torchvision uses::

    VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    VOCdevkit/VOC2007/Annotations/<id>.xml                 # <object><name>, <difficult>, <bndbox> xmin ymin xmax ymax
    VOCdevkit/VOC2007/ImageSets/Main/train.txt, val.txt, trainval.txt, test.txt   # one id per line

Box corners in the XML are 1-based pixel indices, both inclusive (``xmin = 1`` is the first column); they become
the kit's ``xyxy`` pixel edges as ``(xmin - 1, ymin - 1, xmax, ymax)``, so a box covering the whole image is
``(0, 0, width, height)``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from cvkit.data.sources import Resolved, find_dataset

VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
VOC_IMAGE_SETS = ("train", "val", "trainval", "test")
# COCO's names of the 20 VOC classes where they differ (every VOC class is a COCO class)
COCO_NAMES_OF_VOC = {
    "aeroplane": "airplane",
    "diningtable": "dining table",
    "motorbike": "motorcycle",
    "pottedplant": "potted plant",
    "sofa": "couch",
    "tvmonitor": "tv",
}
_FIX = (
    "run once with internet (Colab has it) so torchvision downloads VOC 2007, or unpack VOCtrainval_06-Nov-2007.tar "
    "(and VOCtest_06-Nov-2007.tar) into $CVKIT_DATA/voc/ (giving $CVKIT_DATA/voc/VOCdevkit/VOC2007/...), or pass "
    "path=<folder holding VOCdevkit/>. Offline notebooks use the synthetic shapes instead."
)


@dataclass
class VocSample:
    """One VOC photo with its boxes, in the fields :class:`cvkit.detection.DetectionBatches` reads.

    Attributes:
        image: (3, S, S) float32 in [0, 1], the photo resized (not cropped) to a square, or (3, H, W) as on disk
            when loaded with ``image_size=None``.
        boxes: (K, 4) float32 ``xyxy`` in pixels of ``image``.
        labels: (K,) int64 index into :data:`VOC_CLASSES`.
        difficult: (K,) bool, VOC's "difficult" flag (kept only when asked for).
        name: the image id, e.g. ``"000005"``.
        original_size: (height, width) of the photo on disk.
    """

    image: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    difficult: torch.Tensor
    name: str
    original_size: tuple[int, int]

    @property
    def num_objects(self) -> int:
        """K, the number of boxes."""
        return int(self.labels.numel())


def locate_voc(
    year: str = "2007", image_set: str = "trainval", path: str | os.PathLike | None = None, download: bool = True
) -> Resolved:
    """Find the folder that holds ``VOCdevkit/VOC<year>/`` with the list of ``image_set``, downloading when allowed.

    Raises:
        DatasetNotFoundError: nothing found and no download possible; the message lists what was tried.
    """
    files = [f"VOCdevkit/VOC{year}/ImageSets/Main/{image_set}.txt"]
    return find_dataset(
        "voc",
        files,
        path=path,
        allow_download=download,
        fix=_FIX,
        download=lambda folder: _download(folder, year, image_set),
    )


def parse_voc_annotation(xml_text: str) -> dict:
    """Read one VOC annotation file.

    Returns:
        dict with ``size`` (height, width), ``boxes`` (K, 4) float32 xyxy pixel edges (see the module docstring),
        ``labels`` (K,) int64 into :data:`VOC_CLASSES` and ``difficult`` (K,) bool.

    Raises:
        ValueError: an object's class is not one of :data:`VOC_CLASSES`, or a box is empty or outside the image.
    """
    root = ET.fromstring(xml_text)
    size = root.find("size")
    height, width = int(size.findtext("height")), int(size.findtext("width"))
    boxes, labels, difficult = [], [], []
    for obj in root.iter("object"):
        name = obj.findtext("name", "").strip()
        if name not in VOC_CLASSES:
            raise ValueError(f"unknown VOC class {name!r}; expected one of {VOC_CLASSES}")
        box = obj.find("bndbox")
        x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        edges = [x1 - 1, y1 - 1, x2, y2]
        if not (0 <= edges[0] < edges[2] <= width and 0 <= edges[1] < edges[3] <= height):
            raise ValueError(f"box {[x1, y1, x2, y2]} of a {name} is empty or outside the {width}x{height} image")
        boxes.append(edges)
        labels.append(VOC_CLASSES.index(name))
        difficult.append(obj.findtext("difficult", "0").strip() == "1")
    return {
        "size": (height, width),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "difficult": torch.tensor(difficult, dtype=torch.bool),
    }


def load_voc_detection(
    image_set: Literal["train", "val", "trainval", "test"] = "trainval",
    *,
    year: str = "2007",
    image_size: int | None = 128,
    limit: int | None = None,
    seed: int = 0,
    keep_difficult: bool = False,
    path: str | os.PathLike | None = None,
    download: bool = True,
) -> list[VocSample]:
    """Load VOC detection samples, photos resized to ``image_size`` x ``image_size`` with their boxes scaled.

    Args:
        image_set: which official list (``"test"`` exists for 2007 only).
        year: ``"2007"`` (5,011 trainval and 4,952 test images) or ``"2012"``.
        image_size: side of the square images, in pixels (the aspect ratio is not kept, so no box is cut off);
            ``None`` keeps every photo at its own size (for detectors that resize by themselves).
        limit: keep this many images, the first of a seeded shuffle of the list (``None``: all).
        seed: the shuffle's seed.
        keep_difficult: keep the objects VOC marks "difficult" (its evaluation ignores them; dropped by default).
        path: folder holding ``VOCdevkit/``.
        download: allow a torchvision download (needs internet; about 450 MB for 2007 trainval).

    Returns:
        list of :class:`VocSample` (images without any kept object are skipped).

    Raises:
        ValueError: unknown image set, non-positive ``image_size`` or ``limit``, or a malformed annotation.
        DatasetNotFoundError: no copy and no download (the message lists every place tried).
    """
    from PIL import Image

    if image_set not in VOC_IMAGE_SETS:
        raise ValueError(f"image_set must be one of {VOC_IMAGE_SETS}, got {image_set!r}")
    if image_size is not None and (not isinstance(image_size, int) or image_size <= 0):
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of images or None, got {limit}")
    where = locate_voc(year, image_set, path, download)
    root = where.directory / "VOCdevkit" / f"VOC{year}"
    ids = [
        line.strip()
        for line in (root / "ImageSets" / "Main" / f"{image_set}.txt").read_text().splitlines()
        if line.strip()
    ]
    if limit is not None and limit < len(ids):
        order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:limit]
        ids = [ids[i] for i in order.tolist()]
    samples = []
    for name in ids:
        ann = parse_voc_annotation((root / "Annotations" / f"{name}.xml").read_text())
        keep = torch.ones_like(ann["difficult"]) if keep_difficult else ~ann["difficult"]
        if not bool(keep.any()):
            continue
        with Image.open(root / "JPEGImages" / f"{name}.jpg") as im:
            rgb = im.convert("RGB")
            height, width = rgb.height, rgb.width
            photo = np.asarray(
                rgb if image_size is None else rgb.resize((image_size, image_size), Image.BILINEAR), dtype=np.uint8
            )
        if (height, width) != ann["size"]:
            raise ValueError(
                f"{name}.jpg is {width}x{height} but its annotation says {ann['size'][1]}x{ann['size'][0]}"
            )
        scale = torch.ones(4) if image_size is None else torch.tensor([image_size / width, image_size / height] * 2)
        samples.append(
            VocSample(
                image=torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255,
                boxes=ann["boxes"][keep] * scale,
                labels=ann["labels"][keep],
                difficult=ann["difficult"][keep],
                name=name,
                original_size=(height, width),
            )
        )
    return samples


def coco_to_voc(labels: torch.Tensor, categories: Sequence[str]) -> torch.Tensor:
    """Map a COCO detector's labels to VOC class indices, for scoring a COCO-trained detector on VOC.

    Args:
        labels: (D,) int64 indices into ``categories``.
        categories: the detector's class names (torchvision: ``weights.meta["categories"]``, 91 names with
            ``"__background__"`` and ``"N/A"`` holes).

    Returns:
        (D,) int64: the index into :data:`VOC_CLASSES`, or -1 for a COCO class VOC does not have (``"truck"``, ...).

    Raises:
        ValueError: ``categories`` lacks one of the 20 VOC classes (it is not a COCO label set).
    """
    names = [COCO_NAMES_OF_VOC.get(c, c) for c in VOC_CLASSES]
    missing = [n for n in names if n not in categories]
    if missing:
        raise ValueError(f"categories lack the VOC classes {missing}; expected COCO's category names")
    table = torch.full((len(categories),), -1, dtype=torch.int64)
    for v, n in enumerate(names):
        table[list(categories).index(n)] = v
    return table[labels.long()]


def _download(folder: Path, year: str, image_set: str) -> None:
    from torchvision.datasets import VOCDetection

    # torchvision picks VOC 2007's separate test archive itself from (year "2007", image_set "test")
    VOCDetection(root=str(folder), year=year, image_set=image_set, download=True)
