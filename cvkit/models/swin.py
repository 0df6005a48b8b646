r"""Swin Transformer (Liu et al. 2021, "Hierarchical Vision Transformer using Shifted Windows").

A ViT gives one resolution (1/16) and attends globally (cost quadratic in the number of tokens). Swin
builds a CNN-like pyramid instead (paper Fig. 3):

* patch partition: 4 x 4 patches, linear embedding to C channels (+ LayerNorm): stage 1 at 1/4 resolution;
* each stage: pairs of blocks, W-MSA (regular windows) then SW-MSA (windows shifted by M/2), M = 7;
* between stages, patch merging: 2 x 2 neighbours -> one token, 2C channels: 1/8, 1/16, 1/32.

The classification head averages the last stage's tokens. Stage outputs are the feature pyramid that
detectors and segmenters use (:meth:`SwinTransformer.forward_stages`).
Weights of torchvision's ``swin_t``/``swin_s``/``swin_b`` load with :meth:`SwinTransformer.from_torchvision`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from cvkit.layers.patch_embed import PatchEmbed
from cvkit.layers.patch_merging import PatchMerging
from cvkit.layers.window import SwinBlock
from cvkit.layers.window_v2 import SwinV2Block
from cvkit.models.registry import register_model


@dataclass(frozen=True)
class SwinConfig:
    """Sizes of a :class:`SwinTransformer` (defaults: Swin-T, paper section 3.3).

    Raises:
        ValueError: on construction, when the sizes do not fit together.
    """

    img_size: int = 224  # H = W of the input images, pixels
    patch_size: int = 4  # side of the patches of the first stage, pixels
    in_chans: int = 3  # image channels
    num_classes: int = 1000  # outputs of the head
    embed_dim: int = 96  # C, channels of stage 1 (doubles at each patch merging)
    depths: tuple[int, ...] = (2, 2, 6, 2)  # blocks per stage (even: W-MSA / SW-MSA pairs)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)  # attention heads per stage
    window_size: int = 7  # M, side of an attention window, tokens
    mlp_ratio: float = 4.0  # MLP hidden width / C
    qkv_bias: bool = True
    drop: float = 0.0
    attn_drop: float = 0.0
    drop_path: float = 0.2  # stochastic depth of the last block, linear from 0 (Swin-T: 0.2)
    norm_eps: float = 1e-5
    version: int = (
        1  # 1: pre-norm dot-product blocks (Swin); 2: residual post-norm, cosine attention, log-spaced CPB (Swin V2)
    )

    def __post_init__(self) -> None:
        if self.version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, got {self.version}")
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths {self.depths} and num_heads {self.num_heads} need one entry per stage")
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size ({self.img_size}) must be divisible by patch_size ({self.patch_size})")
        side = self.img_size // self.patch_size
        if side % 2 ** (len(self.depths) - 1):
            raise ValueError(
                f"the stage-1 grid ({side}x{side}) must halve {len(self.depths) - 1} times; change img_size or patch_size"
            )
        for i, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % heads:
                raise ValueError(f"stage {i + 1} width {self.embed_dim * 2**i} is not divisible by its {heads} heads")


class SwinTransformer(nn.Module):
    """A Swin Transformer classifier.

    Args:
        config: a :class:`SwinConfig` (default Swin-T).
        **overrides: :class:`SwinConfig` fields to replace.

    Shapes:
        images (B, C, H, W) -> logits (B, K).

    Attributes:
        resolutions: the (H, W) token grid of every stage; widths: their channel counts.
    """

    def __init__(self, config: SwinConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = replace(config or SwinConfig(), **overrides) if overrides else (config or SwinConfig())
        self.config = cfg
        self.patch_embed = PatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, cfg.embed_dim)
        self.patch_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.norm_eps)
        total = sum(cfg.depths)
        rates = [cfg.drop_path * i / max(total - 1, 1) for i in range(total)]
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.resolutions: list[tuple[int, int]] = []
        self.widths: list[int] = []
        res, dim, k = self.patch_embed.grid_size, cfg.embed_dim, 0
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            self.resolutions.append(res)
            self.widths.append(dim)
            self.stages.append(
                nn.Sequential(
                    *(
                        SwinBlock(
                            dim,
                            heads,
                            res,
                            cfg.window_size,
                            shift_size=0 if j % 2 == 0 else cfg.window_size // 2,
                            mlp_ratio=cfg.mlp_ratio,
                            qkv_bias=cfg.qkv_bias,
                            drop=cfg.drop,
                            attn_drop=cfg.attn_drop,
                            drop_path=rates[k + j],
                            norm_eps=cfg.norm_eps,
                        )
                        if cfg.version == 1
                        else SwinV2Block(
                            dim,
                            heads,
                            res,
                            cfg.window_size,
                            shift_size=0 if j % 2 == 0 else cfg.window_size // 2,
                            mlp_ratio=cfg.mlp_ratio,
                            drop_path=rates[k + j],
                            norm_eps=cfg.norm_eps,
                        )
                        for j in range(depth)
                    )
                )
            )
            k += depth
            if i < len(cfg.depths) - 1:
                self.merges.append(PatchMerging(dim, res, cfg.norm_eps))
                res, dim = (res[0] // 2, res[1] // 2), dim * 2
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.head = nn.Linear(dim, cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The output tokens of every stage: [(B, H_i * W_i, C_i)], at 1/P, 1/2P, 1/4P, ... of the image."""
        x = self.patch_norm(self.patch_embed(images))  # (B, H/P * W/P, C)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            outs.append(x)
            if i < len(self.merges):
                x = self.merges[i](x)  # (B, N/4, 2C)
        return outs

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.forward_stages(images)[-1])  # (B, N_last, C_last)
        return self.head(x.mean(dim=1))  # average pooling over tokens, then the classifier

    @classmethod
    @torch.no_grad()
    def from_torchvision(cls, model: nn.Module, img_size: int = 224) -> "SwinTransformer":
        """Build a cvkit Swin with the weights of torchvision's ``swin_t``/``swin_s``/``swin_b`` (v1).

        Args:
            model: the torchvision model.
            img_size: the image size it will be run at (torchvision's models take any size; ours fixes it).

        Raises:
            TypeError: not a torchvision SwinTransformer with v1 blocks.
        """
        from torchvision.models.swin_transformer import ShiftedWindowAttention, SwinTransformer as TVSwin

        if (
            not isinstance(model, TVSwin)
            or not isinstance(model.features[1][0].attn, ShiftedWindowAttention)
            or type(model.features[1][0].attn) is not ShiftedWindowAttention
        ):
            raise TypeError(f"expected a torchvision Swin v1 (swin_t, swin_s, swin_b), got {type(model).__name__}")
        stem = model.features[0]
        stages = [model.features[i] for i in range(1, len(model.features), 2)]
        merges = [model.features[i] for i in range(2, len(model.features), 2)]
        first = stages[0][0]
        cfg = SwinConfig(
            img_size=img_size,
            patch_size=stem[0].kernel_size[0],
            in_chans=stem[0].in_channels,
            num_classes=model.head.out_features,
            embed_dim=stem[0].out_channels,
            depths=tuple(len(s) for s in stages),
            num_heads=tuple(s[0].attn.num_heads for s in stages),
            window_size=first.attn.window_size[0],
            mlp_ratio=first.mlp[0].out_features / stem[0].out_channels,
            norm_eps=stem[2].eps,
            drop_path=0.0,
        )
        ours = cls(cfg)
        ours.patch_embed.proj.load_state_dict(stem[0].state_dict())
        ours.patch_norm.load_state_dict(stem[2].state_dict())
        for our_stage, tv_stage in zip(ours.stages, stages):
            for block, tv in zip(our_stage, tv_stage):
                block.norm1.load_state_dict(tv.norm1.state_dict())
                block.norm2.load_state_dict(tv.norm2.state_dict())
                attn = block.attn.attn
                for proj, w, b in zip(
                    (attn.q_proj, attn.k_proj, attn.v_proj), tv.attn.qkv.weight.chunk(3), tv.attn.qkv.bias.chunk(3)
                ):
                    proj.weight.copy_(w)
                    proj.bias.copy_(b)
                attn.out_proj.load_state_dict(tv.attn.proj.state_dict())
                block.attn.position_bias.table.copy_(tv.attn.relative_position_bias_table)
                block.mlp.fc1.load_state_dict(tv.mlp[0].state_dict())
                block.mlp.fc2.load_state_dict(tv.mlp[3].state_dict())
        for merge, tv in zip(ours.merges, merges):
            merge.load_state_dict(tv.state_dict())
        ours.norm.load_state_dict(model.norm.state_dict())
        ours.head.load_state_dict(model.head.state_dict())
        return ours

    def extra_repr(self) -> str:
        c = self.config
        return f"img_size={c.img_size}, patch_size={c.patch_size}, depths={c.depths}, widths={self.widths}, window={c.window_size}"


_SMOKE = dict(embed_dim=16, depths=(2, 1), num_heads=(1, 2), drop_path=0.1)


@register_model(
    "swin_tiny_patch4_32",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=_SMOKE,
    reference="Liu et al. 2021 (Swin)",
)
def swin_tiny_patch4_32(**overrides) -> SwinTransformer:
    """A two-stage Swin for 32 x 32 colour images: 8 x 8 tokens of 4 x 4 pixels in 4 x 4 windows (shifted by 2), then 4 x 4 tokens after merging."""
    cfg = SwinConfig(
        img_size=32,
        patch_size=4,
        in_chans=3,
        num_classes=10,
        embed_dim=32,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        mlp_ratio=2.0,
        drop_path=0.1,
    )
    return SwinTransformer(cfg, **overrides)


@register_model(
    "swinv2_tiny_patch4_32",
    task="classification",
    input_shape=(3, 32, 32),
    output_shape=(10,),
    smoke_kwargs=_SMOKE,
    reference="Liu et al. 2022 (Swin V2)",
)
def swinv2_tiny_patch4_32(**overrides) -> SwinTransformer:
    """:func:`swin_tiny_patch4_32` with Swin V2 blocks (residual post-norm, scaled cosine attention, log-spaced position
    bias); patch merging stays V1's."""
    cfg = SwinConfig(
        img_size=32,
        patch_size=4,
        in_chans=3,
        num_classes=10,
        embed_dim=32,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=4,
        mlp_ratio=2.0,
        drop_path=0.1,
        version=2,
    )
    return SwinTransformer(cfg, **overrides)


@register_model(
    "swin_t",
    task="classification",
    input_shape=(3, 224, 224),
    output_shape=(1000,),
    smoke_kwargs=dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2)),
    reference="Liu et al. 2021 (Swin-T)",
)
def swin_t(**overrides) -> SwinTransformer:
    """Swin-T (28 M parameters, 4.5 GFLOPs at 224 x 224); torchvision's weights load with ``SwinTransformer.from_torchvision``."""
    return SwinTransformer(SwinConfig(), **overrides)
