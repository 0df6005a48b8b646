"""Registry entries of the self-supervised models (lecture 11): the small backbones and every method.

The classes live in :mod:`cvkit.ssl` (methods) and :mod:`cvkit.layers` (the CNN backbone). A
method's forward returns its loss, so the smoke test checks that the loss is finite and that
gradients reach every trainable parameter (momentum/target networks have none, by design).
"""

from __future__ import annotations

from typing import Sequence

import torch

from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.models.registry import register_model
from cvkit.ssl.beit import BEiT, PatchKMeansTokenizer
from cvkit.ssl.byol import BYOL
from cvkit.ssl.cpc import CPC
from cvkit.ssl.dae import DenoisingAutoencoder
from cvkit.ssl.dino import DINO
from cvkit.ssl.mae import MaskedAutoencoder
from cvkit.ssl.moco import MoCo
from cvkit.ssl.pretext import DensePretext, JigsawPuzzle, RelativePosition, RotationPrediction
from cvkit.ssl.simclr import SimCLR
from cvkit.ssl.vit import ViTEncoder

_SMALL = {"widths": (8, 16, 32)}


def _two_views(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch_size, 1, 28, 28, generator=g), torch.rand(batch_size, 1, 28, 28, generator=g)


@register_model(
    "conv_encoder",
    task="embedding",
    input_shape=(1, 28, 28),
    output_shape=(128,),
    reference="the lectures' small CNN backbone",
)
def conv_encoder(in_channels: int = 1, widths: Sequence[int] = (32, 64, 128)) -> ConvEncoder:
    """Three stride-2 conv-BN-ReLU stages and global average pooling: (B, C, H, W) -> (B, D)."""
    return ConvEncoder(in_channels, widths)


@register_model(
    "vit_encoder_tiny",
    task="embedding",
    input_shape=(1, 28, 28),
    output_shape=(64,),
    smoke_kwargs={"depth": 1},
    reference="Dosovitskiy et al. 2021 (no class token, mean pooling)",
)
def vit_encoder_tiny(
    image_size: int = 28, patch_size: int = 4, in_channels: int = 1, dim: int = 64, depth: int = 2, heads: int = 4
) -> ViTEncoder:
    """A tiny ViT encoder with fixed 2-D sine-cosine positions: (B, C, H, W) -> (B, D) mean token."""
    return ViTEncoder(image_size, patch_size, in_channels, dim, depth, heads)


@register_model("simclr", task="other", example_inputs=_two_views, smoke_kwargs=_SMALL, reference="Chen et al. 2020")
def simclr(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs) -> SimCLR:
    """SimCLR on a ConvEncoder: forward(view1, view2) -> NT-Xent loss."""
    return SimCLR(ConvEncoder(in_channels, widths), **kwargs)


@register_model(
    "moco",
    task="other",
    example_inputs=_two_views,
    smoke_kwargs={**_SMALL, "queue_size": 8},
    reference="He et al. 2020; Chen et al. 2020 (v2)",
)
def moco(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs) -> MoCo:
    """MoCo v2 on a ConvEncoder: forward(query view, key view) -> InfoNCE loss against the queue."""
    return MoCo(ConvEncoder(in_channels, widths), **kwargs)


@register_model("byol", task="other", example_inputs=_two_views, smoke_kwargs=_SMALL, reference="Grill et al. 2020")
def byol(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs) -> BYOL:
    """BYOL on a ConvEncoder: forward(view1, view2) -> symmetrised regression loss."""
    return BYOL(ConvEncoder(in_channels, widths), **kwargs)


@register_model(
    "dino",
    task="other",
    example_inputs=_two_views,
    smoke_kwargs={**_SMALL, "out_dim": 32},
    reference="Caron et al. 2021",
)
def dino(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs) -> DINO:
    """DINO on a ConvEncoder: ``forward(*views)`` -> cross-entropy to the centred, sharpened teacher."""
    return DINO(ConvEncoder(in_channels, widths), **kwargs)


@register_model(
    "rotation_pretext", task="other", input_shape=(1, 28, 28), smoke_kwargs=_SMALL, reference="Gidaris et al. 2018"
)
def rotation_pretext(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1) -> RotationPrediction:
    """Predict the rotation (0/90/180/270) of each image: forward(images) -> cross-entropy."""
    return RotationPrediction(ConvEncoder(in_channels, widths))


@register_model(
    "relative_position_pretext",
    task="other",
    input_shape=(1, 28, 28),
    smoke_kwargs=_SMALL,
    reference="Doersch et al. 2015",
)
def relative_position_pretext(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1) -> RelativePosition:
    """Predict where a neighbour tile sits relative to the centre tile: forward(images) -> cross-entropy."""
    return RelativePosition(ConvEncoder(in_channels, widths))


@register_model(
    "jigsaw_pretext",
    task="other",
    input_shape=(1, 28, 28),
    smoke_kwargs={**_SMALL, "num_permutations": 8},
    reference="Noroozi & Favaro 2016",
)
def jigsaw_pretext(
    widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, num_permutations: int = 64
) -> JigsawPuzzle:
    """Solve 3x3 jigsaw puzzles: forward(images) -> cross-entropy over the permutation set."""
    return JigsawPuzzle(ConvEncoder(in_channels, widths), num_permutations)


@register_model(
    "inpainting_pretext", task="other", input_shape=(1, 28, 28), smoke_kwargs=_SMALL, reference="Pathak et al. 2016"
)
def inpainting_pretext(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1) -> DensePretext:
    """A context encoder: forward(images) -> mean squared error inside a random square hole."""
    return DensePretext(ConvEncoder(in_channels, widths), in_channels, "inpainting")


@register_model(
    "mae_tiny", task="other", input_shape=(1, 28, 28), smoke_kwargs={"depth": 1}, reference="He et al. 2022"
)
def mae_tiny(
    image_size: int = 28, patch_size: int = 4, in_channels: int = 1, dim: int = 64, depth: int = 2, **kwargs
) -> MaskedAutoencoder:
    """MAE on a tiny ViT: forward(images) -> reconstruction error on the 75% masked patches."""
    return MaskedAutoencoder(ViTEncoder(image_size, patch_size, in_channels, dim, depth), **kwargs)


@register_model(
    "beit_tiny",
    task="other",
    input_shape=(1, 28, 28),
    smoke_kwargs={"depth": 1, "num_tokens": 16},
    reference="Bao et al. 2022",
)
def beit_tiny(
    image_size: int = 28,
    patch_size: int = 4,
    in_channels: int = 1,
    dim: int = 64,
    depth: int = 2,
    num_tokens: int = 64,
    tokenizer: PatchKMeansTokenizer | None = None,
    **kwargs,
) -> BEiT:
    """BEiT on a tiny ViT: forward(images) -> cross-entropy of the masked patches' visual tokens.

    Without a fitted ``tokenizer`` the codebook is random (enough for a smoke test; fit one with
    ``PatchKMeansTokenizer.fit`` before pre-training).
    """
    if tokenizer is None:
        codebook = torch.rand(
            num_tokens, patch_size * patch_size * in_channels, generator=torch.Generator().manual_seed(0)
        )
        tokenizer = PatchKMeansTokenizer(codebook, patch_size)
    return BEiT(ViTEncoder(image_size, patch_size, in_channels, dim, depth), tokenizer, **kwargs)


def _one_view(batch_size: int) -> tuple[torch.Tensor]:
    return (torch.rand(batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(0)),)


@register_model(
    "cpc", task="other", example_inputs=_one_view, smoke_kwargs=_SMALL, reference="van den Oord et al. 2018"
)
def cpc(widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs) -> CPC:
    """CPC on 8 x 8 patches (stride 4) of 28 x 28 images, a ConvEncoder per patch: forward(images) -> InfoNCE loss."""
    return CPC(ConvEncoder(in_channels, widths), **kwargs)


@register_model(
    "denoising_autoencoder",
    task="other",
    example_inputs=_one_view,
    smoke_kwargs=_SMALL,
    reference="Vincent et al. 2008; Chen et al. 2024 (l-DAE)",
)
def denoising_autoencoder(
    widths: Sequence[int] = (32, 64, 128), in_channels: int = 1, **kwargs
) -> DenoisingAutoencoder:
    """A ConvEncoder and a transposed-conv decoder trained to remove noise of random level: forward(images) -> MSE."""
    return DenoisingAutoencoder(ConvEncoder(in_channels, widths), **kwargs)
