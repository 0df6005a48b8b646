"""Words to token ids and back, for captions of the synthetic shapes (or any closed vocabulary).

A caption becomes ``<bos> w1 w2 ... <eos>`` followed by ``<pad>`` up to a common length::

    tok = CaptionTokenizer()                       # the shapes vocabulary, cvkit.data.CAPTION_VOCAB
    ids = tok.encode(["a red circle left of a blue square"])   # (1, T) int64
    tok.decode(ids)                                # ['a red circle left of a blue square']

Words are separated by spaces (the shapes captions write the comma as its own word, " , ").
Unknown words map to ``<unk>``: a prompt such as "a photo of a red circle" is still encoded,
and what the model makes of ``<unk>`` is part of the prompt-sensitivity lesson of CLIP.
"""

from __future__ import annotations

from typing import Sequence

import torch

from cvkit.data.shapes import CAPTION_VOCAB

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


class CaptionTokenizer:
    """A whitespace tokenizer over a fixed vocabulary whose first four words are ``<pad> <bos> <eos> <unk>``.

    Args:
        vocab: the words, specials first (default: :data:`cvkit.data.CAPTION_VOCAB`).

    Attributes:
        pad_id, bos_id, eos_id, unk_id: 0, 1, 2, 3. ``len(tokenizer)``: V, the vocabulary size.

    Raises:
        ValueError: a vocabulary that does not start with the four specials, or repeats a word.
    """

    def __init__(self, vocab: Sequence[str] = CAPTION_VOCAB) -> None:
        vocab = tuple(vocab)
        if vocab[: len(SPECIALS)] != SPECIALS:
            raise ValueError(f"the vocabulary must start with {SPECIALS}, got {vocab[:4]}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary repeats a word")
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, text: str) -> list[str]:
        """Lower-cased words of ``text``, split on whitespace."""
        return text.lower().split()

    def encode(self, texts: Sequence[str] | str, max_len: int | None = None) -> torch.Tensor:
        """Token ids with ``<bos>`` and ``<eos>``, right-padded with ``<pad>``.

        Args:
            texts: one string or a sequence of B strings.
            max_len: T, the padded length (default: the longest caption + 2); longer captions
                are cut and keep their final ``<eos>``.

        Returns:
            (B, T) int64.

        Raises:
            TypeError: ``texts`` is not a string or a sequence of strings.
            ValueError: ``max_len`` below 2.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a string or a sequence of strings")
        seqs = [[self.bos_id] + [self.index.get(w, self.unk_id) for w in self.words(t)] + [self.eos_id] for t in texts]
        length = max_len if max_len is not None else max((len(s) for s in seqs), default=2)
        if length < 2:
            raise ValueError(f"max_len must be at least 2 (<bos> and <eos>), got {length}")
        out = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            if len(s) > length:
                s = s[: length - 1] + [self.eos_id]
            out[i, : len(s)] = torch.tensor(s)
        return out

    def decode(self, ids: torch.Tensor | Sequence[int] | Sequence[Sequence[int]]) -> list[str]:
        """Strings from token ids: stops at ``<eos>``, drops ``<bos>`` and ``<pad>``.

        Args:
            ids: (B, T) or (T,) integer tensor, or nested lists.

        Returns:
            B strings (one for a 1-D input).
        """
        t = torch.as_tensor(ids)
        if t.dim() == 1:
            t = t[None]
        out = []
        for row in t.tolist():
            words = []
            for i in row:
                if i == self.eos_id:
                    break
                if i in (self.bos_id, self.pad_id):
                    continue
                words.append(self.vocab[i] if 0 <= i < len(self.vocab) else "<unk>")
            out.append(" ".join(words))
        return out

    def __repr__(self) -> str:
        return f"CaptionTokenizer({len(self)} words)"
