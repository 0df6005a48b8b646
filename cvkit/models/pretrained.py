"""Pretrained torchvision weights when they can be had: a download where there is internet, ``None`` otherwise.

Notebooks must run offline (CI, a laptop on a train), so every use of pretrained weights goes
through :func:`try_pretrained`, which prints one line and returns ``None`` instead of failing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn


def try_pretrained(name: str, weights: str = "DEFAULT") -> tuple[nn.Module, Any] | None:
    """Build ``torchvision.models.<name>(weights=...)`` in eval mode, or say why not and return ``None``.

    Args:
        name: a torchvision classification model (``"resnet50"``, ``"vgg16"``, ...).
        weights: the weights enum member name (``"DEFAULT"``, ``"IMAGENET1K_V1"``, ...).

    Returns:
        ``(model, weights)`` with the weights enum (``weights.meta["categories"]`` are the class names,
        ``weights.transforms()`` the preprocessing), or ``None`` when the weights cannot be loaded
        (no internet and no cached copy); one line is printed either way.

    Raises:
        ValueError: ``name`` is not a torchvision model.
    """
    import torchvision

    if name not in torchvision.models.list_models():
        raise ValueError(f"unknown torchvision model {name!r}; see torchvision.models.list_models()")
    try:
        enum = torchvision.models.get_model_weights(name)[weights]
        model = torchvision.models.get_model(name, weights=enum).eval()
    except Exception as exc:  # noqa: BLE001 - offline, firewalled, corrupt cache: all mean "skip"
        print(f"pretrained {name} weights unavailable ({type(exc).__name__}: {str(exc)[:80]}); skipping this part")
        return None
    print(f"loaded pretrained {name} ({enum})")
    return model, enum


def detect_with_pretrained(
    name: str, image: torch.Tensor, weights: str = "DEFAULT"
) -> tuple[dict[str, torch.Tensor], list[str]] | None:
    """One image through a pretrained torchvision detector (Faster/Mask R-CNN on COCO), or ``None`` offline.

    Args:
        name: a torchvision detection model (``"fasterrcnn_resnet50_fpn"``, ``"maskrcnn_resnet50_fpn"``, ...).
        image: (3, H, W) float in [0, 1] (the detector normalises and resizes it itself).
        weights: the weights enum member name.

    Returns:
        ``(prediction, categories)``: torchvision's dict (``boxes`` (D, 4) xyxy pixels, ``labels`` (D,) int64
        indexing ``categories``, ``scores`` (D,), and ``masks`` (D, 1, H, W) for Mask R-CNN), and the class
        names; ``None`` when the weights cannot be loaded (see :func:`try_pretrained`).

    Raises:
        ValueError: ``name`` is not a torchvision model, or ``image`` is not (3, H, W).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be (3, H, W) float in [0, 1], got {tuple(image.shape)}")
    loaded = try_pretrained(name, weights)
    if loaded is None:
        return None
    model, enum = loaded
    with torch.no_grad():
        prediction = model([image])[0]
    return prediction, list(enum.meta["categories"])
