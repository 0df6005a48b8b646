"""Pre-training any method of :mod:`cvkit.ssl`, and the supervised baseline with the same budget.

Every method here is an ``nn.Module`` whose ``forward`` takes ``num_views`` augmented views
of a batch and returns its loss, and whose ``encoder`` is the backbone to evaluate. That
makes one step function enough for all of them, so :func:`pretrain` is the kit's training
loop (:func:`cvkit.train.fit`: device, mixed precision, progress, history) with that step::

    method = SimCLR(ConvEncoder(1, (32, 64, 128)))
    history = pretrain(method, images, augment=simclr_augmentation(28), epochs=5, batch_size=256)
    probe = linear_probe(method.encoder, train_x, train_y, test_x, test_y)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from cvkit.data.augment import BatchTransform
from cvkit.data.loader import DeviceLoader
from cvkit.layers.heads import feature_dim_of
from cvkit.ssl.probe import ProbeResult
from cvkit.train import History, StepOutput, fit


def ssl_step(
    augment: BatchTransform | Sequence[BatchTransform] | None, num_views: int, generator: torch.Generator | None
):
    """A :func:`cvkit.train.fit` step: make the views of an image batch, return the method's loss.

    Args:
        augment: one transform (applied ``num_views`` times, independently), a sequence with one transform
            per view (e.g. DINO's global and local crops), or ``None`` (every view is the batch itself).
        num_views: views per image the method takes.
        generator: random numbers of the augmentations (on the data's device).

    Raises:
        ValueError: a sequence with fewer transforms than ``num_views``.
    """
    if isinstance(augment, (list, tuple)) and len(augment) < num_views:
        raise ValueError(f"got {len(augment)} augmentations for a method that takes {num_views} views")

    def step(model: nn.Module, batch) -> StepOutput:
        x = batch[0]
        if augment is None:
            views = [x] * num_views
        elif isinstance(augment, (list, tuple)):
            views = [t(x, generator) for t in augment]
        else:
            views = [augment(x, generator) for _ in range(num_views)]
        return StepOutput(model(*views), x.shape[0])

    return step


def pretrain(
    method: nn.Module,
    images: torch.Tensor,
    *,
    augment: BatchTransform | Sequence[BatchTransform] | None = None,
    epochs: int = 5,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device | None = None,
    num_views: int | None = None,
    **options,
) -> History:
    """Self-supervised pre-training of ``method`` on unlabelled ``images`` with :func:`cvkit.train.fit` (AdamW, one-cycle).

    Args:
        method: an SSL module (``forward(*views) -> loss``, attribute ``num_views``).
        images: (N, C, H, W) uint8 or float in [0, 1]; kept on the device by a :class:`cvkit.data.DeviceLoader`.
        augment: see :func:`ssl_step`.
        epochs, batch_size, lr, weight_decay, seed: the training budget and optimiser (drop_last batches).
        device: ``None``: the best available.
        num_views: overrides ``method.num_views`` (e.g. DINO with extra local crops).
        **options: more :class:`cvkit.train.TrainConfig` fields (``progress``, ``verbose``, ``precision``, ...).

    Returns:
        the :class:`cvkit.train.History` (``train_loss`` per epoch).

    Raises:
        ValueError: fewer images than one batch.
    """
    if images.shape[0] < batch_size:
        raise ValueError(f"need at least batch_size = {batch_size} images, got {images.shape[0]}; lower batch_size")
    views = num_views if num_views is not None else getattr(method, "num_views", 1)
    dummy = torch.zeros(images.shape[0], dtype=torch.long)
    loader = DeviceLoader(images, dummy, batch_size, shuffle=True, drop_last=True, device=device, seed=seed)
    generator = torch.Generator(device=loader.device).manual_seed(seed)
    step = ssl_step(augment, views, generator)
    return fit(
        method,
        loader,
        step=step,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=str(loader.device),
        **options,
    )


def train_supervised(
    encoder: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    augment: BatchTransform | None = None,
    num_classes: int | None = None,
    epochs: int = 5,
    batch_size: int = 256,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device | None = None,
    **options,
) -> History:
    """The supervised baseline: train ``encoder`` plus a linear classifier on the labels, with the SSL budget.

    Same loop, optimiser, epochs and batch size as :func:`pretrain`, and one augmented view per
    image, so "supervised" and "self-supervised" differ only in where the training signal comes from.
    The encoder is trained in place; the classifier is discarded (the probe trains its own).

    Args:
        encoder: backbone (B, C, H, W) -> (B, D) with ``feature_dim``.
        images: (N, C, H, W) uint8 or float in [0, 1]; labels: (N,) int64.
        augment: one batched transform per batch (e.g. the SimCLR pipeline or a flip-and-translate).
        num_classes: K (default: ``labels.max() + 1``).

    Returns:
        :class:`cvkit.train.History` with ``train_loss`` and ``train_accuracy``.
    """
    k = num_classes or int(labels.max()) + 1
    model = nn.Sequential(encoder, nn.Linear(feature_dim_of(encoder), k))
    loader = DeviceLoader(
        images, labels, batch_size, shuffle=True, drop_last=True, augment=augment, device=device, seed=seed
    )
    return fit(
        model, loader, epochs=epochs, lr=lr, weight_decay=weight_decay, seed=seed, device=str(loader.device), **options
    )


def probe_table(results: dict[str, ProbeResult]) -> str:
    """A Markdown table of probe results, one row per method: linear-probe test/train accuracy and k-NN accuracy (%)."""
    lines = ["| method | linear probe (test) | linear probe (train) | k-NN (test) |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        knn = f"{100 * r.knn_accuracy:.1f}" if r.knn_accuracy is not None else "-"
        lines.append(f"| {name} | {100 * r.test_accuracy:.1f} | {100 * r.train_accuracy:.1f} | {knn} |")
    return "\n".join(lines)
