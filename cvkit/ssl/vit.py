r"""A tiny Vision Transformer encoder for masked image modelling (MAE, BEiT) on small images.

Patch embedding (a conv with kernel = stride = patch size), fixed 2-D sine-cosine position
embeddings (as MAE uses), pre-norm transformer blocks (``nn.TransformerEncoderLayer``
with ``norm_first=True``, the ViT equations of lecture 06), and a final LayerNorm. No
class token: the image feature is the mean of the patch tokens, which is what MAE's
linear probes and fine-tuning use as well (He et al. 2022, sec. A.1, "global pooling").

Two entry points, because masked image modelling feeds the encoder a subset of tokens::

    tokens = vit.embed(images)         # (B, N, D): patches + position embeddings
    out = vit.forward_tokens(tokens)   # (B, N', D): any subset or modification of them
    vit(images)                        # (B, D): mean of all output tokens (linear probe)
"""

from __future__ import annotations

import torch
import torch.nn as nn


def sincos_position_embedding_2d(grid_h: int, grid_w: int, dim: int) -> torch.Tensor:
    r"""Fixed 2-D sine-cosine position embeddings (MAE's ``get_2d_sincos_pos_embed``).

    Half of the channels encode the row, half the column; each half is the 1-D transformer
    encoding (Vaswani et al. 2017, sec. 3.5) :math:`[\sin(p\,\omega_k), \cos(p\,\omega_k)]`,
    :math:`\omega_k = 10000^{-k/(D/4)}`.

    Args:
        grid_h, grid_w: patches per column and per row.
        dim: D, divisible by 4.

    Returns:
        (grid_h * grid_w, dim) float32, patches in row-major order.

    Raises:
        ValueError: ``dim`` not divisible by 4.
    """
    if dim % 4 != 0:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))  # (D/4,)
    ys, xs = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64), indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega[None]  # (N, D/4)
        return torch.cat([angles.sin(), angles.cos()], dim=1)  # (N, D/2)

    return torch.cat([encode(ys), encode(xs)], dim=1).float()  # (N, D): rows first, as MAE


class ViTEncoder(nn.Module):
    """Patch embedding, fixed 2-D position embeddings, ``depth`` pre-norm transformer blocks, LayerNorm.

    Args:
        image_size: H = W of the input images.
        patch_size: p, the side of a patch (must divide ``image_size``).
        in_channels: C.
        dim: D, the token width (divisible by 4).
        depth: number of transformer blocks.
        heads: attention heads per block (must divide ``dim``).
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

    def __init__(self, image_size: int = 28, patch_size: int = 4, in_channels: int = 1, dim: int = 64, depth: int = 4,
                 heads: int = 4, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(f"patch_size {patch_size} must divide image_size {image_size}")
        if dim % heads != 0:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size
        self.num_patches = self.grid**2
        self.feature_dim = dim
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_position_embedding_2d(self.grid, self.grid, dim)[None], persistent=False)
        layer = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def embed(self, images: torch.Tensor, mask: torch.Tensor | None = None, mask_token: torch.Tensor | None = None) -> torch.Tensor:
        """Patch tokens plus position embeddings, (B, N, D).

        Args:
            images: (B, C, H, W) float.
            mask: optional (B, N) bool; where True, the patch embedding is replaced by ``mask_token``
                before the position embedding is added (BEiT's corruption, Bao et al. 2022, sec. 2.3).
            mask_token: (D,) or (1, 1, D) learnable embedding, required with ``mask``.

        Raises:
            ValueError: images of the wrong size, or a mask without a mask token or of the wrong shape.
        """
        if images.dim() != 4 or tuple(images.shape[1:]) != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"ViTEncoder expects (B, {self.in_channels}, {self.image_size}, {self.image_size}) images, got {tuple(images.shape)}"
            )
        x = self.patch_embed(images)  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, N, D), patches row-major
        if mask is not None:
            if mask_token is None or mask.shape != x.shape[:2]:
                raise ValueError(f"a mask needs shape {tuple(x.shape[:2])} and a mask_token, got {tuple(mask.shape)} and {mask_token is not None}")
            x = torch.where(mask[..., None], mask_token.reshape(1, 1, -1).to(x.dtype), x)
        return x + self.pos_embed

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Run the transformer blocks and the final norm on (B, N', D) tokens."""
        return self.norm(self.blocks(tokens))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.embed(images)).mean(dim=1)  # (B, N, D) -> (B, D)
