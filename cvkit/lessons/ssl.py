"""Lesson 11 (self-supervised learning): every method as the notebooks build and train it, and the checkpoints.

The notebooks 11_1 (pretext tasks), 11_2 (contrastive, self-distillation), 11_3 (masked image modelling) and 11_4
(CPC, the denoising autoencoder) build each method with :func:`ssl_method` and its augmentation with
:func:`ssl_augment`, and pre-train it with :func:`cvkit.ssl.pretrain`; :func:`train_ssl` does the same from scratch, which is what ``cvkit checkpoints retrain
ssl_NAME`` runs with more images and epochs. The checkpoints keep the fast profile's architectures (ConvEncoder
16-32-64; ViT with D=48 and 2 blocks), so a notebook compares them with its own random-init encoder of that shape.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from cvkit.data import load_fashion_mnist
from cvkit.data.augment import BatchTransform
from cvkit.lessons.checkpoints import CourseCheckpoint, register_checkpoint
from cvkit.models import create_model
from cvkit.ssl import (
    CPC,
    BEiT,
    BYOL,
    DINO,
    DenoisingAutoencoder,
    DensePretext,
    JigsawPuzzle,
    MaskedAutoencoder,
    MoCo,
    PatchGridEncoder,
    PatchKMeansTokenizer,
    ProbeBench,
    RelativePosition,
    RotationPrediction,
    SimCLR,
    ViTEncoder,
    linear_probe,
    pretrain,
    simclr_augmentation,
)
from cvkit.train import History

PATCH = 4  # the ViT methods cut 28 x 28 images into a 7 x 7 grid of 4 x 4 patches
CONV_METHODS = ("rotation", "relative_position", "jigsaw", "inpainting", "simclr", "moco", "byol", "dino", "cpc", "dae")
VIT_METHODS = ("mae", "beit")
METHOD_NAMES = {
    "rotation": "rotation",
    "relative_position": "relative position",
    "jigsaw": "jigsaw",
    "inpainting": "inpainting",
    "simclr": "SimCLR",
    "moco": "MoCo",
    "byol": "BYOL",
    "dino": "DINO",
    "mae": "MAE",
    "beit": "BEiT (k-means tokens)",
    "cpc": "CPC",
    "dae": "DAE",
}
LESSONS = {
    "rotation": "11_1_ssl_pretext_tasks",
    "relative_position": "11_1_ssl_pretext_tasks",
    "jigsaw": "11_1_ssl_pretext_tasks",
    "inpainting": "11_1_ssl_pretext_tasks",
    "simclr": "11_2_ssl_contrastive",
    "moco": "11_2_ssl_contrastive",
    "byol": "11_2_ssl_contrastive",
    "dino": "11_2_ssl_contrastive",
    "mae": "11_3_ssl_masked_modeling",
    "beit": "11_3_ssl_masked_modeling",
    "cpc": "11_4_ssl_cpc_dae_tracking",
    "dae": "11_4_ssl_cpc_dae_tracking",
}
SSL_CHECKPOINT = dict(
    pretrain_images=20000,
    epochs=15,
    batch_size=256,
    lr=2e-3,
    widths=(16, 32, 64),
    dim=48,
    depth=2,
    queue_size=4096,
    visual_tokens=64,
)


def vit_encoder(dim: int = 48, depth: int = 2) -> ViTEncoder:
    """The ViT backbone of 11_3: 7 x 7 patches of 4 x 4 pixels, 4 heads, mean-pooled tokens."""
    return ViTEncoder(image_size=28, patch_size=PATCH, in_channels=1, dim=dim, depth=depth, heads=4)


def ssl_augment(method: str) -> BatchTransform | list[BatchTransform] | None:
    """The views a method trains on: none for the pretext tasks and masked modelling (they make their own inputs);
    SimCLR's recipe for grey 28 x 28 images (larger crops, no colour steps) for the contrastive methods; for DINO two
    such global views and two small local crops (multi-crop).

    Raises:
        ValueError: an unknown method.
    """
    if method not in METHOD_NAMES and method != "colorization":
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHOD_NAMES)}")
    if method in ("simclr", "moco", "byol", "dino"):
        views = simclr_augmentation(28, crop_scale=(0.3, 1.0), blur=False)
        if method == "dino":
            local = simclr_augmentation(
                12, crop_scale=(0.1, 0.4), blur=False
            )  # local crops: small part, low resolution
            return [views, views, local, local]
        return views
    return None


def ssl_method(
    method: str,
    encoder: nn.Module,
    *,
    images: torch.Tensor | None = None,
    queue_size: int = 2048,
    visual_tokens: int = 64,
) -> nn.Module:
    """Wrap ``encoder`` in one of the lesson's methods, with the lesson's settings.

    Args:
        method: one of :data:`METHOD_NAMES`, or ``"colorization"`` (11_1 trains it on photo crops; no checkpoint).
        encoder: a ``conv_encoder`` of the registry (pretext and contrastive methods, the DAE, and CPC's patch
            encoder) or :func:`vit_encoder` (``"mae"``, ``"beit"``).
        images: (N, 1, 28, 28) uint8 images BEiT's k-means tokenizer is fitted on (``None`` for BEiT: an empty codebook
            of ``visual_tokens`` entries, to load weights into).
        queue_size: MoCo's queue of negatives.
        visual_tokens: BEiT's vocabulary.

    Raises:
        ValueError: an unknown method.
    """
    if method == "rotation":
        return RotationPrediction(encoder)
    if method == "relative_position":
        return RelativePosition(encoder)
    if method == "jigsaw":
        return JigsawPuzzle(encoder, num_permutations=64)
    if method == "inpainting":
        return DensePretext(encoder, out_channels=1, task="inpainting", hole_fraction=0.5)
    if method == "colorization":  # trained on colour photo crops (Fashion-MNIST is grey), not probed
        return DensePretext(encoder, out_channels=3, task="colorization")
    if method == "simclr":
        return SimCLR(encoder, temperature=0.5)
    if method == "moco":
        return MoCo(encoder, queue_size=queue_size, momentum=0.99, temperature=0.2)
    if method == "byol":
        return BYOL(encoder, momentum=0.99)
    if method == "dino":
        return DINO(encoder, out_dim=256, momentum=0.99, teacher_temperature=0.04, student_temperature=0.1)
    if method == "mae":
        return MaskedAutoencoder(encoder, decoder_dim=32, decoder_depth=1, mask_ratio=0.75)
    if method == "beit":
        if images is None:
            tokenizer = PatchKMeansTokenizer(torch.zeros(visual_tokens, PATCH * PATCH), PATCH)
        else:
            tokenizer = PatchKMeansTokenizer.fit(images.float().div(255), PATCH, num_tokens=visual_tokens)
        return BEiT(encoder, tokenizer, mask_ratio=0.4)
    if method == "cpc":  # 8 x 8 patches every 4 pixels: a 6 x 6 grid on 28 x 28 images; predict 1 and 2 rows ahead
        return CPC(encoder, patch=8, stride=4, steps=2, temperature=0.1)
    if method == "dae":  # noise levels from faint to strong, one per image, as a diffusion model sees them
        return DenoisingAutoencoder(encoder, noise_range=(0.1, 0.8))
    raise ValueError(f"unknown method {method!r}; choose one of {list(METHOD_NAMES)}")


def unlabelled_images(n: int | None, seed: int = 0) -> torch.Tensor:
    """The unlabelled pre-training images of the lesson: (n, 1, 28, 28) uint8, the subset ``ProbeBench`` uses."""
    return load_fashion_mnist("train").subset(n, seed=seed).images


def build_ssl(
    method: str,
    widths: Sequence[int] = (16, 32, 64),
    dim: int = 48,
    depth: int = 2,
    queue_size: int = 2048,
    visual_tokens: int = 64,
) -> nn.Module:
    """An untrained method of the lesson's shape (to load a checkpoint into)."""
    encoder = vit_encoder(dim, depth) if method in VIT_METHODS else create_model("conv_encoder", widths=tuple(widths))
    return ssl_method(method, encoder, queue_size=queue_size, visual_tokens=visual_tokens)


def train_ssl(
    method: str = "simclr",
    pretrain_images: int | None = 4096,
    epochs: int = 3,
    batch_size: int = 256,
    lr: float = 2e-3,
    widths: Sequence[int] = (16, 32, 64),
    dim: int = 48,
    depth: int = 2,
    queue_size: int = 2048,
    visual_tokens: int = 64,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callable] = (),
    progress: bool = True,
    verbose: bool = True,
    model: nn.Module | None = None,
) -> tuple[nn.Module, History]:
    """Pre-train one of the lesson's methods on unlabelled Fashion-MNIST with :func:`cvkit.ssl.pretrain`.

    Args:
        method: one of :data:`METHOD_NAMES`.
        pretrain_images: how many images (the lesson's seeded class-balanced subset; ``None``: all 60,000).
        epochs, batch_size, lr: the budget (AdamW, one-cycle, weight decay 1e-4).
        widths / dim, depth: the encoder (the registry's ``conv_encoder`` / :func:`vit_encoder`).
        queue_size, visual_tokens: MoCo's queue, BEiT's vocabulary.
        seed: seeds the initial weights, the batch order and the augmentations.
        device, checkpoint_dir, callbacks, progress, verbose: passed to :func:`cvkit.train.fit`.
        model: pre-train this module instead of a fresh :func:`ssl_method`.

    Returns:
        ``(method module, history)``; the backbone is its ``.encoder``.
    """
    images = unlabelled_images(pretrain_images)
    if model is None:
        torch.manual_seed(seed)
        encoder = (
            vit_encoder(dim, depth) if method in VIT_METHODS else create_model("conv_encoder", widths=tuple(widths))
        )
        model = ssl_method(method, encoder, images=images, queue_size=queue_size, visual_tokens=visual_tokens)
    augment = ssl_augment(method)
    views = len(augment) if isinstance(augment, list) else None
    history = pretrain(
        model,
        images,
        augment=augment,
        num_views=views,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def evaluate_ssl(model: nn.Module) -> dict[str, float]:
    """Linear-probe test accuracy of the method's frozen encoder on the fast profile's probe data (5,000 labelled
    training and 2,000 test images), and of a random-init encoder of the same shape (seed 0) for comparison."""
    bench = ProbeBench.fashion_mnist(4096, 5000, 2000)
    device = next(model.parameters()).device
    args = (bench.train_images, bench.train_labels, bench.test_images, bench.test_labels)
    probe = linear_probe(model.encoder, *args)
    torch.manual_seed(0)
    random_init = _random_encoder_like(model.encoder).to(device)
    return {
        "probe_accuracy": probe.test_accuracy,
        "random_init_probe_accuracy": linear_probe(random_init, *args).test_accuracy,
    }


def probe_course_checkpoints(
    bench: ProbeBench, methods: Sequence[str], device: str | torch.device | None = None
) -> dict:
    """Load the course checkpoints ``ssl_<method>`` and linear-probe their frozen encoders on ``bench``'s data.

    The results are returned, not stored in ``bench.results`` (so a notebook's own table stays about what it trained).
    A checkpoint this copy of the course does not ship is skipped with one printed line saying how to make it.

    Returns:
        ``{display name: ProbeResult}`` in the order of ``methods``, the names of :data:`METHOD_NAMES`; only the
        shipped checkpoints (empty when none is).
    """
    from cvkit.lessons.checkpoints import checkpoint_available, load_course_checkpoint

    out = {}
    for method in methods:
        if not checkpoint_available(f"ssl_{method}"):
            print(
                f"course checkpoint 'ssl_{method}' is not shipped with this copy of the course (make it with: "
                f"cvkit checkpoints retrain ssl_{method}); skipped"
            )
            continue
        model = load_course_checkpoint(f"ssl_{method}", device=device, verbose=False)
        out[METHOD_NAMES[method]] = linear_probe(
            model.encoder, bench.train_images, bench.train_labels, bench.test_images, bench.test_labels
        )
    return out


def _random_encoder_like(encoder: nn.Module) -> nn.Module:
    """A freshly initialised encoder of ``encoder``'s architecture (seed it first)."""
    if isinstance(encoder, PatchGridEncoder):  # CPC: the patch encoder applied on its grid
        return PatchGridEncoder(
            create_model("conv_encoder", widths=encoder.patch_encoder.widths), encoder.patch, encoder.stride
        )
    return type(encoder)(**_encoder_kwargs(encoder))


def _encoder_kwargs(encoder: nn.Module) -> dict:
    if isinstance(encoder, ViTEncoder):
        return dict(
            image_size=28, patch_size=PATCH, in_channels=1, dim=encoder.feature_dim, depth=len(encoder.blocks), heads=4
        )
    return dict(in_channels=1, widths=encoder.widths)


for _method in CONV_METHODS + VIT_METHODS:
    _config = {"method": _method, **SSL_CHECKPOINT}
    _shape = {k: SSL_CHECKPOINT[k] for k in ("widths", "dim", "depth", "queue_size", "visual_tokens")}
    register_checkpoint(
        CourseCheckpoint(
            name=f"ssl_{_method}",
            lesson=LESSONS[_method],
            description=f"{METHOD_NAMES[_method]} pre-trained on {SSL_CHECKPOINT['pretrain_images']:,} unlabelled Fashion-MNIST "
            f"images for {SSL_CHECKPOINT['epochs']} epochs (the fast profile's encoder)",
            build=lambda m=_method, shape=_shape: build_ssl(m, **shape),
            train=train_ssl,
            config=_config,
            evaluate=evaluate_ssl,
            tolerances={"probe_accuracy": 0.02},
        )
    )
