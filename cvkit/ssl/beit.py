r"""BEiT: BERT pre-training of image transformers (Bao et al., ICLR 2022) and its blockwise masking.

BEiT corrupts an image by replacing about 40% of its patch embeddings with a learnable
[MASK] embedding and trains a ViT to predict the *visual tokens* of the masked patches: the
discrete codes a tokenizer assigns to each patch. The masked positions are not drawn one
by one but in rectangular blocks, by the paper's Algorithm 1 (the lecture's slide):

.. code-block:: text

    Input: N (= h x w) image patches
    Output: Masked positions M
    M <- {}
    repeat
        s <- Rand(16, 0.4N - |M|)                # block size
        r <- Rand(0.3, 1/0.3)                     # aspect ratio of block
        a <- sqrt(s * r);  b <- sqrt(s / r)
        t <- Rand(0, h - a);  l <- Rand(0, w - b)
        M <- M U {(i, j) : i in [t, t + a), j in [l, l + b)}
    until |M| > 0.4N                              # masking ratio is 40%
    return M

:func:`blockwise_mask` implements it line by line. The tokenizer of the paper is DALL-E's
discrete VAE (8192 codes), which cannot be trained in a lecture's minutes; here
:class:`PatchKMeansTokenizer` assigns each patch the index of its nearest k-means centroid
(iGPT's colour-cluster tokens, Chen et al. 2020, in the same spirit), so the pre-training
task is BEiT's: classify the visual token of every masked patch.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.patch_embed import patchify, unpatchify
from cvkit.ssl.vit import ViTEncoder


def blockwise_mask(
    height: int,
    width: int,
    mask_ratio: float = 0.4,
    min_block: float = 16,
    min_aspect: float = 0.3,
    generator: torch.Generator | None = None,
    return_blocks: bool = False,
    max_iterations: int = 10_000,
):
    """BEiT's blockwise masking (Bao et al. 2022, Algorithm 1) on an ``height x width`` grid of patches.

    Line by line as the algorithm, with these readings of its real-valued quantities:

    * ``Rand(x, y)`` is uniform between x and y. When the remaining budget ``ratio * N - |M|`` is below
      ``min_block``, the bounds of ``Rand(16, 0.4N - |M|)`` are swapped, so s lies between the remainder
      and ``min_block`` (as Python's ``random.uniform``, used by BEiT's reference code, does).
    * The aspect ratio r is drawn log-uniformly on [min_aspect, 1 / min_aspect], so r and 1 / r
      are equally likely (BEiT's reference code does this; a uniform draw would favour tall blocks).
    * a and b are rounded to whole patches (at least 1); a block that does not fit the grid is
      redrawn; t and l are uniform integers in [0, h - a] and [0, w - b].
    * The block covers rows [t, t + a) and columns [l, l + b) (the slide's closed bracket on rows
      would make blocks one row too tall).

    Args:
        height, width: h and w, the patch grid (14 x 14 for a 224-pixel image with 16-pixel patches).
        mask_ratio: stop once more than ``mask_ratio * N`` patches are masked (BEiT: 0.4).
        min_block: smallest block size s in patches (BEiT: 16 of 196).
        min_aspect: smallest aspect ratio (BEiT: 0.3).
        generator: CPU ``torch.Generator`` for every random draw (``None``: the global one).
        return_blocks: also return the blocks drawn.
        max_iterations: safety bound on the repeat loop.

    Returns:
        (height, width) bool mask, True at masked patches; with ``return_blocks``, also a list of
        ``(t, l, a, b, s, r)``: top row, left column, rows, columns, the drawn size s and aspect r.

    Raises:
        ValueError: a grid, ratio, block size or aspect out of range.
        RuntimeError: the loop did not finish in ``max_iterations`` (cannot happen for valid arguments).
    """
    if height < 1 or width < 1:
        raise ValueError(f"the grid must be at least 1x1, got {height}x{width}")
    if not 0 < mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    if min_block <= 0:
        raise ValueError(f"min_block must be positive, got {min_block}")
    if not 0 < min_aspect <= 1:
        raise ValueError(f"min_aspect must be in (0, 1], got {min_aspect}")

    def rand(lo: float, hi: float) -> float:  # Rand(lo, hi): uniform between lo and hi (either order)
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    n = height * width
    target = mask_ratio * n
    mask = torch.zeros(height, width, dtype=torch.bool)
    blocks = []
    for _ in range(max_iterations):
        remaining = target - int(mask.sum())
        s = rand(min_block, remaining)  # block size
        r = math.exp(rand(math.log(min_aspect), -math.log(min_aspect)))  # aspect ratio of block
        a = max(1, round(math.sqrt(s * r)))  # rows
        b = max(1, round(math.sqrt(s / r)))  # columns
        if a > height or b > width:
            continue  # does not fit: draw again
        t = int(rand(0, height - a + 1 - 1e-9))  # uniform integer in [0, h - a]
        left = int(rand(0, width - b + 1 - 1e-9))
        mask[t : t + a, left : left + b] = True
        blocks.append((t, left, a, b, s, r))
        if int(mask.sum()) > target:  # until |M| > ratio * N
            return (mask, blocks) if return_blocks else mask
    raise RuntimeError(f"blockwise masking did not reach {target:.1f} patches in {max_iterations} iterations")


def blockwise_masks(
    batch: int, height: int, width: int, generator: torch.Generator | None = None, **kwargs
) -> torch.Tensor:
    """``batch`` independent :func:`blockwise_mask` draws, stacked and flattened: (batch, height * width) bool, row-major."""
    return torch.stack([blockwise_mask(height, width, generator=generator, **kwargs).flatten() for _ in range(batch)])


class PatchKMeansTokenizer(nn.Module):
    """Visual tokens: the index of the nearest of V k-means centroids of flattened patches.

    Stand-in for BEiT's discrete VAE (see the module docstring). Fit it once on training images
    with :meth:`fit`; it is an ``nn.Module`` only so the codebook moves with ``.to(device)``.

    Args:
        codebook: (V, C * p * p) float, one centroid per row (patches flattened as :func:`cvkit.layers.patchify` does).
        patch_size: p.

    Shapes:
        :meth:`encode`: (B, C, H, W) -> (B, N) int64 in [0, V); :meth:`decode`: (B, N) -> (B, C, H, W).
    """

    def __init__(self, codebook: torch.Tensor, patch_size: int) -> None:
        super().__init__()
        if codebook.dim() != 2:
            raise ValueError(f"codebook must be (V, C*p*p), got {tuple(codebook.shape)}")
        self.register_buffer("codebook", codebook.float())
        self.patch_size = patch_size

    @property
    def num_tokens(self) -> int:
        """V, the vocabulary size."""
        return self.codebook.shape[0]

    @classmethod
    def fit(
        cls, images: torch.Tensor, patch_size: int, num_tokens: int = 64, max_patches: int = 50_000, seed: int = 0
    ) -> "PatchKMeansTokenizer":
        """k-means (scikit-learn's ``MiniBatchKMeans``) on patches of ``images``.

        Args:
            images: (N, C, H, W) float in [0, 1].
            patch_size: p.
            num_tokens: V, the number of centroids.
            max_patches: fit on at most this many randomly chosen patches.
            seed: seeds the patch sample and k-means.
        """
        from sklearn.cluster import MiniBatchKMeans

        patches = patchify(images.detach().float().cpu(), patch_size).reshape(
            -1, patch_size * patch_size * images.shape[1]
        )
        g = torch.Generator().manual_seed(seed)
        if patches.shape[0] > max_patches:
            patches = patches[torch.randperm(patches.shape[0], generator=g)[:max_patches]]
        km = MiniBatchKMeans(n_clusters=num_tokens, random_state=seed, n_init=3, batch_size=4096).fit(patches.numpy())
        return cls(torch.from_numpy(km.cluster_centers_).float(), patch_size)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Token id of every patch, (B, N) int64."""
        patches = patchify(images.float(), self.patch_size)  # (B, N, P)
        dist = torch.cdist(patches, self.codebook[None].expand(patches.shape[0], -1, -1))  # (B, N, V)
        return dist.argmin(dim=-1)

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
        """Images made of each token's centroid, (B, C, H, W): what the tokenizer "sees"."""
        return unpatchify(self.codebook[tokens], self.patch_size, (height, width), channels)


class BEiT(nn.Module):
    """Masked image modelling: blockwise-masked ViT input, predict the visual tokens of the masked patches.

    Args:
        encoder: a :class:`ViTEncoder` (all N tokens go through it; masked ones carry the [MASK] embedding).
        tokenizer: a fitted :class:`PatchKMeansTokenizer` with the encoder's patch size.
        mask_ratio: BEiT: 0.4.
        min_block: smallest block in patches (default: BEiT's 16 of 196 patches scaled to this grid, at least 2).

    Attributes:
        encoder: what a linear probe reads. num_views: 1.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar cross-entropy over the masked patches.

    Raises:
        TypeError: ``encoder`` is not a :class:`ViTEncoder`. ValueError: patch sizes differ.
    """

    num_views = 1

    def __init__(
        self,
        encoder: ViTEncoder,
        tokenizer: PatchKMeansTokenizer,
        mask_ratio: float = 0.4,
        min_block: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, ViTEncoder):
            raise TypeError(f"encoder must be a cvkit.ssl.vit.ViTEncoder, got {type(encoder).__name__}")
        if tokenizer.patch_size != encoder.patch_size:
            raise ValueError(
                f"tokenizer patch size {tokenizer.patch_size} differs from the encoder's {encoder.patch_size}"
            )
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.mask_token = nn.Parameter(torch.zeros(encoder.feature_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        self.head = nn.Linear(encoder.feature_dim, tokenizer.num_tokens)
        self.mask_ratio = mask_ratio
        self.min_block = min_block if min_block is not None else max(2.0, 16 * encoder.num_patches / 196)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b = images.shape[0]
        g = self.encoder.grid
        mask = blockwise_masks(b, g, g, generator, mask_ratio=self.mask_ratio, min_block=self.min_block).to(
            images.device
        )  # (B, N)
        targets = self.tokenizer.encode(images)  # (B, N) visual tokens of the uncorrupted image
        out = self.encoder.forward_tokens(self.encoder.embed(images, mask, self.mask_token))  # (B, N, D)
        logits = self.head(out[mask])  # (M, V): masked positions only
        return F.cross_entropy(logits.float(), targets[mask])

    def extra_repr(self) -> str:
        return f"mask_ratio={self.mask_ratio}, min_block={self.min_block:.1f}, vocabulary={self.tokenizer.num_tokens}"
