"""Lesson 06 (attention and the ViT): training a registry classifier on Fashion-MNIST, and two checkpoints made with it.

:func:`train_fashion_classifier` is what notebook 06 runs for its ViT-vs-CNN comparison (any training-set size).
With more data and epochs than the fast profile has, it makes the course checkpoint ``vit_fashion`` (the ViT whose
attention the lesson draws) and ``fashion_classifier`` (a CNN that lesson 12 uses to judge generated samples).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import DeviceLoader, load_fashion_mnist
from cvkit.inspect import (
    attention_inside_mask,
    attention_maps,
    attention_rollout,
    cls_attention,
    mean_attention_distance,
    vit_token_layout,
)
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.models import create_model
from cvkit.train import History, evaluate, fit

VIT_CONFIG = dict(
    model_name="vit_tiny_patch4_28", train_images=60000, epochs=5, batch_size=128, lr=2e-3, weight_decay=0.05
)
JUDGE_CONFIG = dict(
    model_name="convnet_small_28", train_images=30000, epochs=4, batch_size=128, lr=3e-3, weight_decay=0.05
)


def train_fashion_classifier(
    model_name: str = "vit_tiny_patch4_28",
    train_images: int | None = 1000,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 0.05,
    test_images: int = 1000,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = False,
    model: nn.Module | None = None,
) -> tuple[nn.Module, History]:
    """Train a registry classifier on a class-balanced subset of Fashion-MNIST, scored on held-out test images.

    AdamW with a one-cycle schedule through :func:`cvkit.train.fit`, no augmentation: lesson 06's protocol, the same
    for the ViT and the CNN so that only the architecture differs.

    Args:
        model_name: a 28 x 28 grey classifier of the registry (``"vit_tiny_patch4_28"``, ``"convnet_small_28"``).
        train_images: training images (a seeded class-balanced subset; ``None``: all 60,000).
        epochs, batch_size, lr, weight_decay: the budget.
        test_images: test-split images scored after every epoch (``val_accuracy`` in the history).
        seed: seeds the initial weights and the batch order.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: train this model instead of a fresh ``create_model(model_name)``.

    Returns:
        ``(model, history)``.

    Raises:
        cvkit.data.DatasetNotFoundError: Fashion-MNIST is nowhere to be found.
    """
    train = load_fashion_mnist("train").subset(train_images)
    test = load_fashion_mnist("test", limit=test_images)
    if model is None:
        torch.manual_seed(seed)
        model = create_model(model_name)
    loader = DeviceLoader.from_dataset(train, batch_size, device=device, seed=seed)
    test_loader = DeviceLoader.from_dataset(test, 500, shuffle=False, device=device)
    history = fit(
        model,
        loader,
        test_loader,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def fashion_foreground(images: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """(B, 1, H, W) Fashion-MNIST images in [0, 1] -> (B, H, W) bool: the garment (its pixels are brighter than the black background)."""
    return images[:, 0] > threshold


@torch.no_grad()
def vit_attention_report(model: nn.Module, images: torch.Tensor) -> dict:
    """What a ViT's attention shows on (B, 1, 28, 28) Fashion-MNIST images: the quantities lesson 06 draws and checks.

    Returns:
        dict with ``distances`` (L, heads) mean attention distance in pixels (ViT Fig. 7), ``uniform`` (the distance
        uniform attention gives), ``rollout`` (B, gh, gw) attention rollout to the class token, ``inside`` (B,) the
        rollout's mass on the garment and ``area`` (B,) the garment's share of the image (uniform attention's mass).
    """
    model.eval()
    device = next(model.parameters()).device
    maps = [m.cpu() for m in attention_maps(model, images.to(device))]
    prefix, grid, patch = vit_token_layout(model)
    n = maps[0].shape[-1]
    distances = mean_attention_distance(maps, grid, patch, prefix)
    uniform = mean_attention_distance([torch.full((1, 1, n, n), 1 / n)], grid, patch, prefix).item()
    rollout = cls_attention(attention_rollout(maps), grid, prefix)  # (B, gh, gw)
    inside, area = attention_inside_mask(rollout, fashion_foreground(images.cpu()))
    return {
        "maps": maps,
        "distances": distances,
        "uniform": uniform,
        "rollout": rollout,
        "inside": inside,
        "area": area,
    }


def evaluate_vit(model: nn.Module, images: int = 500) -> dict[str, float]:
    """Test accuracy and the attention quantities of lesson 06 on the first ``images`` test images."""
    test = load_fashion_mnist("test")
    device = next(model.parameters()).device
    acc = evaluate(model, DeviceLoader.from_dataset(test, 500, shuffle=False, device=device), device=device)["accuracy"]
    report = vit_attention_report(model, test.float_images()[:images])
    per_layer = report["distances"].mean(1)
    return {
        "test_accuracy": acc,
        "distance_first_layer": float(per_layer[0]),
        "distance_last_layer": float(per_layer[-1]),
        "uniform_distance": report["uniform"],
        "rollout_on_object": float(report["inside"].mean()),
        "object_area": float(report["area"].mean()),
    }


def evaluate_judge(model: nn.Module) -> dict[str, float]:
    """Accuracy on the whole Fashion-MNIST test split (10,000 images)."""
    device = next(model.parameters()).device
    loader = DeviceLoader.from_dataset(load_fashion_mnist("test"), 500, shuffle=False, device=device)
    return {"test_accuracy": evaluate(model, loader, device=device)["accuracy"]}


register_checkpoint(
    CourseCheckpoint(
        name="vit_fashion",
        lesson="06_attention_vit",
        description="the lesson's ViT (vit_tiny_patch4_28: 49 patches of 4x4, D=48, 4 blocks, 4 heads) on all 60,000 Fashion-MNIST images, 5 epochs",
        build=lambda: create_model(VIT_CONFIG["model_name"]),
        train=train_fashion_classifier,
        config=VIT_CONFIG,
        evaluate=evaluate_vit,
        tolerances={"test_accuracy": 0.02, "rollout_on_object": 0.05},
    )
)

register_checkpoint(
    CourseCheckpoint(
        name="fashion_classifier",
        lesson="12_diffusion",
        description="a plain CNN (convnet_small_28) on 30,000 Fashion-MNIST images, 4 epochs: the judge of generated samples' classes",
        build=lambda: create_model(JUDGE_CONFIG["model_name"]),
        train=train_fashion_classifier,
        config=JUDGE_CONFIG,
        evaluate=evaluate_judge,
        tolerances={"test_accuracy": 0.01},
    )
)
