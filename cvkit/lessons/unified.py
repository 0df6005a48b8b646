"""Lesson 13_2 (Florence-2's idea): training one small encoder-decoder on captioning, detection and grounding written
as text (:mod:`cvkit.vl.unified`), and the checkpoint made with it."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import ShapesDataset
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.train import History, fit
from cvkit.vl import CaptionTokenizer, TransformerCaptioner
from cvkit.vl.unified import UnifiedData, score_tasks, unified_dataset, unified_generate, unified_step, unified_vocab

UNIFIED_IMAGE_SIZE = 48
UNIFIED_MAX_LEN = 20  # <bos> <od> <sep>, five tokens for each of at most three objects, <eos>: 19 tokens
UNIFIED_CHECKPOINT = dict(train_images=16000, bins=16, widths=(32, 64, 96), dim=96, epochs=15, batch_size=64, lr=2e-3)


def build_unified(bins: int = 16, widths: Sequence[int] = (32, 64, 96), dim: int = 96) -> TransformerCaptioner:
    """The lesson's model: a :class:`cvkit.vl.TransformerCaptioner` over :func:`cvkit.vl.unified.unified_vocab`
    (``bins`` location tokens), for 48 x 48 images and sequences of up to :data:`UNIFIED_MAX_LEN` tokens.

    Args:
        bins: location bins per axis. widths: the ConvEncoder's stage widths (stride 8: a 6 x 6 grid of regions).
        dim: transformer width (4 heads, 1 encoder and 2 decoder layers).
    """
    return TransformerCaptioner(
        len(unified_vocab(bins)),
        widths=tuple(widths),
        dim=dim,
        heads=4,
        encoder_layers=1,
        decoder_layers=2,
        max_len=UNIFIED_MAX_LEN,
        image_size=UNIFIED_IMAGE_SIZE,
    )


def unified_shapes(images: int, bins: int = 16, seed: int = 0) -> tuple[ShapesDataset, UnifiedData]:
    """``images`` shapes images and their three tasks, tokenised (:func:`cvkit.vl.unified.unified_dataset`).

    Args:
        images: how many images (48 x 48, 1 to 3 objects each). bins: location bins per axis. seed: of the images and of
            the grounding questions (0 trains, 1 is held out).

    Returns:
        ``(shapes, data)``: the :class:`cvkit.data.ShapesDataset` (boxes xyxy pixels) and its
        :class:`cvkit.vl.unified.UnifiedData` (``source_images`` (M, 3, 48, 48) float32 in [0, 1], one per image; tokens per (image, task) pair).
    """
    shapes = ShapesDataset(images, image_size=UNIFIED_IMAGE_SIZE, seed=seed)
    return shapes, unified_dataset(shapes, bins=bins, seed=seed, tokenizer=CaptionTokenizer(unified_vocab(bins)))


def train_unified(
    train_images: int = 1200,
    bins: int = 16,
    widths: Sequence[int] = (32, 64, 96),
    dim: int = 96,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 2e-3,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
    model: nn.Module | None = None,
    data: UnifiedData | None = None,
) -> tuple[nn.Module, History]:
    """Teacher-forced training on every (image, task) pair of ``train_images`` shapes images (seed 0): the loss is
    cross-entropy on the answer tokens only (:func:`cvkit.vl.unified.unified_loss`).

    Args:
        train_images: images; each gives a caption, a detection and (when one object is unique) a grounding example.
        bins, widths, dim: the model (:func:`build_unified`).
        epochs, batch_size, lr: the budget (AdamW, one-cycle).
        seed: seeds the initial weights and the batch order.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: train this model instead of a fresh :func:`build_unified`.
        data: the training pairs, when already made (``unified_shapes(train_images, bins, seed=0)[1]``).

    Returns:
        ``(model, history)``.
    """
    train = data if data is not None else unified_shapes(train_images, bins, seed=0)[1]
    if model is None:
        torch.manual_seed(seed)
        model = build_unified(bins, widths, dim)
    loader = torch.utils.data.DataLoader(
        train.pair_dataset(),  # each image stored once, looked up per (image, task) pair
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    history = fit(
        model,
        loader,
        step=unified_step,
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


def answer_tasks(model: nn.Module, data: UnifiedData, bins: int = 16) -> list[str]:
    """The model's greedy answer to every prompt of ``data``.

    Args:
        model: a model from :func:`build_unified` (eval mode is set and restored by the generation).
        data: prompts and their images (N, 3, 48, 48) float32 in [0, 1] (:func:`unified_shapes`).
        bins: the location bins the model was trained with (its vocabulary).

    Returns:
        N answer strings in ``data``'s order, for :func:`cvkit.vl.unified.score_tasks`.
    """
    tok = CaptionTokenizer(unified_vocab(bins))
    device = next(model.parameters()).device
    return unified_generate(model, data.images.to(device), data.prompts, tok, max_new=UNIFIED_MAX_LEN)


def evaluate_unified(model: nn.Module, images: int = 300, bins: int = 16) -> dict[str, float]:
    """Score ``model`` on ``images`` held-out images (seed 1), every answer read from generated tokens.

    Returns:
        :func:`cvkit.vl.unified.score_tasks`'s dict: caption exact match, detection AP50 and AP, grounding hits
        (IoU >= 0.5) and the phrase-blind grounding baseline, floats in [0, 1].
    """
    shapes, data = unified_shapes(images, bins, seed=1)
    return score_tasks(answer_tasks(model, data, bins), data, shapes, bins)


register_checkpoint(
    CourseCheckpoint(
        name="unified_shapes",
        lesson="13_segment_anything_2_unified_models",
        description="the lesson's Florence-2-style model (ConvEncoder 32-64-96, transformer decoder, D=96, 16 location bins) "
        "on captioning, detection and grounding of 16,000 48x48 shapes images, 15 epochs",
        build=lambda: build_unified(
            UNIFIED_CHECKPOINT["bins"], UNIFIED_CHECKPOINT["widths"], UNIFIED_CHECKPOINT["dim"]
        ),
        train=train_unified,
        config=UNIFIED_CHECKPOINT,
        evaluate=evaluate_unified,
        tolerances={"caption_exact": 0.05, "detection_ap50": 0.05, "grounding_hits": 0.05},
    )
)
