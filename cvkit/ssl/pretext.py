r"""Pretext tasks: labels made from the image itself, so a network learns features without annotations.

* **Rotation** (Gidaris et al., ICLR 2018): rotate by 0, 90, 180 or 270 degrees, predict which.
* **Relative position** / context prediction (Doersch et al., ICCV 2015): given the centre tile
  of a 3x3 grid and one of its 8 neighbours, predict where the neighbour is.
* **Jigsaw puzzles** (Noroozi & Favaro, ECCV 2016): shuffle the 9 tiles with one permutation out
  of a fixed set chosen for maximal Hamming distance, predict the permutation's index.
* **Inpainting** (Pathak et al., "Context Encoders", CVPR 2016): hide a region, reconstruct it.
* **Colourisation** (Zhang et al., ECCV 2016): predict colour from the grey image.

The tile tasks leave a random gap between tiles (a random crop inside each grid cell) and
normalise each tile, so the network cannot solve them from edge continuity or
brightness alone, the low-level shortcuts both papers warn about.

Every task module takes one (B, C, H, W) batch and returns its loss, so it trains with
the same loop as the contrastive methods (``num_views = 1``); ``encoder`` is what a linear probe reads.
"""

from __future__ import annotations

import functools
import itertools
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data.augment import check_image_batch
from cvkit.ssl.augment import LUMA_WEIGHTS, grayscale, rotate90
from cvkit.ssl.heads import feature_dim_of, mlp_head

# relative position labels: the 8 neighbours of the centre cell of a 3x3 grid, row-major
NEIGHBOURS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
NEIGHBOUR_NAMES: tuple[str, ...] = ("top-left", "top", "top-right", "left", "right", "bottom-left", "bottom", "bottom-right")


# ---------------------------------------------------------------- rotation
def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image, with their labels (Gidaris et al. 2018 train on all four at once).

    Args:
        images: (B, C, S, S) float, square.

    Returns:
        rotated (4B, C, S, S): the batch rotated by 0, 90, 180, 270 degrees counter-clockwise, in that order;
        labels (4B,) int64 in {0, 1, 2, 3} (rotation / 90 degrees).

    Raises:
        ValueError: not a batch of square images.
    """
    check_image_batch(images)
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotation needs square images, got {tuple(images.shape[-2:])}")
    b = images.shape[0]
    k = torch.arange(4, device=images.device).repeat_interleave(b)  # (4B,) 0 0 .. 1 1 .. 2 2 .. 3 3
    return rotate90(images.repeat(4, 1, 1, 1), k), k


class RotationPrediction(nn.Module):
    """Encoder plus a linear 4-way classifier of the rotation angle.

    Shapes:
        ``forward(images)``: (B, C, S, S) -> scalar cross-entropy over the 4B rotated copies.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(feature_dim_of(encoder), 4)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 4) rotation scores of already rotated images."""
        return self.head(self.encoder(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rotated, labels = rotation_batch(images)
        return F.cross_entropy(self.logits(rotated), labels)


# ---------------------------------------------------------------- tiles (relative position, jigsaw)
def grid_tiles(images: torch.Tensor, grid: int = 3, tile: int | None = None, generator: torch.Generator | None = None,
               normalize: bool = True) -> torch.Tensor:
    """Cut each image into ``grid x grid`` cells and take a random ``tile x tile`` crop inside each cell.

    The random offset leaves a gap of up to ``cell - tile`` pixels between neighbouring tiles.

    Args:
        images: (B, C, H, W) float.
        grid: cells per side.
        tile: tile side in pixels (default: 80% of the cell side, as 64 of Noroozi's 85-pixel cells).
        generator: random offsets (``None``: the global generator).
        normalize: subtract each tile's mean and divide by its standard deviation (per channel).

    Returns:
        (B, grid * grid, C, tile, tile), cells in row-major order.

    Raises:
        ValueError: ``tile`` larger than a cell or images too small for the grid.
    """
    check_image_batch(images)
    b, c, h, w = images.shape
    cell = min(h, w) // grid
    tile = tile or max(1, int(round(0.8 * cell)))
    if cell < 1 or not 1 <= tile <= cell:
        raise ValueError(f"tile must be between 1 and the cell side {cell} (images {h}x{w}, grid {grid}), got {tile}")
    n = grid * grid
    dev = images.device
    oy = torch.randint(0, cell - tile + 1, (b, n), generator=generator, device=dev)  # (B, n) offsets inside each cell
    ox = torch.randint(0, cell - tile + 1, (b, n), generator=generator, device=dev)
    cells = torch.arange(n, device=dev)
    top = (cells // grid) * cell + oy  # (B, n)
    left = (cells % grid) * cell + ox
    ar = torch.arange(tile, device=dev)
    rows = (top[..., None] + ar)[:, :, None, :, None]  # (B, n, 1, t, 1)
    cols = (left[..., None] + ar)[:, :, None, None, :]  # (B, n, 1, 1, t)
    bi = torch.arange(b, device=dev)[:, None, None, None, None]  # (B, 1, 1, 1, 1)
    ci = torch.arange(c, device=dev)[None, None, :, None, None]  # (1, 1, C, 1, 1)
    tiles = images[bi, ci, rows, cols]  # (B, n, C, t, t)
    if normalize:
        mean = tiles.mean(dim=(-2, -1), keepdim=True)
        std = tiles.std(dim=(-2, -1), keepdim=True).clamp_min(1e-3)
        tiles = (tiles - mean) / std
    return tiles


def relative_position_batch(images: torch.Tensor, tile: int | None = None, generator: torch.Generator | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs for context prediction (Doersch et al. 2015): the centre tile and a random one of its 8 neighbours.

    Args:
        images: (B, C, H, W) float.
        tile: tile side (see :func:`grid_tiles`).
        generator: random offsets and neighbour choice.

    Returns:
        centre (B, C, t, t), neighbour (B, C, t, t), labels (B,) int64 in [0, 8) indexing :data:`NEIGHBOUR_NAMES`.
    """
    tiles = grid_tiles(images, 3, tile, generator)  # (B, 9, C, t, t)
    b = tiles.shape[0]
    labels = torch.randint(0, 8, (b,), generator=generator, device=images.device)
    cell_of_label = torch.tensor([r * 3 + c for r, c in NEIGHBOURS], device=images.device)  # (8,) cell index
    neighbour = tiles[torch.arange(b, device=images.device), cell_of_label[labels]]
    return tiles[:, 4], neighbour, labels


class RelativePosition(nn.Module):
    """Siamese encoder on the centre and neighbour tiles, an MLP on the two features concatenated, 8 classes.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar cross-entropy.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module, hidden_dim: int = 256, tile: int | None = None) -> None:
        super().__init__()
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.head = mlp_head(2 * dim, hidden_dim, 8)
        self.tile = tile

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        centre, neighbour, labels = relative_position_batch(images, self.tile, generator)
        f = self.encoder(torch.cat([centre, neighbour]))  # (2B, D): one pass, shared weights
        fc, fn = f.chunk(2)
        return F.cross_entropy(self.head(torch.cat([fc, fn], dim=1)), labels)


def jigsaw_permutations(num_permutations: int = 64, grid: int = 3, seed: int = 0) -> torch.Tensor:
    """A permutation set of maximal average Hamming distance (Noroozi & Favaro 2016, Algorithm 1).

    Start from one random permutation; repeatedly add the permutation whose summed Hamming
    distance to those already chosen is largest. Distant permutations are easy to tell apart
    from each other and force the network to look at every tile.

    Args:
        num_permutations: P, the number of classes of the puzzle (the paper settles on 1000; 64 or 100 here).
        grid: tiles per side (9 tiles for 3).
        seed: chooses the first permutation.

    Returns:
        (P, grid * grid) int64; row p lists, for each position of the shuffled puzzle, which cell it shows.

    Raises:
        ValueError: ``num_permutations`` outside [1, (grid^2)!] or ``grid`` other than 2 or 3.
    """
    if grid not in (2, 3):
        raise ValueError(f"grid must be 2 or 3 (all permutations are enumerated), got {grid}")
    everything = _all_permutations(grid * grid)  # (n!, n)
    if not 1 <= num_permutations <= everything.shape[0]:
        raise ValueError(f"num_permutations must be in [1, {everything.shape[0]}], got {num_permutations}")
    g = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(0, everything.shape[0], (1,), generator=g))]
    total = torch.zeros(everything.shape[0], dtype=torch.int32)  # summed distance to the chosen set
    for _ in range(num_permutations - 1):
        total += (everything != everything[chosen[-1]]).sum(dim=1, dtype=torch.int32)
        total[chosen[-1]] = -1  # never pick twice
        chosen.append(int(total.argmax()))
    return everything[chosen].long()


@functools.lru_cache(maxsize=2)
def _all_permutations(n: int) -> torch.Tensor:
    """Every permutation of range(n) as an (n!, n) int8 tensor (362,880 rows for 9 tiles; built once)."""
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.int8)


def jigsaw_batch(images: torch.Tensor, permutations: torch.Tensor, tile: int | None = None, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffled 3x3 puzzles and the index of the permutation that shuffled each.

    Args:
        images: (B, C, H, W) float.
        permutations: (P, 9) int64 from :func:`jigsaw_permutations`.
        tile: tile side (see :func:`grid_tiles`).

    Returns:
        tiles (B, 9, C, t, t) where position j shows cell ``permutations[label, j]``; labels (B,) int64 in [0, P).
    """
    if permutations.dim() != 2 or permutations.shape[1] != 9:
        raise ValueError(f"permutations must be (P, 9), got {tuple(permutations.shape)}")
    tiles = grid_tiles(images, 3, tile, generator)  # (B, 9, C, t, t)
    b = tiles.shape[0]
    labels = torch.randint(0, permutations.shape[0], (b,), generator=generator, device=images.device)
    order = permutations.to(images.device)[labels]  # (B, 9)
    return tiles[torch.arange(b, device=images.device)[:, None], order], labels


class JigsawPuzzle(nn.Module):
    """Noroozi's context-free network: a shared encoder per tile, features concatenated, an MLP over P permutations.

    Args:
        encoder: backbone (B, C, t, t) -> (B, D) with ``feature_dim``.
        num_permutations: P.
        hidden_dim: MLP width.
        tile: tile side (default: 80% of a cell).
        seed: seed of the permutation set.

    Shapes:
        ``forward(images)``: (B, C, H, W) -> scalar cross-entropy.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module, num_permutations: int = 64, hidden_dim: int = 256, tile: int | None = None, seed: int = 0) -> None:
        super().__init__()
        dim = feature_dim_of(encoder)
        self.encoder = encoder
        self.head = mlp_head(9 * dim, hidden_dim, num_permutations)
        self.register_buffer("permutations", jigsaw_permutations(num_permutations, 3, seed))
        self.tile = tile

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        tiles, labels = jigsaw_batch(images, self.permutations, self.tile, generator)  # (B, 9, C, t, t)
        b = tiles.shape[0]
        f = self.encoder(tiles.flatten(0, 1))  # (9B, D)
        return F.cross_entropy(self.head(f.view(b, -1)), labels)  # (B, 9D) -> (B, P)


# ---------------------------------------------------------------- dense tasks (inpainting, colourisation)
def square_hole(images: torch.Tensor, fraction: float = 0.5, generator: torch.Generator | None = None, center: bool = False) -> torch.Tensor:
    """A square hole of side ``fraction * min(H, W)`` per image: the region a context encoder must fill in.

    Args:
        images: (B, C, H, W).
        fraction: hole side over the image side, in (0, 1).
        generator: random positions (ignored when ``center``).
        center: put the hole in the middle (Pathak et al.'s "central region") instead of a random place.

    Returns:
        (B, 1, H, W) bool, True inside the hole.

    Raises:
        ValueError: ``fraction`` outside (0, 1).
    """
    check_image_batch(images)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    b, _, h, w = images.shape
    side = max(1, int(round(fraction * min(h, w))))
    dev = images.device
    if center:
        top = torch.full((b,), (h - side) // 2, device=dev)
        left = torch.full((b,), (w - side) // 2, device=dev)
    else:
        top = torch.randint(0, h - side + 1, (b,), generator=generator, device=dev)
        left = torch.randint(0, w - side + 1, (b,), generator=generator, device=dev)
    ys = torch.arange(h, device=dev)[None]  # (1, H)
    xs = torch.arange(w, device=dev)[None]
    in_y = (ys >= top[:, None]) & (ys < top[:, None] + side)  # (B, H)
    in_x = (xs >= left[:, None]) & (xs < left[:, None] + side)  # (B, W)
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)


class UpsamplingDecoder(nn.Module):
    """Feature map back to an image: ``[x2 nearest upsampling, conv3x3, BN, ReLU]`` per stage, a resize, a 1x1 conv.

    Args:
        in_channels: D of the encoder's feature map.
        out_channels: channels of the output.
        widths: channels of the upsampling stages (one x2 stage each).
        output_range: ``"unit"``: a sigmoid, outputs in [0, 1] (pixels); ``"signed"``: ``tanh``, outputs in [-1, 1].

    Shapes:
        (B, D, h, w) -> (B, out_channels, H, W), where (H, W) is given to :meth:`forward`.

    Raises:
        ValueError: an unknown ``output_range``.
    """

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...] = (16, 8, 4),
                 output_range: Literal["unit", "signed"] = "unit") -> None:
        super().__init__()
        if output_range not in ("unit", "signed"):
            raise ValueError(f"output_range must be 'unit' or 'signed', got {output_range!r}")
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(c, out_channels, 1)
        self.output_range = output_range

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.out(F.interpolate(self.body(features), size=size, mode="bilinear", align_corners=False))  # (B, out, H, W)
        return torch.sigmoid(x) if self.output_range == "unit" else torch.tanh(x)


# chroma of the YUV colour space (ITU-R BT.601): U = 0.492 (B - Y), V = 0.877 (R - Y), with Y the luma of augment.grayscale
_U, _V = 0.492, 0.877


def rgb_to_chroma(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split (B, 3, H, W) RGB in [0, 1] into luma Y (B, 1, H, W) and chroma UV (B, 2, H, W), U and V in about [-0.62, 0.62]."""
    y = grayscale(images)
    u = _U * (images[:, 2:3] - y)
    v = _V * (images[:, 0:1] - y)
    return y, torch.cat([u, v], dim=1)


def chroma_to_rgb(luma: torch.Tensor, chroma: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_chroma`: (B, 1, H, W) luma and (B, 2, H, W) chroma to (B, 3, H, W) RGB clipped to [0, 1]."""
    r = luma + chroma[:, 1:2] / _V
    b = luma + chroma[:, 0:1] / _U
    g = (luma - LUMA_WEIGHTS[0] * r - LUMA_WEIGHTS[2] * b) / LUMA_WEIGHTS[1]
    return torch.cat([r, g, b], dim=1).clamp(0, 1)


class DensePretext(nn.Module):
    """Encoder-decoder pretext tasks that predict pixels: inpainting or colourisation.

    * ``"inpainting"`` (Pathak et al. 2016): the input has a random square hole (``hole_fraction`` of the side)
      filled with 0.5 grey; the decoder paints the image; the loss is the mean squared error inside the hole
      (the paper adds an adversarial term for sharper fills; left out here).
    * ``"colorization"`` (Zhang et al. 2016): the input is the luma Y; the decoder predicts only the colour, the
      chroma UV (as the paper predicts the ab channels of Lab given L); the loss is the mean squared error on UV
      (the paper classifies quantised colours instead, which avoids the greyish averages regression gives).
      The encoder takes 1 channel; ``out_channels`` must be 3.

    Args:
        encoder: a backbone with ``forward_map`` (B, C_in, H, W) -> (B, D, h, w) and ``feature_dim`` (e.g. :class:`cvkit.layers.ConvEncoder`).
        out_channels: channels of the images (1 for Fashion-MNIST, 3 for colour).
        task: ``"inpainting"`` or ``"colorization"``.
        hole_fraction: side of the inpainting hole over the image side.
        decoder_widths: channels of the decoder's x2 upsampling stages (as many are used as the encoder has
            stride-2 stages; small, because pixels are cheap to predict and the encoder is what we keep).

    Shapes:
        ``forward(images)``: (B, out_channels, H, W) in [0, 1] -> scalar loss; :meth:`predict` returns
        (input, predicted image, loss weight per pixel).

    Raises:
        ValueError: an unknown task, or colourisation with ``out_channels`` other than 3; TypeError: an encoder without ``forward_map``.
    """

    num_views = 1

    def __init__(self, encoder: nn.Module, out_channels: int, task: Literal["inpainting", "colorization"] = "inpainting",
                 hole_fraction: float = 0.5, decoder_widths: tuple[int, ...] = (16, 8, 4)) -> None:
        super().__init__()
        if task not in ("inpainting", "colorization"):
            raise ValueError(f"task must be 'inpainting' or 'colorization', got {task!r}")
        if task == "colorization" and out_channels != 3:
            raise ValueError(f"colorization predicts colour images: out_channels must be 3, got {out_channels}")
        if not hasattr(encoder, "forward_map"):
            raise TypeError(f"the encoder ({type(encoder).__name__}) needs forward_map(x) -> (B, D, h, w), as ConvEncoder has")
        self.encoder = encoder
        widths = tuple(decoder_widths)[: _stages(encoder)]
        if task == "inpainting":
            self.decoder = UpsamplingDecoder(feature_dim_of(encoder), out_channels, widths, "unit")
        else:
            self.decoder = UpsamplingDecoder(feature_dim_of(encoder), 2, widths, "signed")  # U and V
        self.task = task
        self.hole_fraction = hole_fraction

    def make_input(self, images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The corrupted input and the (B, 1, H, W) float weight of each pixel in the loss."""
        if self.task == "inpainting":
            hole = square_hole(images, self.hole_fraction, generator)
            return images.masked_fill(hole, 0.5), hole.to(images.dtype)
        return grayscale(images), torch.ones_like(images[:, :1])

    def _decode(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        out = self.decoder(self.encoder.forward_map(x), size)
        return out if self.task == "inpainting" else 0.62 * out  # chroma range of rgb_to_chroma

    def predict(self, images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(corrupted input, predicted image in [0, 1], (B, 1, H, W) loss weight: 1 inside the hole / everywhere)."""
        x, weight = self.make_input(images, generator)
        out = self._decode(x, tuple(images.shape[-2:]))
        return x, (out if self.task == "inpainting" else chroma_to_rgb(x, out)), weight

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x, weight = self.make_input(images, generator)
        pred = self._decode(x, tuple(images.shape[-2:]))
        target = images if self.task == "inpainting" else rgb_to_chroma(images)[1]
        err = (pred - target).pow(2).mean(dim=1, keepdim=True)  # (B, 1, H, W)
        return (err * weight).sum() / weight.sum().clamp_min(1)

    def extra_repr(self) -> str:
        return f"task={self.task!r}"


def _stages(encoder: nn.Module) -> int:
    """Number of x2 upsampling stages that undo the encoder's stride (3 for a stride-8 ConvEncoder)."""
    stride = getattr(encoder, "stride", 8)
    return max(1, min(3, int(stride).bit_length() - 1))
