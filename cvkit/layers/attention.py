r"""Attention: scaled dot-product attention written out, and multi-head attention built on it.

Vaswani et al. 2017, "Attention Is All You Need", eq. (1):

.. math::  \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V

and section 3.2.2 (multi-head attention): project the inputs ``h`` times with different
learned matrices, attend in each head, concatenate, project back:

.. math::  \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O,
           \quad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

Tokens are (B, N, D) everywhere. The same module does self-attention (``attn(x)``), cross-attention
(``attn(x, context)``) and the SAM-style case where keys and values differ (``attn(q, k, v)``).
Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a boolean ``attn_mask`` is True
where a query **may** attend; a float ``attn_mask`` is added to the logits. ``key_padding_mask`` follows
``nn.MultiheadAttention``: True marks a **padded** key that nobody attends to.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    training: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Scaled dot-product attention, written out: softmax(Q K^T / sqrt(d) + mask) V (Vaswani et al. 2017, eq. 1).

    The same result as ``torch.nn.functional.scaled_dot_product_attention`` (which fuses it
    into one kernel), but it also returns the attention weights, which the visualizers draw.

    Args:
        query: (..., Nq, d) float.
        key: (..., Nk, d) float, same leading dimensions as ``query`` (or broadcastable).
        value: (..., Nk, dv) float.
        attn_mask: optional, broadcastable to (..., Nq, Nk). Bool: True where query i may attend to
            key j. Float: added to the logits (e.g. a relative position bias, or -inf to forbid).
        dropout_p: probability of dropping an attention weight (only when ``training``).
        is_causal: forbid attending to later positions (query i sees keys j <= i); needs Nq == Nk
            semantics as in the decoder of a captioner. Combined with ``attn_mask`` when both are given.
        scale: multiplier of the logits; default 1 / sqrt(d).
        training: apply dropout (pass ``module.training``).

    Returns:
        (output, weights): output (..., Nq, dv) in the dtype of ``value``; weights (..., Nq, Nk),
        each row sums to 1 (a query whose every key is masked gets a row of zeros and a zero output,
        as in torch's function).

    Raises:
        ValueError: the last dimensions of ``query`` and ``key`` differ, ``key`` and ``value`` have
            different lengths, or ``attn_mask`` is neither bool nor floating.
    """
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key need the same feature size d, got {query.shape[-1]} and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value need the same length Nk, got {key.shape[-2]} and {value.shape[-2]}")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    logits = (query @ key.transpose(-2, -1)) * scale  # (..., Nq, Nk)
    nq, nk = logits.shape[-2:]
    if is_causal:
        causal = torch.ones(
            nq, nk, dtype=torch.bool, device=logits.device
        ).tril()  # (Nq, Nk), True on and below the diagonal
        attn_mask = causal if attn_mask is None else _combine(attn_mask, causal)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            logits = logits.masked_fill(~attn_mask, float("-inf"))
        elif attn_mask.is_floating_point():
            logits = logits + attn_mask
        else:
            raise ValueError(
                f"attn_mask must be bool (True = may attend) or floating (added to logits), got {attn_mask.dtype}"
            )
    weights = torch.softmax(logits, dim=-1)  # (..., Nq, Nk)
    if attn_mask is not None:
        # a query with every key masked: softmax of all -inf is NaN; torch returns zeros there, so do we
        empty = torch.isneginf(logits).all(dim=-1, keepdim=True)
        weights = weights.masked_fill(empty, 0.0)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights.to(value.dtype) @ value, weights  # (..., Nq, dv), (..., Nq, Nk)


def _combine(attn_mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Combine a user mask (bool or additive float) with a boolean 'allowed' mask."""
    if attn_mask.dtype == torch.bool:
        return attn_mask & allowed
    return attn_mask.masked_fill(~allowed, float("-inf"))


def padding_to_attn_mask(key_padding_mask: torch.Tensor) -> torch.Tensor:
    """Turn a (B, Nk) key padding mask (True = padded) into a boolean attention mask (B, 1, 1, Nk), True = may attend.

    Raises:
        ValueError: not a 2-D bool tensor.
    """
    if key_padding_mask.dim() != 2 or key_padding_mask.dtype != torch.bool:
        raise ValueError(
            f"key_padding_mask must be (B, Nk) bool with True at padded keys, got {tuple(key_padding_mask.shape)} "
            f"{key_padding_mask.dtype}"
        )
    return ~key_padding_mask[:, None, None, :]  # (B, 1, 1, Nk): broadcasts over heads and queries


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention (Vaswani et al. 2017, section 3.2.2) on (B, N, D) tokens.

    ``attn(x)`` is self-attention, ``attn(x, context)`` cross-attention (queries from ``x``, keys
    and values from ``context``), ``attn(q, k, v)`` the general form (keys and values differ, as in
    SAM's decoder where position encodings are added to keys but not to values).

    Args:
        dim: D, the width of the queries and of the output.
        num_heads: h; ``inner_dim`` must be divisible by it (head size d = inner_dim / h).
        qkv_bias: biases in the q, k, v projections (ViT and Swin use them).
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.
        kv_dim: width of keys/values when they come from another sequence (default ``dim``).
        inner_dim: width inside the attention (default ``dim``; SAM's decoder uses ``dim // 2``).
        fused: use ``F.scaled_dot_product_attention`` (one fast kernel) when the weights are not
            needed; the written-out :func:`scaled_dot_product_attention` gives the same output.

    Attributes:
        keep_attention: when True, every forward stores its weights (B, h, Nq, Nk) in
            ``self.attention`` (detached); :func:`cvkit.inspect.record_attention` switches this on.

    Shapes:
        query (B, Nq, D), key (B, Nk, kv_dim), value (B, Nk, kv_dim) -> output (B, Nq, D);
        with ``return_attention=True`` also the weights (B, h, Nq, Nk).

    The parameters are laid out like ``nn.MultiheadAttention``'s (``q_proj``, ``k_proj``, ``v_proj``
    hold the three row blocks of its ``in_proj_weight``; ``out_proj`` is the same), so weights copy
    across with :meth:`load_from_torch`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        kv_dim: int | None = None,
        inner_dim: int | None = None,
        fused: bool = True,
    ) -> None:
        super().__init__()
        inner_dim = dim if inner_dim is None else inner_dim
        kv_dim = dim if kv_dim is None else kv_dim
        if num_heads < 1 or inner_dim % num_heads != 0:
            raise ValueError(
                f"inner_dim ({inner_dim}) must be divisible by num_heads ({num_heads}); pick e.g. num_heads={_divisor(inner_dim)}"
            )
        self.dim, self.num_heads, self.head_dim = dim, num_heads, inner_dim // num_heads
        self.attn_drop, self.fused = attn_drop, fused
        self.q_proj = nn.Linear(dim, inner_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(kv_dim, inner_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(kv_dim, inner_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(inner_dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        *,
        attn_mask: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        return_attention: bool = False,
    ):
        """Attend from ``query`` to ``key`` (default: ``query``) and read ``value`` (default: ``key``).

        Args:
            query: (B, Nq, D).
            key: (B, Nk, kv_dim) or None (self-attention).
            value: (B, Nk, kv_dim) or None (``value = key``).
            attn_mask: bool (True = may attend) or float (added), broadcastable to (B, h, Nq, Nk);
                a (Nq, Nk) mask applies to every image and head.
            key_padding_mask: (B, Nk) bool, True at padded keys.
            is_causal: query i attends only to keys j <= i (a decoder's self-attention).
            return_attention: also return the weights (B, h, Nq, Nk).

        Raises:
            ValueError: inputs that are not (B, N, width) with matching batch sizes and widths.
        """
        key = query if key is None else key
        value = key if value is None else value
        self._check(query, key, value)
        b, nq, _ = query.shape
        nk = key.shape[1]
        h, d = self.num_heads, self.head_dim
        q = self.q_proj(query).view(b, nq, h, d).transpose(1, 2)  # (B, h, Nq, d)
        k = self.k_proj(key).view(b, nk, h, d).transpose(1, 2)  # (B, h, Nk, d)
        v = self.v_proj(value).view(b, nk, h, d).transpose(1, 2)  # (B, h, Nk, d)

        mask = attn_mask
        if key_padding_mask is not None:
            if key_padding_mask.shape != (b, nk):
                raise ValueError(f"key_padding_mask must be (B, Nk) = ({b}, {nk}), got {tuple(key_padding_mask.shape)}")
            keep = padding_to_attn_mask(key_padding_mask)  # (B, 1, 1, Nk)
            mask = keep if mask is None else _combine(mask, keep)
        if mask is not None and mask.is_floating_point():
            mask = mask.to(q.dtype)  # under autocast q is half precision; the fused kernel wants matching dtypes
        drop = self.attn_drop if self.training else 0.0
        need_weights = return_attention or self.keep_attention
        if self.fused and not need_weights:
            if is_causal and mask is not None:  # torch's kernel refuses both at once: fold the causal part in
                mask = _combine(mask, torch.ones(nq, nk, dtype=torch.bool, device=q.device).tril())
                is_causal = False
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal)
            weights = None
        else:
            out, weights = scaled_dot_product_attention(
                q, k, v, mask, dropout_p=drop, is_causal=is_causal, training=self.training
            )
            if self.keep_attention:
                self.attention = weights.detach()
        out = out.transpose(1, 2).reshape(b, nq, h * d)  # (B, Nq, h*d): concatenate the heads
        out = self.proj_drop(self.out_proj(out))  # (B, Nq, D)
        return (out, weights) if return_attention else out

    def _check(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
        for name, t, width in (
            ("query", query, self.q_proj.in_features),
            ("key", key, self.k_proj.in_features),
            ("value", value, self.v_proj.in_features),
        ):
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != width:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(
                    f"{name} must be (B, N, {width}) tokens, got {shape}; images go through a patch embedding first"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                f"query, key and value need the same batch size, got {query.shape[0]}, {key.shape[0]}, {value.shape[0]}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value need the same length, got {key.shape[1]} and {value.shape[1]}")

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of an ``nn.MultiheadAttention`` (``batch_first`` or not) into this module.

        Everything is checked before anything is copied, so a refused load leaves this module as it was.

        Raises:
            ValueError: the two modules have different sizes, head counts, or biases (q/k/v or output).
        """
        if mha.embed_dim != self.q_proj.out_features or mha.num_heads != self.num_heads:
            raise ValueError(
                f"size mismatch: nn.MultiheadAttention(embed_dim={mha.embed_dim}, num_heads={mha.num_heads}) vs "
                f"this module's inner_dim={self.q_proj.out_features}, num_heads={self.num_heads}"
            )
        if mha.in_proj_weight is not None:
            wq, wk, wv = mha.in_proj_weight.chunk(3)
        else:
            wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
        pairs = ((self.q_proj, wq), (self.k_proj, wk), (self.v_proj, wv))
        for name, (proj, w) in zip("qkv", pairs):
            if proj.weight.shape != w.shape:
                raise ValueError(
                    f"{name} projection: this module's weight is {tuple(proj.weight.shape)}, the source's "
                    f"{tuple(w.shape)}; build this one with kv_dim=mha.kdim"
                )
        if (mha.in_proj_bias is not None) != (self.q_proj.bias is not None):
            raise ValueError(
                "one module has q/k/v biases and the other not; build this one with qkv_bias=(mha.in_proj_bias is not None)"
            )
        if (mha.out_proj.bias is not None) != (
            self.out_proj.bias is not None
        ) or mha.out_proj.weight.shape != self.out_proj.weight.shape:
            raise ValueError("the output projections differ in shape or bias")
        for proj, w in pairs:
            proj.weight.copy_(w)
        if mha.in_proj_bias is not None:
            for proj, bias in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_bias.chunk(3)):
                proj.bias.copy_(bias)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        return self

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}, fused={self.fused}"


def _divisor(n: int) -> int:
    """The largest of 8, 6, 4, 3, 2, 1 dividing n (for error messages)."""
    return next(h for h in (8, 6, 4, 3, 2, 1) if n % h == 0)
