"""Lesson 13 (Segment Anything): training the small SAM of the notebook, and the checkpoint made with it."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import DeviceLoader, ShapesDataset
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.sam import SmallSAM, evaluate_prompts, evaluate_tracking, instance_pairs, sam_step
from cvkit.train import History, fit

ARCHITECTURE_KEYS = ("image_size", "embed_dim", "encoder_width", "encoder_blocks")
SAM_CHECKPOINT = dict(
    image_size=32,
    train_images=4000,
    epochs=15,
    batch_size=32,
    embed_dim=32,
    encoder_width=16,
    encoder_blocks=2,
    lr=2e-3,
)


def build_sam(image_size: int = 32, embed_dim: int = 32, encoder_width: int = 16, encoder_blocks: int = 2) -> SmallSAM:
    """The lesson's small SAM for ``image_size`` x ``image_size`` images."""
    return SmallSAM(image_size, embed_dim=embed_dim, encoder_width=encoder_width, encoder_blocks=encoder_blocks)


def shapes_pairs(n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, object) pair of ``ShapesDataset(n, image_size, 1 to 3 shapes, seed)``: (M, 3, S, S) uint8, (M, S, S) bool."""
    return instance_pairs(ShapesDataset(n, image_size, min_shapes=1, max_shapes=3, seed=seed))


def train_sam(
    image_size: int = 32,
    train_images: int = 800,
    epochs: int = 5,
    batch_size: int = 16,
    embed_dim: int = 32,
    encoder_width: int = 16,
    encoder_blocks: int = 2,
    lr: float = 3e-3,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
    model: nn.Module | None = None,
) -> tuple[nn.Module, History]:
    """Train the small SAM with SAM's loss on simulated prompts (points, boxes, point + box) over synthetic shapes.

    Every (image, object) pair of ``train_images`` shapes images (seed 0) is one example; focal and dice loss weighted
    1 : 1 (a short run converges faster than with SAM's 20 : 1), AdamW with weight decay 1e-4, one-cycle.

    Args:
        image_size, embed_dim, encoder_width, encoder_blocks: the model (:func:`build_sam`).
        train_images, epochs, batch_size, lr: the data and budget.
        seed: seeds the initial weights, the batch order and the simulated prompts.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: train this model instead of a fresh one.

    Returns:
        ``(model, history)``.
    """
    images, masks = shapes_pairs(train_images, image_size, seed=0)
    if model is None:
        torch.manual_seed(seed)
        model = build_sam(image_size, embed_dim, encoder_width, encoder_blocks)
    loader = DeviceLoader(images, masks, batch_size, device=device, drop_last=True, seed=seed)
    history = fit(
        model,
        loader,
        step=sam_step(focal_weight=1.0, dice_weight=1.0),
        epochs=epochs,
        lr=lr,
        weight_decay=1e-4,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def evaluate_sam(model: nn.Module, images: int = 300, videos: int = 20) -> dict[str, float]:
    """Held-out mIoU per prompt kind (shapes seed 1) and tracking IoU over frames 1-5 (20 videos from shapes seed 11)."""
    s = model.image_size
    test_images, test_masks = shapes_pairs(images, s, seed=1)
    results = evaluate_prompts(model, test_images, test_masks, seed=0)
    per_frame = evaluate_tracking(model, ShapesDataset(videos, s, min_shapes=3, max_shapes=3, seed=11))
    return {
        **{f"miou_{k.replace('+', '_')}": r["miou"] for k, r in results.items()},
        "tracking_iou_frame0": float(per_frame[0]),
        "tracking_iou_later": float(per_frame[1:].mean()),
    }


register_checkpoint(
    CourseCheckpoint(
        name="small_sam",
        lesson="13_segment_anything",
        description="the lesson's small SAM (32x32 images, D=32) on every object of 4,000 synthetic shapes images, 15 epochs",
        build=lambda: build_sam(**{k: SAM_CHECKPOINT[k] for k in ARCHITECTURE_KEYS}),
        train=train_sam,
        config=SAM_CHECKPOINT,
        evaluate=evaluate_sam,
        tolerances={"miou_box": 0.03, "miou_point": 0.05, "tracking_iou_later": 0.08},
    )
)
