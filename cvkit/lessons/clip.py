"""Lesson 10_2 (CLIP): training the small CLIP of the notebook on captioned shapes, and the checkpoint made with it."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import COLOUR_NAMES, SHAPE_CLASSES, DeviceLoader
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.train import History, fit
from cvkit.vl import (
    CLIP,
    CaptionedImages,
    CaptionTokenizer,
    captioned_shapes,
    clip_step,
    pointing_game,
    zero_shot_classifier,
    zero_shot_predict,
)

CLIP_CHECKPOINT = dict(train_images=30000, image_size=48, widths=(16, 32, 64), epochs=20, batch_size=128, lr=2e-3)
CLASSES = [f"{colour} {shape}" for colour in COLOUR_NAMES for shape in SHAPE_CLASSES]  # the 12 colour-shape classes


def build_clip(widths: Sequence[int] = (16, 32, 64)) -> CLIP:
    """The lesson's CLIP: a ConvEncoder of ``widths`` for images, a 2-layer causal transformer for captions, E = 64."""
    return CLIP(len(CaptionTokenizer()), widths=tuple(widths), embed_dim=64, text_layers=2)


def train_clip(
    train_images: int = 3000,
    image_size: int = 48,
    widths: Sequence[int] = (16, 32, 64),
    epochs: int = 12,
    batch_size: int = 128,
    lr: float = 3e-3,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
    model: nn.Module | None = None,
    data: CaptionedImages | None = None,
) -> tuple[nn.Module, History]:
    """Contrastive pre-training on (image, caption) pairs of synthetic shapes (seed 0): CLIP's symmetric loss.

    Args:
        train_images: captioned images (1 to 3 objects each) at ``image_size`` pixels.
        widths: the image encoder's widths (:func:`build_clip`).
        epochs, batch_size, lr: the budget (AdamW, one-cycle; the batch is CLIP's source of negatives).
        seed: seeds the initial weights and the batch order.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: train this CLIP instead of a fresh :func:`build_clip`.
        data: the training pairs, when already rendered (``captioned_shapes(train_images, image_size, seed=0)``).

    Returns:
        ``(model, history)``; the history's ``train_accuracy`` is in-batch retrieval accuracy.
    """
    train = data if data is not None else captioned_shapes(train_images, image_size, seed=0)
    if model is None:
        torch.manual_seed(seed)
        model = build_clip(widths)
    loader = DeviceLoader(train.images, train.tokens, batch_size, drop_last=True, device=device, seed=seed)
    history = fit(
        model,
        loader,
        step=clip_step(),
        epochs=epochs,
        lr=lr,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def evaluate_clip(model: nn.Module, images: int = 400, image_size: int = 48) -> dict[str, float]:
    """Zero-shot accuracy over the 12 classes with the prompt "a {}" (single-object images, seed 2) and the pointing
    game on images of 1 to 3 objects (seed 1), both held out."""
    device = next(model.parameters()).device
    tok = CaptionTokenizer()
    weights = zero_shot_classifier(model, tok, CLASSES, ["a {}"])
    single = captioned_shapes(images, image_size, seed=2, max_shapes=1)
    truth = torch.tensor([CLASSES.index(" ".join(objs[0])) for objs in single.objects])
    accuracy = (
        (zero_shot_predict(model, single.float_images().to(device), weights).argmax(1).cpu() == truth)
        .float()
        .mean()
        .item()
    )
    hit, chance = pointing_game(model, captioned_shapes(images, image_size, seed=1), weights, CLASSES)
    return {"zero_shot_accuracy": accuracy, "pointing_game": hit, "pointing_chance": chance}


register_checkpoint(
    CourseCheckpoint(
        name="clip_shapes",
        lesson="10_2_clip_vision_language",
        description="the lesson's CLIP (ConvEncoder 16-32-64, 2-layer text transformer, E=64) on 30,000 captioned 48x48 shapes images, 20 epochs",
        build=lambda: build_clip(CLIP_CHECKPOINT["widths"]),
        train=train_clip,
        config=CLIP_CHECKPOINT,
        evaluate=evaluate_clip,
        tolerances={"zero_shot_accuracy": 0.05, "pointing_game": 0.05},
    )
)
