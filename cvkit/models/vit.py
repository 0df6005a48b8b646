r"""The Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"), with DeiT's distillation token.

The model is the paper's four equations, read top to bottom in :meth:`VisionTransformer.forward_tokens`:

.. math::
    \mathbf{z}_0 = [\mathbf{x}_{class}; \mathbf{x}_p^1 \mathbf{E}; \dots; \mathbf{x}_p^N \mathbf{E}] + \mathbf{E}_{pos}  \quad (1)

    \mathbf{z}'_\ell = \mathrm{MSA}(\mathrm{LN}(\mathbf{z}_{\ell-1})) + \mathbf{z}_{\ell-1}  \quad (2)

    \mathbf{z}_\ell = \mathrm{MLP}(\mathrm{LN}(\mathbf{z}'_\ell)) + \mathbf{z}'_\ell  \quad (3)

    \mathbf{y} = \mathrm{LN}(\mathbf{z}_L^0)  \quad (4)

DeiT (Touvron et al. 2021) appends a second learned token, the distillation token, whose output
feeds its own head and is trained to match a teacher (see :mod:`cvkit.models.deit`); at test time
the two heads' logits are averaged.

The sizes of the papers (ViT Table 1, DeiT Table 1) are in :data:`VIT_SIZES`. Weights of torchvision's
``vit_b_16`` & co. load with :meth:`VisionTransformer.from_torchvision`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn as nn

from cvkit.layers.patch_embed import PatchEmbed
from cvkit.layers.position import LearnedPositionEmbedding, SinCosPositionEmbedding2d
from cvkit.layers.transformer import TransformerBlock
from cvkit.models.registry import register_model

# name -> (D, depth, heads): ViT Table 1 (Base, Large, Huge) and DeiT Table 1 (Tiny, Small); MLP width is 4 D.
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
POSITION_KINDS = ("learned", "sincos")


@dataclass(frozen=True)
class ViTConfig:
    """The sizes and options of a :class:`VisionTransformer`.

    Raises:
        ValueError: on construction, for sizes that do not fit together or an unknown option.
    """

    img_size: int = 224  # H = W of the input images, pixels
    patch_size: int = 16  # P, side of a square patch, pixels (ViT-B/16: 16)
    in_chans: int = 3  # C, image channels
    num_classes: int = 1000  # K, outputs of the head
    dim: int = 768  # D, token width
    depth: int = 12  # L, transformer blocks
    num_heads: int = 12  # attention heads per block (D divisible by it)
    mlp_ratio: float = 4.0  # MLP hidden width / D
    qkv_bias: bool = True  # biases in the q/k/v projections
    drop: float = 0.0  # dropout after attention projection, in the MLP and after the position embedding
    attn_drop: float = 0.0  # dropout on attention weights
    drop_path: float = 0.0  # stochastic depth of the last block; grows linearly from 0 over the blocks (DeiT: 0.1)
    pos_embed: Literal["learned", "sincos"] = "learned"  # learned E_pos (ViT) or fixed 2-D sin-cos
    distilled: bool = False  # add DeiT's distillation token and head
    patch_mode: Literal["conv", "linear"] = "conv"  # how the patch embedding computes (same numbers)
    norm_eps: float = 1e-6  # LayerNorm epsilon (ViT, DeiT and torchvision use 1e-6)

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size ({self.img_size}) must be divisible by patch_size ({self.patch_size})")
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if self.pos_embed not in POSITION_KINDS:
            raise ValueError(f"pos_embed must be one of {POSITION_KINDS}, got {self.pos_embed!r}")
        if min(self.depth, self.num_classes, self.in_chans) < 1:
            raise ValueError(
                f"depth, num_classes and in_chans must be >= 1, got {self.depth}, {self.num_classes}, {self.in_chans}"
            )

    @property
    def num_patches(self) -> int:
        """N = (H / P)^2."""
        return (self.img_size // self.patch_size) ** 2


class VisionTransformer(nn.Module):
    """ViT (and DeiT with ``distilled=True``): patch embedding, class token, position embedding, L blocks, head.

    Args:
        config: a :class:`ViTConfig` (default: ViT-B/16 for 224 x 224 images).
        **overrides: fields of :class:`ViTConfig` that replace the config's (``VisionTransformer(depth=6)``).

    Shapes:
        images (B, C, H, W) float -> logits (B, K). With ``distilled=True`` the logits are the mean of
        the class head and the distillation head (DeiT's inference rule); :meth:`forward_heads` gives both.

    Attributes:
        num_prefix_tokens: tokens before the patches (1, or 2 with the distillation token); the
            visualizers read it.
        grid_size: (H/P, W/P).

    Raises:
        ValueError: bad config values, or (in forward) images of another size.
    """

    def __init__(self, config: ViTConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = replace(config or ViTConfig(), **overrides) if overrides else (config or ViTConfig())
        self.config = cfg
        self.num_prefix_tokens = 2 if cfg.distilled else 1
        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.dim, mode=cfg.patch_mode)
        self.grid_size = self.patch_embed.grid_size
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))  # x_class
        self.dist_token = nn.Parameter(torch.zeros(1, 1, cfg.dim)) if cfg.distilled else None
        n_tokens = self.num_prefix_tokens + cfg.num_patches
        if cfg.pos_embed == "learned":
            self.pos_embed = LearnedPositionEmbedding(n_tokens, cfg.dim)
        else:
            self.pos_embed = SinCosPositionEmbedding2d(self.grid_size, cfg.dim, self.num_prefix_tokens)
        self.pos_drop = nn.Dropout(cfg.drop)
        rates = [cfg.drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # linear stochastic-depth rule
        self.blocks = nn.ModuleList(
            TransformerBlock(
                cfg.dim,
                cfg.num_heads,
                cfg.mlp_ratio,
                qkv_bias=cfg.qkv_bias,
                drop=cfg.drop,
                attn_drop=cfg.attn_drop,
                drop_path=rate,
                norm_eps=cfg.norm_eps,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.dim, cfg.num_classes)
        self.head_dist = nn.Linear(cfg.dim, cfg.num_classes) if cfg.distilled else None
        self._init_weights()

    def _init_weights(self) -> None:
        """Truncated normal (std 0.02) for tokens and linear layers, zero biases, unit LayerNorms (ViT/DeiT practice)."""
        for token in (self.cls_token, self.dist_token):
            if token is not None:
                nn.init.trunc_normal_(token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Eqs. (1)-(3) and the final LN: images (B, C, H, W) -> tokens (B, prefix + N, D), class token first."""
        x = self.patch_embed(images)  # (B, N, D): x_p^i E
        b = x.shape[0]
        prefix = [self.cls_token.expand(b, -1, -1)]  # (B, 1, D)
        if self.dist_token is not None:
            prefix.append(self.dist_token.expand(b, -1, -1))  # (B, 1, D)
        x = torch.cat([*prefix, x], dim=1)  # (B, prefix + N, D)
        x = self.pos_drop(self.pos_embed(x))  # eq. (1): + E_pos
        for block in self.blocks:  # eqs. (2) and (3)
            x = block(x)
        return self.norm(x)  # eq. (4) applies LN to z_L; its class token is y

    def forward_heads(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(class-head logits (B, K), distillation-head logits (B, K) or None without the distillation token)."""
        tokens = self.forward_tokens(images)
        logits = self.head(tokens[:, 0])
        dist = self.head_dist(tokens[:, 1]) if self.head_dist is not None else None
        return logits, dist

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits, dist = self.forward_heads(images)
        return logits if dist is None else (logits + dist) / 2  # DeiT: average the two heads at inference

    @classmethod
    @torch.no_grad()
    def from_torchvision(cls, model: nn.Module) -> "VisionTransformer":
        """Build a cvkit ViT with the weights of a torchvision ``VisionTransformer`` (``vit_b_16`` & co.).

        With pretrained torchvision weights this gives the same logits as torchvision (checked in the tests).

        Raises:
            TypeError: not a torchvision VisionTransformer.
            ValueError: a variant this class does not have (conv stem, representation layer).
        """
        from torchvision.models.vision_transformer import VisionTransformer as TVViT

        if not isinstance(model, TVViT):
            raise TypeError(
                f"expected a torchvision VisionTransformer (e.g. torchvision.models.vit_b_16()), got {type(model).__name__}"
            )
        if not isinstance(model.conv_proj, nn.Conv2d) or "pre_logits" in dict(model.heads.named_children()):
            raise ValueError(
                "conv-stem and representation-layer variants are not supported; use vit_b_16/b_32/l_16/l_32/h_14"
            )
        layers = list(model.encoder.layers)
        cfg = ViTConfig(
            img_size=model.image_size,
            patch_size=model.patch_size,
            in_chans=model.conv_proj.in_channels,
            num_classes=model.heads.head.out_features,
            dim=model.hidden_dim,
            depth=len(layers),
            num_heads=layers[0].num_heads,
            mlp_ratio=model.mlp_dim / model.hidden_dim,
            norm_eps=model.encoder.ln.eps,
        )
        ours = cls(cfg)
        ours.patch_embed.proj.load_state_dict(model.conv_proj.state_dict())
        ours.cls_token.copy_(model.class_token)
        ours.pos_embed.weight.copy_(model.encoder.pos_embedding)
        for block, layer in zip(ours.blocks, layers):
            block.norm1.load_state_dict(layer.ln_1.state_dict())
            block.attn.load_from_torch(layer.self_attention)
            block.norm2.load_state_dict(layer.ln_2.state_dict())
            block.mlp.fc1.load_state_dict(layer.mlp[0].state_dict())
            block.mlp.fc2.load_state_dict(layer.mlp[3].state_dict())
        ours.norm.load_state_dict(model.encoder.ln.state_dict())
        ours.head.load_state_dict(model.heads.head.state_dict())
        return ours

    def extra_repr(self) -> str:
        c = self.config
        return f"img_size={c.img_size}, patch_size={c.patch_size}, dim={c.dim}, depth={c.depth}, heads={c.num_heads}, distilled={c.distilled}"


def vit_config(size: str = "base", **overrides) -> ViTConfig:
    """A :class:`ViTConfig` of a named size from :data:`VIT_SIZES`, with overrides.

    Raises:
        ValueError: unknown size.
    """
    if size not in VIT_SIZES:
        raise ValueError(f"size must be one of {tuple(VIT_SIZES)}, got {size!r}")
    dim, depth, heads = VIT_SIZES[size]
    return ViTConfig(**{**dict(dim=dim, depth=depth, num_heads=heads), **overrides})


# Small-data ViTs: Fashion-MNIST (1 x 28 x 28, 7 x 7 patches of 4 x 4 pixels) and CIFAR-10 (3 x 32 x 32, 8 x 8 patches).
VIT_MINI = dict(depth=4, num_heads=4, mlp_ratio=2.0)
VIT_SMOKE = dict(dim=32, depth=1, num_heads=2)


@register_model(
    "vit_tiny_patch4_28",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    smoke_kwargs=VIT_SMOKE,
    reference="Dosovitskiy et al. 2021",
)
def vit_tiny_patch4_28(**overrides) -> VisionTransformer:
    """A small ViT for 28 x 28 grey images (Fashion-MNIST): 49 patches of 4 x 4, D=48, 4 blocks, 4 heads (80 k parameters)."""
    return VisionTransformer(
        ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, dim=48, **VIT_MINI), **overrides
    )


@register_model(
    "vit_tiny_patch4_32",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=VIT_SMOKE,
    reference="Dosovitskiy et al. 2021",
)
def vit_tiny_patch4_32(**overrides) -> VisionTransformer:
    """A small ViT for 32 x 32 colour images (CIFAR-10): 64 patches of 4 x 4, D=64, 4 blocks, 4 heads."""
    return VisionTransformer(
        ViTConfig(img_size=32, patch_size=4, in_chans=3, num_classes=10, dim=64, **VIT_MINI), **overrides
    )


@register_model(
    "vit_b_16",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=VIT_SMOKE,
    reference="Dosovitskiy et al. 2021 (ViT-B/16)",
)
def vit_b_16(**overrides) -> VisionTransformer:
    """ViT-Base/16 for 224 x 224 images (86 M parameters); torchvision's weights load with ``VisionTransformer.from_torchvision``."""
    return VisionTransformer(vit_config("base", patch_size=16, img_size=224), **overrides)
