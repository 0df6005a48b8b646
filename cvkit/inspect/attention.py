r"""Attention of vision transformers, recorded and analysed: attention maps, attention rollout, mean attention distance.

Works with cvkit's models (:class:`cvkit.layers.MultiHeadAttention`) and with any model built from
``torch.nn.MultiheadAttention``, such as torchvision's ``vit_b_16``, through hooks (nothing in the
model is edited)::

    maps = attention_maps(model, images)               # one (B, h, N, N) per attention layer
    prefix, grid, patch = vit_token_layout(model)       # 1, (14, 14), 16 for vit_b_16
    heads = cls_attention(maps[-1], grid, prefix)       # (B, h, 14, 14): what the class token looks at
    rolled = cls_attention(attention_rollout(maps), grid, prefix)   # (B, 14, 14)
    dist = mean_attention_distance(maps, grid, patch, prefix)      # (L, h) in pixels

Sources: Dosovitskiy et al. 2021 (ViT), Fig. 6 (attention maps) and Fig. 7 (mean attention distance);
Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers" (attention rollout).

The pictures of these maps are in :mod:`cvkit.viz.attention`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.attention import MultiHeadAttention

HeadFusion = Literal["mean", "max", "min"]
HEAD_FUSIONS = ("mean", "max", "min")


@contextmanager
def record_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the attention weights of every attention layer in ``model`` while the block runs.

    cvkit's :class:`~cvkit.layers.MultiHeadAttention` layers are switched to keep their weights;
    ``nn.MultiheadAttention`` layers (torchvision's ViT) are asked for per-head weights by a
    forward pre-hook that sets ``need_weights=True, average_attn_weights=False``. Everything is
    restored on exit.

    Yields:
        A list that fills with one (B, h, Nq, Nk) float tensor (detached) per attention call, in call order.

    Raises:
        ValueError: the model has no attention layer.
    """
    maps: list[torch.Tensor] = []
    handles, ours = [], []

    def keep_ours(module, args, output):
        maps.append(module.attention)

    def ask_weights(module, args, kwargs):
        kwargs = dict(kwargs)
        kwargs["need_weights"], kwargs["average_attn_weights"] = True, False
        return args, kwargs

    def keep_torch(module, args, output):
        maps.append(output[1].detach())

    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            ours.append((module, module.keep_attention))
            module.keep_attention = True
            handles.append(module.register_forward_hook(keep_ours))
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(ask_weights, with_kwargs=True))
            handles.append(module.register_forward_hook(keep_torch))
    if not handles:
        raise ValueError(
            f"{type(model).__name__} has no attention layer (cvkit MultiHeadAttention or nn.MultiheadAttention)"
        )
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()
        for module, keep in ours:
            module.keep_attention = keep
            module.attention = None


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Run ``model`` on ``images`` in eval mode and return every layer's attention weights.

    Args:
        model: a ViT-like model (cvkit's or torchvision's).
        images: (B, C, H, W) as the model expects them (normalised if it was trained so).

    Returns:
        One (B, h, N, N) float tensor per attention layer, on the CPU, first layer first.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with record_attention(model) as maps:
            model(images.to(device))
    finally:
        model.train(was_training)
    return [m.float().cpu() for m in maps]


def vit_token_layout(model: nn.Module) -> tuple[int, tuple[int, int], int]:
    """(number of prefix tokens, patch grid (gh, gw), patch size in pixels) of a cvkit or torchvision ViT.

    Raises:
        TypeError: a model that is neither.
    """
    from torchvision.models.vision_transformer import VisionTransformer as TVViT

    if isinstance(model, TVViT):
        side = model.image_size // model.patch_size
        return 1, (side, side), model.patch_size
    if hasattr(model, "num_prefix_tokens") and hasattr(model, "patch_embed"):
        return model.num_prefix_tokens, tuple(model.patch_embed.grid_size), model.patch_embed.patch_size
    raise TypeError(
        f"expected a cvkit VisionTransformer or a torchvision VisionTransformer, got {type(model).__name__}"
    )


def cls_attention(
    attention: torch.Tensor, grid_size: tuple[int, int], num_prefix_tokens: int = 1, token: int = 0
) -> torch.Tensor:
    """How much the class token (query ``token``) attends to each patch, laid out on the patch grid.

    Args:
        attention: (B, h, N, N) weights of one layer, or (B, N, N) (e.g. a rollout).
        grid_size: (gh, gw) with gh * gw = N - num_prefix_tokens.
        num_prefix_tokens: class (and distillation) tokens before the patches.
        token: the query row to read (0: class token; 1: DeiT's distillation token).

    Returns:
        (B, h, gh, gw) or (B, gh, gw), the weights of the patch keys (they sum to at most 1).

    Raises:
        ValueError: N does not match the grid and prefix.
    """
    gh, gw = grid_size
    n = attention.shape[-1]
    if n != num_prefix_tokens + gh * gw or attention.shape[-2] != n:
        raise ValueError(
            f"attention over {n} tokens does not fit {num_prefix_tokens} prefix tokens + a {gh}x{gw} grid; "
            "pass the model's grid_size and num_prefix_tokens (see vit_token_layout)"
        )
    row = attention[..., token, num_prefix_tokens:]  # (..., gh*gw)
    return row.reshape(*row.shape[:-1], gh, gw)


def attention_rollout(
    attentions: Sequence[torch.Tensor], head_fusion: HeadFusion = "mean", residual: float = 0.5
) -> torch.Tensor:
    r"""Attention rollout (Abnar & Zuidema 2020): how much each input token flows into each output token.

    Each layer's attention is fused over heads, mixed with the identity for the residual connection,
    :math:`\tilde A_\ell = (1 - r) A_\ell + r I` (the paper's r = 0.5), re-normalised to rows that sum
    to 1, and the layers are multiplied: :math:`\tilde A_L \cdots \tilde A_1`.

    Args:
        attentions: per layer, (B, h, N, N) weights (first layer first), as :func:`attention_maps` returns.
        head_fusion: combine heads by ``"mean"`` (the paper), ``"max"`` or ``"min"``.
        residual: r, the weight of the identity.

    Returns:
        (B, N, N) float32; row i is the share of every input token in output token i (rows sum to 1).

    Raises:
        ValueError: an empty list, mismatched shapes, an unknown fusion or r outside [0, 1].
    """
    if not attentions:
        raise ValueError("attention_rollout needs at least one layer's attention")
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {HEAD_FUSIONS}, got {head_fusion!r}")
    if not 0 <= residual <= 1:
        raise ValueError(f"residual must be in [0, 1], got {residual}")
    shape = attentions[0].shape
    if len(shape) != 4 or shape[-1] != shape[-2] or any(a.shape != shape for a in attentions):
        raise ValueError(
            f"every layer's attention must be (B, h, N, N) of the same shape, got {[tuple(a.shape) for a in attentions]}"
        )
    eye = torch.eye(shape[-1])
    result = eye.expand(shape[0], -1, -1).clone()  # (B, N, N)
    for a in attentions:
        a = a.float().cpu()
        fused = {"mean": a.mean(1), "max": a.amax(1), "min": a.amin(1)}[head_fusion]  # (B, N, N)
        mixed = (1 - residual) * fused + residual * eye
        mixed = mixed / mixed.sum(-1, keepdim=True)
        result = mixed @ result  # later layers multiply from the left
    return result


def mean_attention_distance(
    attentions: Sequence[torch.Tensor], grid_size: tuple[int, int], patch_size: int, num_prefix_tokens: int = 1
) -> torch.Tensor:
    """Mean attention distance per layer and head, in pixels (ViT, Fig. 7): the 'receptive field size' of a head.

    For every patch query, the distances from its patch centre to every patch key's centre are
    averaged with the attention weights (re-normalised over patch keys, the prefix tokens having no
    position); the result is averaged over queries and images.

    Args:
        attentions: per layer, (B, h, N, N).
        grid_size: (gh, gw) patches.
        patch_size: P, pixels per patch side.
        num_prefix_tokens: tokens before the patches.

    Returns:
        (L, h) float32 distances in pixels.

    Raises:
        ValueError: shapes that do not fit the grid.
    """
    gh, gw = grid_size
    rows = torch.arange(gh).repeat_interleave(gw).float()  # (gh*gw,)
    cols = torch.arange(gw).repeat(gh).float()
    centres = torch.stack([rows, cols], 1) * patch_size  # (gh*gw, 2) pixels (offsets: the +P/2 cancels)
    dist = torch.cdist(centres, centres)  # (gh*gw, gh*gw)
    out = []
    for a in attentions:
        if a.dim() != 4 or a.shape[-1] != num_prefix_tokens + gh * gw:
            raise ValueError(
                f"attention {tuple(a.shape)} does not fit {num_prefix_tokens} prefix tokens + a {gh}x{gw} grid"
            )
        p = a[..., num_prefix_tokens:, num_prefix_tokens:].float().cpu()  # (B, h, gh*gw, gh*gw): patch to patch
        p = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
        out.append((p * dist).sum(-1).mean(dim=(0, 2)))  # (h,)
    return torch.stack(out)  # (L, h)


def attention_inside_mask(attention: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The share of an attention map that falls on an object, and the share a uniform map would put there.

    A map that "focuses on the object" (rollout on a photo, ViT Fig. 6) puts more of its mass on the object's patches
    than their share of the image; attention spread evenly, or on the background, does not.

    Args:
        attention: (B, gh, gw) non-negative weights over the patch grid (e.g. ``cls_attention(attention_rollout(maps), ...)``).
        masks: (B, H, W) bool or float in [0, 1], the object's pixels; H, W multiples of gh, gw (each patch's share of
            object pixels is its weight).

    Returns:
        ``(inside, area)``: (B,) float32 each: the attention mass on the object (a patch counts by the fraction of its
        pixels on the object), and the object's share of the image (what uniform attention gives).

    Raises:
        ValueError: batch sizes differ, or the mask does not tile into the grid.
    """
    if attention.dim() != 3 or masks.dim() != 3 or attention.shape[0] != masks.shape[0]:
        raise ValueError(
            f"need attention (B, gh, gw) and masks (B, H, W) with the same B, got {tuple(attention.shape)} "
            f"and {tuple(masks.shape)}"
        )
    (gh, gw), (h, w) = attention.shape[1:], masks.shape[1:]
    if h % gh or w % gw:
        raise ValueError(f"a {h}x{w} mask does not tile into a {gh}x{gw} grid of patches")
    share = F.avg_pool2d(masks.float()[:, None].cpu(), (h // gh, w // gw))[
        :, 0
    ]  # (B, gh, gw): object share of each patch
    a = attention.float().cpu()
    inside = (a * share).sum((1, 2)) / a.sum((1, 2)).clamp_min(1e-12)
    return inside, share.mean((1, 2))


@torch.no_grad()
def window_attention_logits(model: nn.Module, images: torch.Tensor) -> list[dict[str, float | str]]:
    r"""How large the attention logits of every Swin block get, before position bias and mask (Swin V2, sec. 3.2).

    For a V1 :class:`cvkit.layers.window.SwinBlock` the logits are the scaled dot products :math:`qk^\top/\sqrt d` of its
    (pre-normalised) windows; for a :class:`cvkit.layers.window_v2.SwinV2Block` they are the scaled cosines
    :math:`\cos(q, k)/\tau` of its windows, whose inputs are not normalised (residual post-norm). Hooks run the same
    computation as the block; nothing in the model is changed.

    Args:
        model: a model containing Swin blocks (e.g. :class:`cvkit.models.swin.SwinTransformer`); run in eval mode,
            its mode restored.
        images: a batch the model takes.

    Returns:
        one dict per block, in forward order: ``kind`` ("dot product" or "cosine"), ``activation_rms`` (RMS of the
        block's input tokens), ``max_logit`` and ``mean_logit`` (over every window, head and pair: max and mean of
        the absolute logit).

    Raises:
        ValueError: the model has no Swin block.
    """
    from cvkit.layers.window import SwinBlock, tokens_to_grid, window_partition
    from cvkit.layers.window_v2 import SwinV2Block, dot_product_logits

    rows: list[dict[str, float | str]] = []

    def hook(block: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        if isinstance(block, SwinV2Block):
            logits, _ = block.attn.logits(block.windows(x))
            kind = "cosine"
        else:
            grid = tokens_to_grid(block.norm1(x), block.input_resolution)  # (B, H, W, D), as the block computes it
            if block.shift_size:
                grid = torch.roll(grid, shifts=(-block.shift_size, -block.shift_size), dims=(1, 2))
            logits = dot_product_logits(block.attn, window_partition(grid, block.window_size))
            kind = "dot product"
        rows.append(
            {
                "kind": kind,
                "activation_rms": float(x.pow(2).mean().sqrt()),
                "max_logit": float(logits.abs().max()),
                "mean_logit": float(logits.abs().mean()),
            }
        )

    blocks = [m for m in model.modules() if isinstance(m, (SwinBlock, SwinV2Block))]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no SwinBlock or SwinV2Block")
    handles = [b.register_forward_pre_hook(hook) for b in blocks]
    was = model.training
    model.eval()
    try:
        model(images)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return rows
