r"""Turning a captioning model's next-word distributions into a caption: greedy decoding and beam search.

Both work with any model that has the decoding interface of :mod:`cvkit.vl.captioning`
(``encode``, ``init_state``, ``step``). Greedy decoding takes the most likely word at every
step; it can commit early to a word that leads to a poor sentence. Beam search keeps the
``beam_size`` most likely partial captions (by summed log-probability) at every step and
returns the best finished one; with ``beam_size=1`` it is greedy decoding. The score of a
caption :math:`y_{1:T}` is :math:`\sum_t \log p(y_t \mid y_{<t}, I)`, optionally divided by
:math:`T^\alpha` (a length penalty: without it, shorter captions are favoured).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class Decoded:
    """Captions produced by a decoder.

    Attributes:
        tokens: (B, T) int64 generated ids (no ``<bos>``), ending with ``<eos>`` then ``<pad>``.
        scores: (B,) float, summed log-probability of each caption (including its ``<eos>``).
        attention: (B, T, L) attention weights per generated word, or ``None`` for models without them.
    """

    tokens: torch.Tensor
    scores: torch.Tensor
    attention: torch.Tensor | None = None


def _reorder(state: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Select rows of every state tensor (batch-first), e.g. to follow the surviving beams."""
    return {k: v.index_select(0, index) for k, v in state.items()}


@torch.no_grad()
def greedy_decode(
    model: nn.Module, images: torch.Tensor, max_len: int = 20, bos_id: int = 1, eos_id: int = 2, pad_id: int = 0
) -> Decoded:
    """The most likely word at every step, until ``<eos>`` or ``max_len`` words.

    Args:
        model: a captioning model with ``encode``, ``init_state`` and ``step`` (put in eval mode by the caller).
        images: (B, C, H, W) float.
        max_len: most words generated (including ``<eos>``).
        bos_id, eos_id, pad_id: special token ids (:class:`cvkit.vl.CaptionTokenizer` defaults).

    Returns:
        :class:`Decoded`.

    Raises:
        ValueError: ``max_len < 1``.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    memory = model.encode(images)
    state = model.init_state(memory)
    b = images.shape[0]
    prev = torch.full((b,), bos_id, dtype=torch.long, device=memory.device)
    done = torch.zeros(b, dtype=torch.bool, device=memory.device)
    scores = torch.zeros(b, device=memory.device)
    tokens, attention = [], []
    for _ in range(max_len):
        logp, state, alpha = model.step(prev, state, memory)  # (B, V)
        best, word = logp.max(dim=1)
        word = torch.where(done, torch.full_like(word, pad_id), word)
        scores = scores + torch.where(done, torch.zeros_like(best), best)
        tokens.append(word)
        if alpha is not None:
            attention.append(alpha)
        done = done | (word == eos_id)
        prev = word
        if bool(done.all()):
            break
    att = torch.stack(attention, dim=1) if attention else None
    return Decoded(torch.stack(tokens, dim=1), scores, att)


@torch.no_grad()
def beam_search(
    model: nn.Module,
    images: torch.Tensor,
    beam_size: int = 3,
    max_len: int = 20,
    length_penalty: float = 0.0,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = 0,
) -> Decoded:
    r"""Beam search: keep the ``beam_size`` best partial captions per image; return the best finished one.

    At every step each live beam is extended by every word; the ``beam_size`` highest summed
    log-probabilities among all extensions survive. A beam that has produced ``<eos>`` is
    finished: it keeps its score and is only extended by ``<pad>``. At the end, captions are
    ranked by ``score / length ** length_penalty``.

    Args:
        model: a captioning model with ``encode``, ``init_state`` and ``step`` (eval mode).
        images: (B, C, H, W) float.
        beam_size: K >= 1 (1 is greedy decoding).
        max_len: most words generated (including ``<eos>``).
        length_penalty: :math:`\alpha` >= 0 (0: rank by the summed log-probability).
        bos_id, eos_id, pad_id: special token ids.

    Returns:
        :class:`Decoded` with the best caption per image (``scores``: its summed log-probability).

    Raises:
        ValueError: ``beam_size < 1``, ``max_len < 1`` or a negative ``length_penalty``.
    """
    if beam_size < 1 or max_len < 1 or length_penalty < 0:
        raise ValueError(
            f"need beam_size >= 1, max_len >= 1, length_penalty >= 0; got {beam_size}, {max_len}, {length_penalty}"
        )
    k = beam_size
    memory = model.encode(images)  # (B, L, D)
    b, dev = memory.shape[0], memory.device
    memory = memory.repeat_interleave(k, dim=0)  # (B*K, L, D): beam j of image i at row i*K + j
    state = model.init_state(memory)
    prev = torch.full((b * k,), bos_id, dtype=torch.long, device=dev)
    scores = torch.full((b, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished = torch.zeros(b, k, dtype=torch.bool, device=dev)
    lengths = torch.zeros(b, k, device=dev)
    seqs = torch.zeros(b, k, 0, dtype=torch.long, device=dev)
    atts = None
    offsets = (torch.arange(b, device=dev) * k)[:, None]  # (B, 1) first row of each image
    for _ in range(max_len):
        logp, state, alpha = model.step(prev, state, memory)  # (B*K, V)
        v = logp.shape[-1]
        logp = logp.view(b, k, v).float()
        # a finished beam may only continue with <pad>, at no cost
        pad_only = torch.full_like(logp, float("-inf"))
        pad_only[..., pad_id] = 0.0
        logp = torch.where(finished[..., None], pad_only, logp)
        cand = (scores[..., None] + logp).view(b, k * v)  # (B, K*V)
        scores, idx = cand.topk(k, dim=1)  # (B, K)
        beam, word = idx // v, idx % v  # which beam each survivor extends, with which word
        rows = (offsets + beam).view(-1)  # (B*K,) rows to keep
        state = _reorder(state, rows)
        seqs = torch.cat([seqs.gather(1, beam[..., None].expand(-1, -1, seqs.shape[2])), word[..., None]], dim=2)
        was_finished = finished.gather(1, beam)
        lengths = lengths.gather(1, beam) + (~was_finished).float()
        finished = was_finished | (word == eos_id)
        if alpha is not None:
            a = alpha.view(b, k, 1, -1)  # (B, K, 1, L): each parent beam's attention for this word
            history = a if atts is None else torch.cat([atts, a], dim=2)  # (B, K, t, L), indexed by parent beam
            atts = history.gather(1, beam[..., None, None].expand(-1, -1, *history.shape[2:]))  # follow the survivors
        prev = word.view(-1)
        if bool(finished.all()):
            break
    ranked = scores / lengths.clamp_min(1) ** length_penalty if length_penalty > 0 else scores
    best = ranked.argmax(dim=1)  # (B,)
    pick = torch.arange(b, device=dev)
    att = atts[pick, best] if atts is not None else None
    return Decoded(seqs[pick, best], scores[pick, best], att)
