"""torchvision's pretrained detection and segmentation models, where their weights can be had.

Lectures 08-09 end with the real thing on a real photo: a COCO-trained Faster R-CNN, Mask R-CNN
or FCN. Their weights download from download.pytorch.org on first use (Colab, Kaggle) and are
cached by torch afterwards; without internet :func:`pretrained_torchvision` prints one line and
returns ``None``, so the notebook skips that part instead of failing.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

PRETRAINED = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "fcn_resnet50")


def pretrained_torchvision(kind: str = "fasterrcnn_resnet50_fpn"):
    """Build a pretrained torchvision model, or return ``None`` (with a one-line message) when its weights cannot be had.

    Args:
        kind: ``"fasterrcnn_resnet50_fpn"`` or ``"maskrcnn_resnet50_fpn"`` (COCO, 91 category ids),
            or ``"fcn_resnet50"`` (semantic segmentation, the 20 PASCAL VOC classes + background,
            trained on a COCO subset).

    Returns:
        ``(model in eval mode, category names indexed by label)`` or ``None``.

    Raises:
        ValueError: an unknown ``kind``.
    """
    import torchvision.models.detection as tvd
    import torchvision.models.segmentation as tvs

    builders = {
        "fasterrcnn_resnet50_fpn": (tvd.fasterrcnn_resnet50_fpn, tvd.FasterRCNN_ResNet50_FPN_Weights.DEFAULT),
        "maskrcnn_resnet50_fpn": (tvd.maskrcnn_resnet50_fpn, tvd.MaskRCNN_ResNet50_FPN_Weights.DEFAULT),
        "fcn_resnet50": (tvs.fcn_resnet50, tvs.FCN_ResNet50_Weights.DEFAULT),
    }
    if kind not in builders:
        raise ValueError(f"kind must be one of {PRETRAINED}, got {kind!r}")
    build, weights = builders[kind]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    try:
        if not cached.is_file():  # fail fast offline, before building a 40M-parameter model for nothing
            socket.create_connection((urlparse(weights.url).hostname, 443), timeout=5).close()
        model = build(weights=weights)
    except Exception as exc:  # no internet, a proxy, a truncated download: all mean "skip this part"
        print(f"pretrained {kind} unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:100]}); skipping the pretrained part")
        return None
    return model.eval(), list(weights.meta["categories"])
