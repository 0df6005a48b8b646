r"""CLIP: contrastive language-image pre-training (Radford et al., ICML 2021), small enough to train on shapes.

An image encoder and a text encoder map a batch of B (image, caption) pairs into one
embedding space. Their cosine similarities, times a learned scale, form a B x B matrix whose
diagonal holds the true pairs; the loss is the cross-entropy of picking the right caption for
each image *and* the right image for each caption (the paper's figure 3 pseudo-code):

.. math::  \mathcal{L} = \tfrac12\big[\mathrm{CE}(S, \mathrm{diag}) + \mathrm{CE}(S^\top, \mathrm{diag})\big],
           \qquad S_{ij} = e^{t}\, \frac{I_i \cdot T_j}{\lVert I_i \rVert \lVert T_j \rVert}

**Zero-shot classification** turns class names into captions with a prompt template ("a photo
of a {}"), embeds them with the text encoder, and picks the class whose caption is most similar
to the image: a classifier built from words, with no training on those classes. Averaging the
embeddings of several templates per class is CLIP's *prompt ensembling*.

**Open-vocabulary segmentation** (the idea behind ClipSeg and MaskCLIP): the image embedding here
is the mean of linearly projected region features, so each region's projected feature lives in
the same space as the text; its similarity to a text query is a heat map of where the text is.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.layers.transformer import TransformerBlock
from cvkit.train import StepOutput
from cvkit.vl._checks import check_images, check_token_ids
from cvkit.vl.tokenizer import CaptionTokenizer


def clip_loss(logits_per_image: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy over a (B, B) image-text similarity matrix whose diagonal holds the true pairs.

    Args:
        logits_per_image: (B, B) float, row i: image i against every caption (already scaled).

    Returns:
        scalar float tensor: the mean of the image-to-text and text-to-image cross-entropies.

    Raises:
        ValueError: a matrix that is not square.
    """
    if logits_per_image.dim() != 2 or logits_per_image.shape[0] != logits_per_image.shape[1]:
        raise ValueError(f"logits_per_image must be a square (B, B) matrix, got {tuple(logits_per_image.shape)}")
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    logits = logits_per_image.float()
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class ClipImageEncoder(nn.Module):
    """ConvEncoder region features, each projected linearly into the joint space; the image embedding is their mean.

    Shapes:
        :meth:`forward_dense`: (B, C, H, W) -> (B, E, h, w); :meth:`forward`: (B, C, H, W) -> (B, E).
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128), embed_dim: int = 64) -> None:
        super().__init__()
        self.backbone = ConvEncoder(in_channels, widths)
        self.proj = nn.Conv2d(self.backbone.feature_dim, embed_dim, kernel_size=1)  # a Linear applied at every region

    def forward_dense(self, images: torch.Tensor) -> torch.Tensor:
        """Projected region features in the joint space, (B, E, h, w) (not normalised)."""
        check_images(images)
        return self.proj(self.backbone.forward_map(images))  # (B, E, h, w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_dense(images).mean(dim=(2, 3))  # (B, E)


class TextEncoder(nn.Module):
    """Token and position embeddings, a causal transformer, the feature at ``<eos>``, a linear projection (as CLIP's).

    Shapes:
        (B, T) int64 ids with one ``<eos>`` per row -> (B, E).

    Raises:
        ValueError: a row without ``<eos>`` or longer than ``max_len``.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        max_len: int = 24,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        self.vocab_size, self.max_len, self.eos_id = vocab_size, max_len, eos_id
        self.embed = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.randn(1, max_len, width) * 0.01)
        self.blocks = nn.ModuleList([TransformerBlock(width, heads, 4.0) for _ in range(layers)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        check_token_ids(tokens, self.vocab_size)
        b, t = tokens.shape
        if t > self.max_len:
            raise ValueError(f"captions of {t} tokens exceed max_len={self.max_len}")
        is_eos = tokens == self.eos_id
        if not bool(is_eos.any(dim=1).all()):
            raise ValueError("every caption needs an <eos> token (encode it with CaptionTokenizer.encode)")
        x = self.embed(tokens) + self.pos[:, :t]  # (B, T, W)
        for block in self.blocks:
            x = block(x, is_causal=True)  # CLIP's text model is causal: token t sees tokens <= t
        x = self.norm(x)
        eos = is_eos.float().argmax(dim=1)  # (B,) position of the first <eos>
        return self.proj(x[torch.arange(b, device=tokens.device), eos])  # (B, E)


class CLIP(nn.Module):
    """A small CLIP: :class:`ClipImageEncoder`, :class:`TextEncoder` and a learned logit scale.

    Args:
        vocab_size: V of the caption tokenizer.
        in_channels, widths: of the image encoder's ConvEncoder.
        embed_dim: E, the joint embedding width.
        text_width, text_heads, text_layers, max_len: of the text transformer.
        eos_id: id of ``<eos>`` (the text feature is read there).

    Attributes:
        logit_scale: t, with :math:`e^t` initialised to 1 / 0.07 and clamped at 100 (as CLIP).

    Shapes:
        ``forward(images (B, C, H, W), tokens (B', T) int64)`` -> logits_per_image (B, B'); its transpose is logits_per_text.
    """

    def __init__(
        self,
        vocab_size: int,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        embed_dim: int = 64,
        text_width: int = 64,
        text_heads: int = 4,
        text_layers: int = 2,
        max_len: int = 24,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        self.image_encoder = ClipImageEncoder(in_channels, widths, embed_dim)
        self.text_encoder = TextEncoder(vocab_size, embed_dim, text_width, text_heads, text_layers, max_len, eos_id)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings, (B, E)."""
        return F.normalize(self.image_encoder(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """L2-normalised text embeddings, (B, E)."""
        return F.normalize(self.text_encoder(tokens), dim=-1)

    def scale(self) -> torch.Tensor:
        """The multiplier :math:`e^t` of the cosine similarities, clamped at 100."""
        return self.logit_scale.exp().clamp(max=100)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.scale() * self.encode_image(images) @ self.encode_text(tokens).T  # (B, B')


def clip_step():
    """A :func:`cvkit.train.fit` step for ``(images, tokens)`` batches: CLIP loss; ``correct`` counts images whose
    most similar caption in the batch is their own (in-batch retrieval accuracy)."""

    def step(model: nn.Module, batch) -> StepOutput:
        images, tokens = batch[0], batch[1]
        logits = model(images, tokens)
        correct = (logits.argmax(dim=1) == torch.arange(images.shape[0], device=logits.device)).sum()
        return StepOutput(clip_loss(logits), images.shape[0], correct)

    return step


@torch.no_grad()
def zero_shot_classifier(
    model: CLIP, tokenizer: CaptionTokenizer, classnames: Sequence[str], templates: Sequence[str]
) -> torch.Tensor:
    """Class embeddings from words: each class name in every template, embedded, averaged, normalised (prompt ensembling).

    Args:
        model: a trained :class:`CLIP`.
        tokenizer: its tokenizer.
        classnames: K names, e.g. ``["red circle", "blue square"]``.
        templates: prompts with one ``{}``, e.g. ``["a {}", "a photo of a {}"]``.

    Returns:
        (K, E) float, unit rows, on the model's device.

    Raises:
        ValueError: no class names, no templates, or a template without ``{}``.
    """
    if not classnames or not templates:
        raise ValueError("need at least one class name and one template")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"every template needs a '{{}}' for the class name, these do not: {bad}")
    device = model.logit_scale.device
    was_training = model.training
    model.eval()
    try:
        weights = []
        for name in classnames:
            tokens = tokenizer.encode([t.format(name) for t in templates]).to(device)
            emb = model.encode_text(tokens)  # (templates, E), unit rows
            weights.append(F.normalize(emb.mean(dim=0), dim=0))
    finally:
        model.train(was_training)
    return torch.stack(weights)  # (K, E)


@torch.no_grad()
def zero_shot_predict(
    model: CLIP, images: torch.Tensor, class_embeddings: torch.Tensor, batch_size: int = 512
) -> torch.Tensor:
    """Zero-shot logits: the scaled cosine similarity of every image to every class embedding, (N, K)."""
    was_training = model.training
    model.eval()
    try:
        out = [
            model.scale() * model.encode_image(images[i : i + batch_size]) @ class_embeddings.T
            for i in range(0, images.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def dense_similarity(
    model: CLIP, images: torch.Tensor, text_embeddings: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Cosine similarity of every image region to every text embedding: an open-vocabulary heat map.

    Args:
        model: a trained :class:`CLIP`.
        images: (B, C, H, W).
        text_embeddings: (K, E) unit rows (e.g. from :func:`zero_shot_classifier` or ``encode_text``).
        size: upsample the maps to (H, W) with bilinear interpolation (``None``: the region grid).

    Returns:
        (B, K, h, w) (or (B, K, H, W)) float in [-1, 1].
    """
    was_training = model.training
    model.eval()
    try:
        dense = F.normalize(model.image_encoder.forward_dense(images), dim=1)  # (B, E, h, w)
    finally:
        model.train(was_training)
    maps = torch.einsum("behw,ke->bkhw", dense, text_embeddings.to(dense.dtype))
    if size is not None:
        maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    return maps


@torch.no_grad()
def region_embeddings(model: CLIP, images: torch.Tensor, boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Embeddings of image regions: the dense features averaged inside each box (RoIAlign), L2-normalised.

    With class-name embeddings from :func:`zero_shot_classifier`, this classifies boxes into any
    vocabulary: the open-vocabulary detection recipe of ViLD and GLIP (a region's feature is compared
    with words instead of a fixed classifier), with given boxes standing in for proposals.

    Args:
        model: a trained :class:`CLIP`.
        images: (B, C, H, W).
        boxes: B tensors (K_b, 4), ``xyxy`` in pixels.

    Returns:
        (sum K_b, E) float, unit rows, boxes in order.
    """
    from torchvision.ops import roi_align

    was_training = model.training
    model.eval()
    try:
        dense = model.image_encoder.forward_dense(images)  # (B, E, h, w)
    finally:
        model.train(was_training)
    stride = images.shape[-1] / dense.shape[-1]
    pooled = roi_align(
        dense, [b.to(dense) for b in boxes], output_size=2, spatial_scale=1 / stride, sampling_ratio=2, aligned=True
    )
    return F.normalize(pooled.mean(dim=(2, 3)), dim=1)  # (K, E)


@torch.no_grad()
def _object_heat_maps(model: CLIP, data, class_embeddings: torch.Tensor, classes: Sequence[str], batch_size: int):
    """Yield ``(heat (K, H, W), class index, mask (H, W) bool)`` for every object of ``data``: the dense similarity of
    every pixel to every class prompt, upsampled to the image, with the object's own class and visible pixels."""
    device = next(model.parameters()).device
    index = {name: i for i, name in enumerate(classes)}
    images = data.images
    size = tuple(images.shape[-2:])
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size].to(device)
        chunk = chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk
        heat = dense_similarity(model, chunk, class_embeddings.to(device), size=size).cpu()  # (B, K, H, W)
        for b in range(heat.shape[0]):
            for (colour, shape), mask in zip(data.objects[start + b], data.masks[start + b]):
                name = f"{colour} {shape}"
                if name not in index:
                    raise ValueError(
                        f"object {name!r} is not among the classes {list(classes)[:6]}...: pass every "
                        "'colour shape' class the data can contain"
                    )
                yield heat[b], index[name], mask


def pointing_game(
    model: CLIP, data, class_embeddings: torch.Tensor, classes: Sequence[str], batch_size: int = 256
) -> tuple[float, float]:
    """The pointing game (Zhang et al. 2016, used for CLIP-style heat maps): for every object, does the peak of its own
    class prompt's heat map (:func:`dense_similarity`, upsampled to the image) fall on the object?

    Args:
        model: a trained :class:`CLIP`.
        data: a :class:`cvkit.vl.CaptionedImages` (``images``, and per image ``objects`` as (colour, shape) names and
            ``masks`` (K, H, W) bool in the same order).
        class_embeddings: (len(classes), E) unit rows, e.g. :func:`zero_shot_classifier` of ``classes``.
        classes: the class names, ``"colour shape"`` (e.g. ``"red circle"``).

    Returns:
        ``(hit_rate, chance)``: the fraction of objects hit, and the mean share of the image an object covers (what a
        point drawn uniformly at random would score).

    Raises:
        ValueError: an object whose ``"colour shape"`` is not in ``classes``.
    """
    hits, total, area = 0, 0, 0.0
    for heat, k, mask in _object_heat_maps(model, data, class_embeddings, classes, batch_size):
        hits += bool(mask.flatten()[heat[k].argmax()])
        area += mask.float().mean().item()
        total += 1
    return hits / max(total, 1), area / max(total, 1)


def dense_zero_shot_accuracy(
    model: CLIP, data, class_embeddings: torch.Tensor, classes: Sequence[str], batch_size: int = 256
) -> tuple[float, float]:
    """Zero-shot classification of every pixel (MaskCLIP, Zhou et al. ECCV 2022): on an object's pixels, is its own
    class the most similar of all class prompts?

    The pointing game asks where one prompt's map peaks in the image; this asks, at each pixel of an object, which
    prompt wins. A model can fail the first (its maps are highest somewhere in the background for every prompt) and
    still pass the second (on the object, the right prompt is highest *relative to the others*).

    Args:
        model: a trained :class:`CLIP`.
        data: a :class:`cvkit.vl.CaptionedImages` (``images``; per image ``objects`` as (colour, shape) names and
            ``masks`` (K, H, W) bool in the same order).
        class_embeddings: (len(classes), E) unit rows, e.g. :func:`zero_shot_classifier` of ``classes``.
        classes: the class names, ``"colour shape"``.

    Returns:
        ``(accuracy, chance)``: the share of an object's visible pixels classified as its class, averaged over
        objects, and ``1 / len(classes)``.

    Raises:
        ValueError: an object whose ``"colour shape"`` is not in ``classes``.
    """
    scores = [
        (heat[:, mask].argmax(0) == k).float().mean().item()
        for heat, k, mask in _object_heat_maps(model, data, class_embeddings, classes, batch_size)
        if bool(mask.any())
    ]
    return sum(scores) / max(len(scores), 1), 1 / len(classes)
