r"""The mask decoder: a two-way transformer between prompt tokens and image embeddings (SAM, sec. 3 and appendix A).

Inputs are the sparse prompt tokens, preceded by learned *output tokens* (one IoU token and
``num_masks + 1`` mask tokens), and the image embedding plus the dense prompt. Each
:class:`TwoWayBlock` does, in order:

1. self-attention among the tokens;
2. cross-attention **tokens -> image** (each token gathers the image regions it refers to);
3. an MLP on the tokens;
4. cross-attention **image -> tokens** (every image position is updated with the prompt information).

Positional encodings are re-added to queries and keys at every attention, so geometry is never
lost. After a final token -> image attention the embedding is upsampled 4x with transposed
convolutions, and each mask token goes through its own small MLP (a *hypernetwork*) to a vector
whose dot product with every upsampled pixel gives that mask's logits. The IoU token predicts each
mask's quality. Several masks resolve ambiguity: a click on a shirt may mean the shirt or the
person. Attention layers are ``nn.MultiheadAttention``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.heads import mlp_head


class TwoWayBlock(nn.Module):
    """One block of the two-way transformer (steps 1-4 in the module docstring).

    Shapes:
        tokens (B, N, D), image (B, HW, D), token_pe (B, N, D), image_pe (B, HW, D) -> tokens, image.
    """

    def __init__(self, dim: int, heads: int = 4, mlp_dim: int = 256, skip_first_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.token_to_image = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim))
        self.norm3 = nn.LayerNorm(dim)
        self.image_to_token = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm4 = nn.LayerNorm(dim)
        self.skip_first_pe = skip_first_pe

    def forward(self, tokens, image, token_pe, image_pe):
        if self.skip_first_pe:  # first layer: the tokens already are their positional encodings
            tokens = self.norm1(self.self_attn(tokens, tokens, tokens, need_weights=False)[0])
        else:
            q = tokens + token_pe
            tokens = self.norm1(tokens + self.self_attn(q, q, tokens, need_weights=False)[0])
        q, k = tokens + token_pe, image + image_pe
        tokens = self.norm2(tokens + self.token_to_image(q, k, image, need_weights=False)[0])
        tokens = self.norm3(tokens + self.mlp(tokens))
        q, k = tokens + token_pe, image + image_pe
        image = self.norm4(image + self.image_to_token(k, q, tokens, need_weights=False)[0])
        return tokens, image


class MaskDecoder(nn.Module):
    """Prompt tokens + image embedding -> ``num_masks`` candidate masks and their predicted IoU.

    Args:
        dim: D, the embedding width. depth: two-way blocks. heads: attention heads.
        num_masks: candidate masks for an ambiguous prompt (SAM: 3, roughly whole / part / subpart).

    Shapes (:meth:`forward`):
        image (B, D, h, w), image_pe (1, D, h, w), sparse (B, N, D), dense (B, D, h, w) ->
        mask logits (B, num_masks + 1, 4h, 4w) and IoU predictions (B, num_masks + 1). Index 0 is the
        single-mask output used for unambiguous prompts; 1.. are the multimask outputs.
    """

    def __init__(self, dim: int = 64, depth: int = 2, heads: int = 4, num_masks: int = 3) -> None:
        super().__init__()
        self.num_masks = num_masks
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(num_masks + 1, dim)
        self.blocks = nn.ModuleList(TwoWayBlock(dim, heads, 4 * dim, skip_first_pe=(i == 0)) for i in range(depth))
        self.final_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.final_norm = nn.LayerNorm(dim)
        self.upscale = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, 2, stride=2),
            nn.GroupNorm(1, dim // 4),
            nn.GELU(),  # h -> 2h
            nn.ConvTranspose2d(dim // 4, dim // 8, 2, stride=2),
            nn.GELU(),  # 2h -> 4h
        )
        self.hypernetworks = nn.ModuleList(
            mlp_head(dim, dim, dim // 8, layers=3, batch_norm=False) for _ in range(num_masks + 1)
        )
        self.iou_head = mlp_head(dim, dim, num_masks + 1, layers=3, batch_norm=False)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor):
        b, d, h, w = image.shape
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight]).expand(b, -1, -1)  # (B, 1 + M, D)
        tokens = torch.cat([out_tokens, sparse], dim=1)  # (B, 1 + M + N, D)
        src = (image + dense).flatten(2).transpose(1, 2)  # (B, hw, D)
        pos = image_pe.expand(b, -1, -1, -1).flatten(2).transpose(1, 2)  # (B, hw, D)
        queries, token_pe = tokens, tokens
        for block in self.blocks:
            queries, src = block(queries, src, token_pe, pos)
        q, k = queries + token_pe, src + pos
        queries = self.final_norm(queries + self.final_attn(q, k, src, need_weights=False)[0])

        iou_out = queries[:, 0]  # (B, D)
        mask_out = queries[:, 1 : 2 + self.num_masks]  # (B, M + 1, D)
        up = self.upscale(src.transpose(1, 2).reshape(b, d, h, w))  # (B, D/8, 4h, 4w)
        hyper = torch.stack([mlp(mask_out[:, i]) for i, mlp in enumerate(self.hypernetworks)], dim=1)  # (B, M + 1, D/8)
        masks = torch.einsum("bmc,bchw->bmhw", hyper, up)  # (B, M + 1, 4h, 4w)
        return masks, self.iou_head(iou_out)
