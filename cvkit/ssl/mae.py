r"""MAE: masked autoencoders (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022).

The lecture's three points, in code:

1. **Mask random patches and reconstruct the missing pixels**: :func:`random_masking` keeps a
   random subset of the patch tokens (shuffle by sorting noise, keep the first ones); the
   loss is the mean squared error on the *masked* patches only.
2. **Asymmetric encoder-decoder**: the encoder sees only the visible 25% of the tokens (no
   mask tokens), so it costs a quarter of a full pass; a narrow, shallow decoder gets the
   encoded visible tokens plus a shared learnable mask token at every hidden position, and
   predicts pixels. Only the encoder is kept after pre-training.
3. **A high masking ratio (75%)** makes the task non-trivial: neighbouring pixels alone cannot
   fill in most of the image.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from cvkit.layers.patch_embed import patchify, unpatchify
from cvkit.layers.position import sincos_position_embedding_2d
from cvkit.layers.transformer import TransformerBlock
from cvkit.ssl.vit import ViTEncoder


def random_masking(
    tokens: torch.Tensor, mask_ratio: float = 0.75, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep a random subset of tokens per sample, MAE's way: sort uniform noise, keep the first ``int(N (1 - ratio))``.

    Args:
        tokens: (B, N, D).
        mask_ratio: fraction of tokens to hide, in [0, 1).
        generator: for the noise (on the tokens' device); ``None``: the global generator.

    Returns:
        kept: (B, K, D), K = ``int(N * (1 - mask_ratio))``, in random order;
        mask: (B, N) bool, True where a token is hidden (exactly N - K per row);
        ids_restore: (B, N) int64, the permutation that puts ``cat([kept, hidden])`` back in patch order.

    Raises:
        ValueError: ``mask_ratio`` outside [0, 1) or not (B, N, D) tokens.
    """
    if tokens.dim() != 3:
        raise ValueError(f"tokens must be (B, N, D), got {tuple(tokens.shape)}")
    if not 0 <= mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    b, n, d = tokens.shape
    keep = int(n * (1 - mask_ratio))
    noise = torch.rand(b, n, generator=generator, device=tokens.device)  # (B, N)
    ids_shuffle = noise.argsort(dim=1)  # ascending: the first `keep` are kept
    ids_restore = ids_shuffle.argsort(dim=1)
    ids_keep = ids_shuffle[:, :keep]  # (B, K)
    kept = tokens.gather(1, ids_keep[..., None].expand(-1, -1, d))  # (B, K, D)
    mask = torch.ones(b, n, dtype=torch.bool, device=tokens.device)
    mask[:, :keep] = False  # in shuffled order: kept first
    mask = mask.gather(1, ids_restore)  # back to patch order
    return kept, mask, ids_restore


class MaskedAutoencoder(nn.Module):
    """MAE with a :class:`ViTEncoder` and a narrow transformer decoder.

    Args:
        encoder: the ViT encoder (sees visible tokens only).
        decoder_dim: decoder token width (MAE: 512 for a 1024-wide encoder); divisible by 4.
        decoder_depth: decoder blocks (MAE: 8; one is enough for linear-probe quality, sec. 4.1).
        decoder_heads: attention heads of the decoder.
        mask_ratio: fraction of patches hidden (MAE: 0.75).
        norm_pix_loss: reconstruct each patch normalised by its own mean and std (MAE's better target, sec. 4.1).

    Attributes:
        encoder: what a linear probe reads. num_views: 1.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar loss (mean squared error on masked patches).

    Raises:
        TypeError: ``encoder`` is not a :class:`ViTEncoder`.
    """

    num_views = 1

    def __init__(
        self,
        encoder: ViTEncoder,
        decoder_dim: int = 32,
        decoder_depth: int = 1,
        decoder_heads: int = 4,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, ViTEncoder):
            raise TypeError(f"encoder must be a cvkit.ssl.vit.ViTEncoder, got {type(encoder).__name__}")
        if not 0 <= mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        p, c = encoder.patch_size, encoder.in_channels
        self.decoder_embed = nn.Linear(encoder.feature_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.register_buffer(
            "decoder_pos_embed", sincos_position_embedding_2d(encoder.grid, decoder_dim)[None], persistent=False
        )
        self.decoder = nn.ModuleList([TransformerBlock(decoder_dim, decoder_heads, 4.0) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, p * p * c)

    def forward_encoder(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode the visible patches only: returns latent (B, K, D), mask (B, N) bool, ids_restore (B, N)."""
        tokens = self.encoder.embed(images)  # (B, N, D), position embeddings added before masking
        kept, mask, ids_restore = random_masking(tokens, self.mask_ratio, generator)
        return self.encoder.forward_tokens(kept), mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predict every patch's pixels: (B, K, D) visible latents -> (B, N, C * p * p)."""
        x = self.decoder_embed(latent)  # (B, K, Dd)
        b, k, dd = x.shape
        n = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.expand(b, n - k, dd)], dim=1)  # (B, N, Dd): visible, then mask tokens
        x = x.gather(1, ids_restore[..., None].expand(-1, -1, dd))  # unshuffle to patch order
        x = x + self.decoder_pos_embed
        for block in self.decoder:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))  # (B, N, C*p*p)

    def reconstruction_loss(self, images: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the masked patches only (MAE sec. 3, "Reconstruction target")."""
        target = patchify(images, self.encoder.patch_size)  # (B, N, C*p*p)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred.float() - target).pow(2).mean(dim=-1)  # (B, N)
        m = mask.to(per_patch.dtype)
        return (per_patch * m).sum() / m.sum().clamp_min(1)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        latent, mask, ids_restore = self.forward_encoder(images, generator)
        return self.reconstruction_loss(images, self.forward_decoder(latent, ids_restore), mask)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Pictures for the lecture: the masked input, the prediction, and the prediction pasted into the visible patches.

        With ``norm_pix_loss`` the prediction is de-normalised with the true patch statistics (as MAE's figures do).

        Returns:
            dict of (B, C, H, W) float in [0, 1]: ``masked`` (hidden patches grey), ``prediction``, ``pasted``;
            and ``mask`` (B, N) bool.
        """
        b, c, h, w = images.shape
        p = self.encoder.patch_size
        latent, mask, ids_restore = self.forward_encoder(images, generator)
        pred = self.forward_decoder(latent, ids_restore)  # (B, N, C*p*p)
        if self.norm_pix_loss:
            target = patchify(images, p)
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6).sqrt() + target.mean(dim=-1, keepdim=True)
        patches = patchify(images, p)
        m = mask[..., None].to(patches.dtype)  # (B, N, 1)
        masked = patches * (1 - m) + 0.5 * m
        pasted = patches * (1 - m) + pred * m
        to_img = lambda t: unpatchify(t, p, (h, w), c).clamp(0, 1)  # noqa: E731
        return {"masked": to_img(masked), "prediction": to_img(pred), "pasted": to_img(pasted), "mask": mask}

    def extra_repr(self) -> str:
        return f"mask_ratio={self.mask_ratio}, norm_pix_loss={self.norm_pix_loss}"
