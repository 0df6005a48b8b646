r"""MaxViT (Tu et al., "MaxViT: Multi-Axis Vision Transformer", ECCV 2022) as a model: stem, stages of
MBConv -> block attention -> grid attention, global pooling, a linear head (the paper's Fig. 2; lecture 07).

Each stage halves the resolution in its first MBConv (stride 2) and doubles the width. Inside a block, block
attention mixes P x P neighbours and grid attention mixes a G x G dilated grid laid over the whole map
(:mod:`cvkit.layers.maxvit`), so every block sees the whole image at a cost linear in its size.
:func:`maxvit_tiny_32` is sized for 32 x 32 images (the synthetic shapes of lecture 07).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from cvkit.layers.maxvit import BlockGridAttention
from cvkit.layers.mbconv import MBConv
from cvkit.models.registry import register_model


@dataclass(frozen=True)
class MaxViTConfig:
    """Sizes of a :class:`MaxViT` (defaults: a small model for 32 x 32 images).

    Raises:
        ValueError: on construction, when a stage's grid is not divisible by the partition size.
    """

    img_size: int = 32  # H = W of the input, pixels
    in_chans: int = 3  # image channels
    num_classes: int = 10  # outputs
    stem_dim: int = 32  # width after the stride-2 stem
    dims: tuple[int, ...] = (32, 64)  # width of each stage
    depths: tuple[int, ...] = (1, 1)  # MaxViT blocks per stage
    heads: tuple[int, ...] = (2, 4)  # attention heads per stage
    partition: int = 4  # P = G, block and grid size, tokens
    mlp_ratio: float = 2.0
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        if not len(self.dims) == len(self.depths) == len(self.heads):
            raise ValueError("dims, depths and heads need one entry per stage")
        side = self.img_size // 2
        for i in range(len(self.dims)):
            side //= 2
            if side % self.partition:
                raise ValueError(
                    f"stage {i + 1} works on a {side}x{side} grid, not divisible by partition {self.partition}"
                )


class MaxViT(nn.Module):
    """A MaxViT classifier.

    Args:
        config: a :class:`MaxViTConfig`. ``**overrides``: fields to replace.

    Shapes:
        images (B, C, H, W) -> logits (B, K).
    """

    def __init__(self, config: MaxViTConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = replace(config or MaxViTConfig(), **overrides) if overrides else (config or MaxViTConfig())
        self.config = cfg
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_chans, cfg.stem_dim, 3, 2, 1),
            nn.BatchNorm2d(cfg.stem_dim),
            nn.GELU(),
            nn.Conv2d(cfg.stem_dim, cfg.stem_dim, 3, 1, 1),
        )
        self.stages = nn.ModuleList()
        side, c = cfg.img_size // 2, cfg.stem_dim
        for dim, depth, heads in zip(cfg.dims, cfg.depths, cfg.heads):
            side //= 2
            blocks = nn.ModuleList()
            for j in range(depth):
                blocks.append(
                    nn.ModuleDict(
                        {
                            "mbconv": MBConv(c if j == 0 else dim, dim, stride=2 if j == 0 else 1),
                            "attention": BlockGridAttention(
                                dim,
                                heads,
                                (side, side),
                                size=cfg.partition,
                                mlp_ratio=cfg.mlp_ratio,
                                drop_path=cfg.drop_path,
                            ),
                        }
                    )
                )
            self.stages.append(blocks)
            c = dim
        self.norm = nn.LayerNorm(c)
        self.head = nn.Linear(c, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)  # (B, C0, H/2, W/2)
        for blocks in self.stages:
            for block in blocks:
                x = block["mbconv"](x)  # (B, C, h, w): local mixing, and the position information
                b, c, h, w = x.shape
                tokens = block["attention"](x.flatten(2).transpose(1, 2))  # (B, h*w, C): block then grid attention
                x = tokens.transpose(1, 2).reshape(b, c, h, w)  # (B, C, h, w)
        return self.head(self.norm(x.mean(dim=(2, 3))))


@register_model(
    "maxvit_tiny_32",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=dict(stem_dim=8, dims=(8, 16), heads=(1, 2)),
    reference="Tu et al. 2022 (MaxViT)",
)
def maxvit_tiny_32(**overrides) -> MaxViT:
    """A two-stage MaxViT for 32 x 32 images: 8 x 8 then 4 x 4 tokens, block and grid size 4."""
    return MaxViT(MaxViTConfig(), **overrides)
