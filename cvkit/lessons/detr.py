"""Lesson 08_3 (DETR): the training the notebook runs, and the course checkpoint made with it.

:func:`train_detr` is the notebook's training cell: the fast profile calls it with small settings, the full profile
with its own, and ``cvkit checkpoints retrain detr`` with :data:`DETR_CHECKPOINT` (the notebook's full profile,
which trains on two CPU cores in about ten minutes).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import ShapesDataset
from cvkit.detection import DetectionBatches, detr_step, evaluate_detector, query_specialisation
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.models import create_model
from cvkit.train import History, fit

IMAGE_SIZE = 64
ARCHITECTURE = dict(num_classes=3, num_queries=10, dim=64, ffn=128, widths=(16, 32, 64))  # the notebook's small DETR
DETR_CHECKPOINT = dict(train_images=2000, epochs=30, batch_size=32)  # = the notebook's FULL training settings
HELD_OUT_SEED = 1  # the notebook's validation images are ShapesDataset(seed=1); training uses seed 0


def build_detr() -> nn.Module:
    """The lesson's DETR (:data:`ARCHITECTURE`), untrained: 3 shape classes, 10 queries, d = 64, stride 8."""
    return create_model("detr_small", **ARCHITECTURE)


def train_detr(
    train_images: int = 512,
    epochs: int = 6,
    batch_size: int = 16,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
) -> tuple[nn.Module, History]:
    """Train the lesson's DETR on synthetic shapes (64 x 64 images, seed 0) with the Hungarian set loss.

    AdamW at 1e-3 with a one-cycle schedule, weight decay 1e-4, gradient clipping at 0.1 (as in the paper),
    left-right flips; ``cvkit.train.fit`` runs the loop with :func:`cvkit.detection.detr_step`.

    Args:
        train_images: shapes images to train on.
        epochs, batch_size: passes over them, and images per step.
        seed: seeds the initial weights, the batch order and the flips.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit` (``checkpoint_dir``
            makes the run resumable).

    Returns:
        ``(model, history)``: the trained DETR (on ``device``) and its per-epoch history.
    """
    train = ShapesDataset(n=train_images, image_size=IMAGE_SIZE, seed=0)
    batches = DetectionBatches(train, batch_size, flip=True, label_offset=0, seed=seed)  # DETR's classes start at 0
    torch.manual_seed(seed)
    model = build_detr()
    history = fit(
        model,
        batches,
        step=detr_step,
        epochs=epochs,
        lr=1e-3,
        weight_decay=1e-4,
        grad_clip=0.1,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def evaluate_detr(model: nn.Module, images: int = 200, seed: int = HELD_OUT_SEED) -> dict[str, float]:
    """COCO AP, AP50 and the queries' specialisation on ``images`` held-out shapes images (``ShapesDataset(seed=seed)``)."""
    held_out = ShapesDataset(n=images, image_size=IMAGE_SIZE, seed=seed)
    result = evaluate_detector(model, held_out, label_offset=0)
    spec = query_specialisation(model, torch.stack([held_out[i].image for i in range(len(held_out))]))
    return {
        "map": float(result["map"]),
        "map_50": float(result["map_50"]),
        "map_75": float(result["map_75"]),
        "query_spread_ratio": spec["spread_ratio"],
        "query_max_firing": spec["max_firing"],
    }


register_checkpoint(
    CourseCheckpoint(
        name="detr",
        lesson="08_object_detection_3_detr",
        description="the lesson's small DETR (3 classes, 10 queries, d=64) on 2,000 synthetic 64x64 shapes images, 30 epochs",
        build=build_detr,
        train=train_detr,
        config=DETR_CHECKPOINT,
        evaluate=evaluate_detr,
        tolerances={"map_50": 0.05, "map": 0.05},
    )
)
