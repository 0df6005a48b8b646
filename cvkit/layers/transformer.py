r"""The pre-norm transformer block: the encoder layer of ViT, and with cross-attention a decoder layer.

ViT (Dosovitskiy et al. 2021), eqs. (2)-(3), with LN before each sublayer ("pre-norm"):

.. math::
    \mathbf{z}'_\ell = \mathrm{MSA}(\mathrm{LN}(\mathbf{z}_{\ell-1})) + \mathbf{z}_{\ell-1}, \qquad
    \mathbf{z}_\ell = \mathrm{MLP}(\mathrm{LN}(\mathbf{z}'_\ell)) + \mathbf{z}'_\ell

A decoder (captioning, DETR, SAM) adds a cross-attention sublayer between the two,
:math:`\mathbf{z} \mathrel{+}= \mathrm{MHA}(\mathrm{LN}(\mathbf{z}), \text{context})`. Stochastic depth
(Huang et al. 2016; used by DeiT and Swin) drops a whole residual branch per sample during training.
"""

from __future__ import annotations


import torch
import torch.nn as nn
from torchvision.ops import StochasticDepth

from cvkit.layers.activations import ActivationName, make_activation
from cvkit.layers.attention import MultiHeadAttention


class FeedForward(nn.Module):
    """The position-wise feed-forward network (Vaswani et al. 2017, eq. 2; ViT's "MLP"): Linear(D, hidden), activation, dropout, Linear(hidden, D), dropout.

    Args:
        dim: D (input and output width).
        hidden_dim: width of the hidden layer (ViT: 4 D).
        activation: any name :func:`cvkit.layers.make_activation` knows; ``"gelu"`` (ViT, exact erf form) or
            ``"relu"`` (the original transformer).
        drop: dropout probability after each linear layer's activation and at the output.

    Shapes:
        (..., D) -> (..., D); applied to every token independently.
    """

    def __init__(self, dim: int, hidden_dim: int, activation: ActivationName = "gelu", drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = make_activation(activation)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP; each with a residual.

    Args:
        dim: D, the token width.
        num_heads: attention heads (D divisible by it).
        mlp_ratio: hidden width of the MLP as a multiple of D (4 in ViT).
        qkv_bias: biases in the q/k/v projections.
        drop: dropout after the attention output projection and inside the MLP.
        attn_drop: dropout on attention weights.
        drop_path: stochastic-depth probability of skipping each residual branch (per sample).
        cross_attention: add a cross-attention sublayer (queries: the tokens; keys/values: ``context``).
        context_dim: width of ``context`` (default D).
        activation: MLP activation.
        norm_eps: LayerNorm epsilon (1e-6 in ViT/DeiT, 1e-5 in Swin and PyTorch's layers).

    Shapes:
        x (B, N, D), context (B, M, context_dim) -> (B, N, D).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        *,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        cross_attention: bool = False,
        context_dim: int | None = None,
        activation: ActivationName = "gelu",
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        if cross_attention:
            self.norm_cross = nn.LayerNorm(dim, eps=norm_eps)
            self.cross_attn = MultiHeadAttention(
                dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop, kv_dim=context_dim
            )
        else:
            self.norm_cross = self.cross_attn = None
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), activation, drop)
        self.drop_path = StochasticDepth(drop_path, mode="row")

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        context_key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Apply the block.

        Args:
            x: (B, N, D) tokens.
            context: (B, M, context_dim), required with ``cross_attention=True``, refused without.
            attn_mask, key_padding_mask, is_causal: for the self-attention (see :class:`MultiHeadAttention`).
            context_key_padding_mask: (B, M) bool, True at padded context tokens.

        Raises:
            ValueError: ``context`` missing for a cross-attention block, or given to one without.
        """
        x = x + self.drop_path(
            self.attn(self.norm1(x), attn_mask=attn_mask, key_padding_mask=key_padding_mask, is_causal=is_causal)
        )
        if self.cross_attn is not None:
            if context is None:
                raise ValueError("this block has cross-attention: pass context=(B, M, context_dim) tokens")
            x = x + self.drop_path(
                self.cross_attn(self.norm_cross(x), context, key_padding_mask=context_key_padding_mask)
            )
        elif context is not None:
            raise ValueError("context given to a block without cross-attention; build it with cross_attention=True")
        return x + self.drop_path(self.mlp(self.norm2(x)))
