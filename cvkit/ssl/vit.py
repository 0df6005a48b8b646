r"""A tiny Vision Transformer encoder for masked image modelling (MAE, BEiT) on small images.

Built from the kit's layers (lecture 06): :class:`cvkit.layers.PatchEmbed` (a conv with
kernel = stride = patch size), fixed 2-D sine-cosine position embeddings (as MAE uses),
pre-norm :class:`cvkit.layers.TransformerBlock` s (the ViT equations), and a final LayerNorm.
No class token: the image feature is the mean of the patch tokens, which is what MAE's
linear probes and fine-tuning use as well (He et al. 2022, sec. A.1, "global pooling").

Two entry points, because masked image modelling feeds the encoder a subset of tokens::

    tokens = vit.embed(images)         # (B, N, D): patches + position embeddings
    out = vit.forward_tokens(tokens)   # (B, N', D): any subset or modification of them
    vit(images)                        # (B, D): mean of all output tokens (linear probe)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.patch_embed import PatchEmbed
from cvkit.layers.position import sincos_position_embedding_2d
from cvkit.layers.transformer import TransformerBlock


class ViTEncoder(nn.Module):
    """Patch embedding, fixed 2-D position embeddings, ``depth`` pre-norm transformer blocks, LayerNorm.

    Args:
        image_size: H = W of the input images.
        patch_size: p, the side of a patch (must divide ``image_size``).
        in_channels: C.
        dim: D, the token width (divisible by 4 and by ``heads``).
        depth: number of transformer blocks.
        heads: attention heads per block.
        mlp_ratio: hidden width of each block's MLP over ``dim``.

    Attributes:
        num_patches: N = (image_size / p)^2. grid: image_size / p. feature_dim: D.

    Shapes:
        :meth:`embed`: (B, C, H, W) -> (B, N, D); :meth:`forward_tokens`: (B, N', D) -> (B, N', D);
        :meth:`forward`: (B, C, H, W) -> (B, D).

    Raises:
        ValueError: a patch size that does not divide the image, heads that do not divide ``dim``,
            or input images of another size (forward).
    """

    def __init__(
        self,
        image_size: int = 28,
        patch_size: int = 4,
        in_channels: int = 1,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(image_size, patch_size, in_channels, dim)
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size
        self.num_patches = self.patch_embed.num_patches
        self.feature_dim = dim
        self.register_buffer(
            "pos_embed", sincos_position_embedding_2d(self.grid, dim)[None], persistent=False
        )  # (1, N, D)
        self.blocks = nn.ModuleList([TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def embed(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Patch tokens plus position embeddings, (B, N, D).

        Args:
            images: (B, C, H, W) float.
            mask: optional (B, N) bool; where True, the patch embedding is replaced by ``mask_token``
                before the position embedding is added (BEiT's corruption, Bao et al. 2022, sec. 2.3).
            mask_token: (D,) or (1, 1, D) learnable embedding, required with ``mask``.

        Raises:
            ValueError: images of the wrong size, or a mask without a mask token or of the wrong shape.
        """
        x = self.patch_embed(images)  # (B, N, D), patches row-major; checks the image size
        if mask is not None:
            if mask_token is None or mask.shape != x.shape[:2]:
                raise ValueError(
                    f"a mask needs shape {tuple(x.shape[:2])} and a mask_token, got {tuple(mask.shape)} and {mask_token is not None}"
                )
            x = torch.where(mask[..., None], mask_token.reshape(1, 1, -1).to(x.dtype), x)
        return x + self.pos_embed

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the transformer blocks and the final norm on (B, N', D) tokens."""
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.embed(images)).mean(dim=1)  # (B, N, D) -> (B, D)
