"""The prompt encoder: points and boxes become tokens (Kirillov et al. 2023, "Segment Anything", sec. 3).

Each point is its positional encoding (:class:`~cvkit.sam.positional.RandomFourierEncoding`) plus a
learned embedding saying what it is: a foreground click (label 1), a background click (label 0) or
padding (label -1, its encoding zeroed). A box is two tokens, its top-left and bottom-right corners,
each with its own learned embedding. The decoder also takes a *dense* prompt added to the image
embedding; without a mask prompt it is a learned "no mask" vector, as in SAM.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.sam.positional import RandomFourierEncoding

POINT_LABELS = {"background": 0, "foreground": 1, "padding": -1}


class PromptEncoder(nn.Module):
    """Embed point and box prompts into (B, N, D) tokens and a (B, D, h, w) dense embedding.

    Args:
        embed_dim: D. image_size: (H, W) of the model input, in pixels. grid_size: (h, w) of the image embedding.
        pe_scale: frequency scale of the random Fourier features.

    Raises:
        ValueError: neither points nor boxes, or malformed shapes (see :meth:`forward`).
    """

    def __init__(
        self, embed_dim: int, image_size: tuple[int, int], grid_size: tuple[int, int], pe_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_size = tuple(image_size)
        self.grid_size = tuple(grid_size)
        self.pe = RandomFourierEncoding(embed_dim, pe_scale)
        self.point_embeddings = nn.Embedding(2, embed_dim)  # 0: background click, 1: foreground click
        self.not_a_point = nn.Embedding(1, embed_dim)  # padding
        self.corner_embeddings = nn.Embedding(2, embed_dim)  # 0: box top-left, 1: box bottom-right
        self.no_mask = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        """(1, D, h, w) positional encoding of the image embedding's grid."""
        return self.pe.grid(*self.grid_size).unsqueeze(0)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) and (B, N) labels in {1, 0, -1} -> (B, N, D)."""
        emb = self.pe.forward_points(coords + 0.5, self.image_size)  # +0.5: to the pixel's centre
        labels = labels[..., None]  # (B, N, 1)
        emb = torch.where(labels == -1, self.not_a_point.weight.expand_as(emb), emb)  # padding: no position
        emb = emb + torch.where(labels == 1, self.point_embeddings.weight[1], torch.zeros_like(emb))
        emb = emb + torch.where(labels == 0, self.point_embeddings.weight[0], torch.zeros_like(emb))
        return emb

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) xyxy pixel boxes -> (B, 2, D) corner tokens."""
        corners = boxes.reshape(-1, 2, 2) + 0.5  # (B, 2 corners, xy)
        return self.pe.forward_points(corners, self.image_size) + self.corner_embeddings.weight  # (B, 2, D)

    def forward(
        self,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed the prompts of a batch.

        Args:
            points: (B, N, 2) float, (x, y) in pixels of the model input. labels: (B, N) int64 in {1, 0, -1}.
            boxes: (B, 4) float, xyxy pixels.

        Returns:
            sparse (B, N + 1 or N + 2, D) tokens (a padding point is appended when there is no box,
            as SAM does), and dense (B, D, h, w).

        Raises:
            ValueError: no prompt, labels missing or of another shape, boxes not (B, 4).
        """
        if points is None and boxes is None:
            raise ValueError("give at least one prompt: points (B, N, 2) with labels (B, N), or boxes (B, 4)")
        tokens = []
        if points is not None:
            if labels is None or labels.shape != points.shape[:2] or points.shape[-1] != 2:
                raise ValueError(
                    f"points must be (B, N, 2) with labels (B, N); got {tuple(points.shape)} and "
                    f"{None if labels is None else tuple(labels.shape)}"
                )
            if boxes is None:  # pad, so that a point-only prompt looks like SAM's
                points = torch.cat([points, torch.zeros_like(points[:, :1])], dim=1)
                labels = torch.cat([labels, torch.full_like(labels[:, :1], -1)], dim=1)
            tokens.append(self.embed_points(points, labels))
        if boxes is not None:
            if boxes.dim() != 2 or boxes.shape[1] != 4:
                raise ValueError(f"boxes must be (B, 4) xyxy pixels, got {tuple(boxes.shape)}")
            tokens.append(self.embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        b = sparse.shape[0]
        dense = self.no_mask.weight.view(1, -1, 1, 1).expand(b, -1, *self.grid_size)  # (B, D, h, w)
        return sparse, dense
