r"""Image captioning: a CNN encoder and two decoders, as the lecture builds them up.

1. **Encoder-decoder** (the lecture's first idea): the image is squeezed into one context
   vector c (the mean of the CNN's spatial features) that starts the LSTM and is fed at every
   step: :math:`y_t = g(y_{t-1}, h_{t-1}, c)`. The whole image passes through that bottleneck.
2. **Show, Attend and Tell** (Xu et al., ICML 2015): at every word the decoder *attends* over
   the L = h x w region features :math:`a_i` of the CNN with soft (additive) attention,

   .. math::  e_{ti} = w^\top \tanh(W_a a_i + W_h h_{t-1}), \quad
              \alpha_{ti} = \mathrm{softmax}_i(e_{ti}), \quad
              z_t = \beta_t \sum_i \alpha_{ti} a_i, \quad \beta_t = \sigma(f_\beta(h_{t-1}))

   (eqs. 4-6 and the gating scalar of sec. 4.2.1), the LSTM reads :math:`[E y_{t-1}; z_t]`,
   and the word comes from the deep output layer :math:`L_o(E y_{t-1} + L_h h_t + L_z z_t)` (eq. 7).
   The weights :math:`\alpha_{t}` are the per-word attention maps drawn over the image.
3. **Transformer captioning**: the CNN's region features (optionally refined by self-attention,
   the lecture's "CNN with self-attention") are the memory of a transformer decoder whose
   masked self-attention reads the words so far and whose cross-attention reads the image.

All three share one decoding interface, used by :mod:`cvkit.vl.decoding` for greedy and beam search:
``encode(images) -> memory (B, L, D)``, ``init_state(memory) -> dict``,
``step(prev_tokens (B,), state, memory) -> (log_probs (B, V), state, attention (B, L) or None)``;
``forward(images, tokens)`` is the teacher-forced pass used in training.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.layers.transformer import TransformerBlock
from cvkit.train import StepOutput
from cvkit.vl._checks import check_images, check_token_ids

State = dict[str, torch.Tensor]


class ShowAttendTell(nn.Module):
    """CNN encoder + LSTM decoder, with soft attention (Xu et al. 2015) or with a single context vector.

    Args:
        vocab_size: V.
        in_channels: image channels.
        widths: ConvEncoder stage widths; the region grid is the image side / 2^len(widths).
        embed_dim: word embedding width (E).
        hidden_dim: LSTM width.
        attention_dim: width of the additive attention's hidden layer.
        attention: True for Show, Attend and Tell; False for the plain encoder-decoder (context c = mean feature).
        dropout: before the output layer.

    Shapes:
        ``forward(images (B, C, H, W), tokens (B, T) int64)`` -> ``(logits (B, T, V), attention (B, T, L) or None)``,
        where ``tokens`` are the decoder inputs (``<bos> w1 ... w_{T-1}``) and logits predict ``w1 ... w_T``.

    Raises:
        ValueError: images or tokens of the wrong shape or dtype.
    """

    def __init__(
        self,
        vocab_size: int,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        embed_dim: int = 64,
        hidden_dim: int = 128,
        attention_dim: int = 64,
        attention: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.use_attention = attention
        self.encoder = ConvEncoder(in_channels, widths)
        d = self.encoder.feature_dim
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.init_h = nn.Linear(d, hidden_dim)  # f_init,h (eq. 5): h0 from the mean annotation
        self.init_c = nn.Linear(d, hidden_dim)
        if attention:
            self.att_features = nn.Linear(d, attention_dim)  # W_a a_i
            self.att_hidden = nn.Linear(hidden_dim, attention_dim)  # W_h h_{t-1}
            self.att_score = nn.Linear(attention_dim, 1)  # w^T tanh(.)
            self.gate = nn.Linear(hidden_dim, 1)  # f_beta
        self.lstm = nn.LSTMCell(embed_dim + d, hidden_dim)
        self.out_hidden = nn.Linear(hidden_dim, embed_dim)  # L_h
        self.out_context = nn.Linear(d, embed_dim)  # L_z
        self.out = nn.Linear(embed_dim, vocab_size)  # L_o
        self.dropout = nn.Dropout(dropout)

    # -- the decoding interface -------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Region features, (B, L, D) with L = h * w in row-major order."""
        check_images(images)
        fmap = self.encoder.forward_map(images)  # (B, D, h, w)
        return fmap.flatten(2).transpose(1, 2)  # (B, L, D)

    def init_state(self, memory: torch.Tensor) -> State:
        """h0, c0 from the mean region feature (eq. 5), plus the attention keys W_a a_i computed once."""
        mean = memory.mean(dim=1)  # (B, D): the context vector c
        state = {"h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean)), "context": mean}
        if self.use_attention:
            state["keys"] = self.att_features(memory)  # (B, L, A)
        return state

    def attend(self, memory: torch.Tensor, keys: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft attention: (context z_t (B, D), weights alpha_t (B, L)) for hidden state h (B, hidden)."""
        e = self.att_score(torch.tanh(keys + self.att_hidden(h)[:, None])).squeeze(-1)  # (B, L) scores e_ti
        alpha = e.softmax(dim=1)
        z = torch.bmm(alpha[:, None], memory).squeeze(1)  # (B, D) = sum_i alpha_i a_i
        return torch.sigmoid(self.gate(h)) * z, alpha

    def step(
        self, prev_tokens: torch.Tensor, state: State, memory: torch.Tensor
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """One word: (log-probabilities (B, V), new state, attention (B, L) or None)."""
        emb = self.embed(prev_tokens)  # (B, E)
        if self.use_attention:
            z, alpha = self.attend(memory, state["keys"], state["h"])
        else:
            z, alpha = state["context"], None  # the bottleneck: the same c at every step
        h, c = self.lstm(torch.cat([emb, z], dim=1), (state["h"], state["c"]))
        logits = self.out(self.dropout(emb + self.out_hidden(h) + self.out_context(z)))  # deep output (eq. 7)
        return logits.log_softmax(dim=-1), {**state, "h": h, "c": c}, alpha

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        memory = self.encode(images)
        check_token_ids(tokens, self.vocab_size, images.shape[0])
        state = self.init_state(memory)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):  # teacher forcing: feed the true previous word
            logp, state, alpha = self.step(tokens[:, t], state, memory)
            logits.append(logp)
            if alpha is not None:
                alphas.append(alpha)
        attention = torch.stack(alphas, dim=1) if alphas else None  # (B, T, L)
        return torch.stack(logits, dim=1), attention  # (B, T, V) log-probabilities

    def extra_repr(self) -> str:
        return f"attention={self.use_attention}, vocab_size={self.vocab_size}"


class TransformerCaptioner(nn.Module):
    """CNN region features (+ optional self-attention encoder) as memory of a transformer decoder.

    Args:
        vocab_size: V.
        in_channels, widths: of the ConvEncoder.
        dim: token width of the transformer (divisible by ``heads``).
        heads: attention heads.
        encoder_layers: self-attention blocks over the image regions (0: CNN features only).
        decoder_layers: decoder blocks (masked self-attention over the words, cross-attention to the regions, MLP).
        max_len: longest token sequence (learned position embeddings).
        dropout: inside the transformer blocks (after attention and in the MLP).
        image_size: side of the input images in pixels (fixes the number of region position embeddings).

    Shapes:
        ``forward(images (B, C, H, W), tokens (B, T) int64)`` -> ``(log-probabilities (B, T, V), None)``;
        :meth:`step` also returns the last layer's cross-attention of the new word, (B, L).

    Raises:
        ValueError: images or tokens of the wrong shape, or T > ``max_len``.
    """

    def __init__(
        self,
        vocab_size: int,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        dim: int = 64,
        heads: int = 4,
        encoder_layers: int = 1,
        decoder_layers: int = 2,
        max_len: int = 24,
        dropout: float = 0.1,
        image_size: int = 48,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.encoder = ConvEncoder(in_channels, widths)
        grid = -(-image_size // self.encoder.stride)
        self.project = nn.Linear(self.encoder.feature_dim, dim)
        self.region_pos = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)  # learned, one per region
        self.context = nn.ModuleList([TransformerBlock(dim, heads, 4.0, drop=dropout) for _ in range(encoder_layers)])
        self.embed = nn.Embedding(vocab_size, dim)
        self.word_pos = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        self.decoder = nn.ModuleList(
            [TransformerBlock(dim, heads, 4.0, drop=dropout, cross_attention=True) for _ in range(decoder_layers)]
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.out = nn.Linear(dim, vocab_size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Memory for the decoder: (B, L, dim) region tokens with position embeddings."""
        check_images(images)
        regions = self.encoder.forward_map(images).flatten(2).transpose(1, 2)  # (B, L, D)
        if regions.shape[1] != self.region_pos.shape[1]:
            raise ValueError(
                f"images give {regions.shape[1]} regions, the model was built for {self.region_pos.shape[1]}; set image_size"
            )
        x = self.project(regions) + self.region_pos  # (B, L, dim)
        for block in self.context:  # self-attention among the regions
            x = block(x)
        return x

    def decode(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Log-probabilities (B, T, V) of the next word at every position, with a causal mask."""
        t = tokens.shape[1]
        if t > self.max_len:
            raise ValueError(
                f"sequences longer than max_len={self.max_len} (got {t}); build the model with a larger max_len"
            )
        x = self.embed(tokens) + self.word_pos[:, :t]  # (B, T, dim)
        for block in self.decoder:  # masked self-attention over the words, cross-attention to the regions
            x = block(x, memory, is_causal=True)
        return self.out(self.norm(x)).log_softmax(dim=-1)

    def init_state(self, memory: torch.Tensor) -> State:
        """The words generated so far (none yet)."""
        return {"tokens": torch.zeros(memory.shape[0], 0, dtype=torch.long, device=memory.device)}

    def step(
        self, prev_tokens: torch.Tensor, state: State, memory: torch.Tensor
    ) -> tuple[torch.Tensor, State, torch.Tensor]:
        """Append ``prev_tokens`` and rerun the decoder on the prefix (short captions: no key-value cache).

        The attention returned for the new word is the last decoder layer's cross-attention, averaged over heads, (B, L).
        """
        tokens = torch.cat([state["tokens"], prev_tokens[:, None]], dim=1)  # (B, t)
        cross = self.decoder[-1].cross_attn
        cross.keep_attention = True  # record the weights (B, h, t, L) during this pass
        try:
            log_probs = self.decode(tokens, memory)[:, -1]
        finally:
            cross.keep_attention = False
        return log_probs, {"tokens": tokens}, cross.attention[:, :, -1].mean(dim=1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, None]:
        memory = self.encode(images)
        check_token_ids(tokens, self.vocab_size, images.shape[0])
        return self.decode(tokens, memory), None


def caption_loss(
    log_probs: torch.Tensor,
    targets: torch.Tensor,
    pad_id: int = 0,
    attention: torch.Tensor | None = None,
    attention_weight: float = 0.0,
) -> torch.Tensor:
    r"""Mean negative log-likelihood of the target words, padding ignored, plus Show-Attend-Tell's attention regulariser.

    The "doubly stochastic" term (Xu et al. 2015, eq. 14) :math:`\lambda \frac{1}{L}\sum_i (1 - \sum_t \alpha_{ti})^2`
    asks every region to receive, summed over the words, about one unit of attention.

    Args:
        log_probs: (B, T, V) log-probabilities.
        targets: (B, T) int64 next words (``pad_id`` where the caption has ended).
        pad_id: ignored target id.
        attention: (B, T, L) weights, or None.
        attention_weight: :math:`\lambda` (0 disables the term).

    Returns:
        scalar float tensor.
    """
    if log_probs.shape[:2] != targets.shape:
        raise ValueError(
            f"log_probs (B, T, V) and targets (B, T) disagree: {tuple(log_probs.shape)} vs {tuple(targets.shape)}"
        )
    loss = F.nll_loss(log_probs.flatten(0, 1).float(), targets.flatten(), ignore_index=pad_id)
    if attention is not None and attention_weight > 0:
        valid = (targets != pad_id).to(attention.dtype)[..., None]  # (B, T, 1)
        loss = loss + attention_weight * (1 - (attention * valid).sum(dim=1)).pow(2).mean()
    return loss


def caption_step(attention_weight: float = 0.0, pad_id: int = 0):
    """A :func:`cvkit.train.fit` step for ``(images (B, C, H, W), tokens (B, T))`` batches: teacher forcing on ``tokens[:, :-1]``.

    ``correct`` counts captions whose every word is predicted right (teacher-forced), so ``fit`` reports it as accuracy.
    """

    def step(model: nn.Module, batch) -> StepOutput:
        images, tokens = batch[0], batch[1]
        log_probs, attention = model(images, tokens[:, :-1])
        targets = tokens[:, 1:]
        loss = caption_loss(log_probs, targets, pad_id, attention, attention_weight)
        right = (log_probs.argmax(-1) == targets) | (targets == pad_id)  # (B, T-1)
        return StepOutput(loss, images.shape[0], right.all(dim=1).sum())

    return step
