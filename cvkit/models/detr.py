r"""A small DETR (Carion et al., "End-to-End Object Detection with Transformers", ECCV 2020).

The pipeline of the paper's Fig. 2, at toy scale:

1. a CNN backbone turns the (B, 3, H, W) image into a (B, C, H/s, W/s) feature map;
2. a 1x1 convolution projects it to d channels; flattened, it is a sequence of
   (H/s)(W/s) tokens of size d, and a fixed 2-D sine **positional encoding** says where
   each token is (DETR adds it to queries and keys in every attention layer);
3. a transformer **encoder** lets every position attend to every other;
4. a transformer **decoder** turns N learned **object queries** into N output embeddings,
   attending to each other (so they avoid predicting the same object twice) and to the encoder
   output;
5. a linear layer gives K + 1 class logits (the last is "no object") and a 3-layer MLP a box
   (centre x, centre y, width, height) in [0, 1] through a sigmoid, per query.

No anchors, no NMS: training matches the N predictions one-to-one with the objects
(:mod:`cvkit.detection.matching`) and applies the set loss after every decoder layer
(:mod:`cvkit.detection.set_loss`). Boxes leave the model as ``xyxy`` pixels, the kit's layout.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

from cvkit.detection.boxes import box_convert, denormalize_boxes
from cvkit.layers.position import sincos_position_embedding_1d
from cvkit.models.registry import register_model
from cvkit.models.small_backbone import SmallBackbone


def sine_position_encoding(
    height: int, width: int, dim: int, temperature: float = 10000.0, device=None
) -> torch.Tensor:
    r"""DETR's 2-D sine positional encoding: the Transformer's sinusoids of the row (first half of the channels)
    and of the column (second half), with positions normalised to (0, 2 pi] (:mod:`cvkit.layers.position`
    uses integer positions instead, as MAE does).

    Args:
        height, width: of the feature map.
        dim: d, divisible by 4.
        temperature: the base of the wavelengths (10000 as in Vaswani et al. 2017).

    Returns:
        (height * width, dim) float32, row-major over positions; positions are normalised to
        (0, 2 pi] like DETR's ``PositionEmbeddingSine(normalize=True)``.

    Raises:
        ValueError: ``dim`` not divisible by 4.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4, got {dim}")
    half = dim // 2
    y = torch.arange(1, height + 1, dtype=torch.float64) / height * 2 * math.pi  # (H,) rows normalised to (0, 2 pi]
    x = torch.arange(1, width + 1, dtype=torch.float64) / width * 2 * math.pi  # (W,)
    ey = sincos_position_embedding_1d(y, half, temperature)  # (H, D/2): sin, cos interleaved
    ex = sincos_position_embedding_1d(x, half, temperature)  # (W, D/2)
    pos = torch.cat(
        [ey[:, None, :].expand(height, width, half), ex[None, :, :].expand(height, width, half)], dim=-1
    )  # (H, W, D)
    return pos.reshape(height * width, dim).to(device)


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer with the positional encoding added to queries and keys (DETR's form)."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = k = x + pos  # (B, L, d): position enters the attention pattern, not the values
        x = self.norm1(x + self.attn(q, k, x, need_weights=False)[0])
        return self.norm2(x + self.ffn(x))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer: self-attention among queries, cross-attention to the image, feed-forward."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn, dim))
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(
        self, tgt: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor
    ) -> torch.Tensor:
        q = k = tgt + query_pos  # (B, N, d)
        tgt = self.norm1(tgt + self.self_attn(q, k, tgt, need_weights=False)[0])
        tgt = self.norm2(
            tgt + self.cross_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0]
        )  # (B, N, d)
        return self.norm3(tgt + self.ffn(tgt))


class DETR(nn.Module):
    """A small DETR for small images.

    Args:
        num_classes: K object classes (the model adds "no object" as class K).
        num_queries: N, the most objects it can find per image.
        dim: d, the transformer width.
        heads: attention heads.
        encoder_layers, decoder_layers: depths.
        ffn: hidden width of the feed-forward blocks.
        widths: backbone stage widths (stride 2^len(widths)).
        in_channels: C of the input images.

    Shapes:
        input (B, C, H, W) float in [0, 1]. Output: dict with ``logits`` (B, N, K + 1),
        ``boxes`` (B, N, 4) xyxy pixels, and ``aux``: one such dict per earlier decoder layer.
    """

    def __init__(
        self,
        num_classes: int = 3,
        num_queries: int = 10,
        dim: int = 128,
        heads: int = 4,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        ffn: int = 256,
        widths: Sequence[int] = (32, 64, 128),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.num_classes, self.num_queries, self.dim = num_classes, num_queries, dim
        self.backbone = SmallBackbone(in_channels, widths)
        self.input_proj = nn.Conv2d(widths[-1], dim, kernel_size=1)
        self.encoder = nn.ModuleList([EncoderLayer(dim, heads, ffn) for _ in range(encoder_layers)])
        self.decoder = nn.ModuleList([DecoderLayer(dim, heads, ffn) for _ in range(decoder_layers)])
        self.decoder_norm = nn.LayerNorm(dim)
        self.query_pos = nn.Parameter(torch.randn(num_queries, dim))  # the learned object queries
        self.class_head = nn.Linear(dim, num_classes + 1)
        self.box_head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 4)
        )

    def _heads(self, h: torch.Tensor, image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        b, n, _ = h.shape
        logits = self.class_head(h)  # (B, N, K + 1)
        cxcywh = self.box_head(h).sigmoid().reshape(b * n, 4)  # (B*N, 4), normalised
        boxes = denormalize_boxes(box_convert(cxcywh, "cxcywh", "xyxy"), image_size).reshape(
            b, n, 4
        )  # (B, N, 4) pixels
        return {"logits": logits, "boxes": boxes}

    def forward(self, images: torch.Tensor) -> dict:
        if images.dim() != 4:
            raise ValueError(f"DETR expects images (B, C, H, W), got shape {tuple(images.shape)}")
        feat = self.input_proj(list(self.backbone(images).values())[-1])  # (B, d, h, w)
        b, d, h, w = feat.shape
        memory = feat.flatten(2).transpose(1, 2)  # (B, h*w, d)
        pos = sine_position_encoding(h, w, d, device=images.device)[None]  # (1, h*w, d)
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = self.query_pos[None].expand(b, -1, -1)  # (B, N, d)
        tgt = torch.zeros_like(query_pos)  # decoder input starts empty; the queries carry identity
        outputs = []
        for layer in self.decoder:
            tgt = layer(tgt, query_pos, memory, pos)
            outputs.append(self._heads(self.decoder_norm(tgt), tuple(images.shape[-2:])))
        final = outputs.pop()
        return {"logits": final["logits"], "boxes": final["boxes"], "aux": outputs}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections in torchvision's format: per image ``boxes`` (N, 4) xyxy pixels, ``scores`` (N,)
        (the best object-class probability), ``labels`` (N,) int64 in [0, K); every query is returned
        (AP wants them all; threshold ``scores`` to show the confident ones)."""
        was_training = self.training
        self.eval()
        try:
            out = self(images)
        finally:
            self.train(was_training)
        prob = out["logits"].softmax(-1)[..., :-1]  # (B, N, K), "no object" dropped
        scores, labels = prob.max(-1)
        return [{"boxes": bx, "scores": s, "labels": lab} for bx, s, lab in zip(out["boxes"], scores, labels)]


def _reduce_all(out: dict) -> torch.Tensor:
    """Sum of every output, auxiliary ones included (so the smoke test reaches every decoder layer)."""
    total = out["logits"].sum() + out["boxes"].sum()
    for aux in out["aux"]:
        total = total + aux["logits"].sum() + aux["boxes"].sum()
    return total


@register_model(
    "detr_small",
    task="detection",
    input_shape=(3, 64, 64),
    output_shape=(10, 4),
    smoke_kwargs={"dim": 32, "ffn": 64, "widths": (8, 16, 32)},
    reduce=_reduce_all,
    reference="Carion et al. 2020",
)
def detr_small(
    num_classes: int = 3,
    num_queries: int = 10,
    dim: int = 128,
    heads: int = 4,
    encoder_layers: int = 2,
    decoder_layers: int = 2,
    ffn: int = 256,
    widths: Sequence[int] = (32, 64, 128),
    in_channels: int = 3,
) -> DETR:
    """A small DETR (CNN backbone, transformer encoder-decoder, object queries) for shapes."""
    return DETR(num_classes, num_queries, dim, heads, encoder_layers, decoder_layers, ffn, widths, in_channels)
