"""Registry entries of the vision-language models (lecture 10): the captioners and the small CLIP.

The classes live in :mod:`cvkit.vl`; this module only names them. They take token ids as well
as images, so each entry gives ``example_inputs`` (random images and a caption batch).
"""

from __future__ import annotations

from typing import Sequence

import torch

from cvkit.models.registry import register_model
from cvkit.vl.captioning import ShowAttendTell, TransformerCaptioner
from cvkit.vl.clip import CLIP
from cvkit.vl.tokenizer import CaptionTokenizer
from cvkit.vl.vqa import ANSWERS, QUESTION_VOCAB, VQANet

_TOKENIZER = CaptionTokenizer()
VOCAB_SIZE = len(_TOKENIZER)


def _caption_inputs(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    captions = ["a red circle left of a blue square", "a green triangle , a yellow circle and a red square"]
    tokens = _TOKENIZER.encode([captions[i % 2] for i in range(batch_size)])
    return torch.rand(batch_size, 3, 48, 48, generator=g), tokens


def _decoder_inputs(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, tokens = _caption_inputs(batch_size)
    return images, tokens[:, :-1]  # teacher forcing: the decoder reads <bos> w1 ... w_{T-1}


@register_model(
    "caption_lstm_attention",
    task="captioning",
    example_inputs=_decoder_inputs,
    output_shape=(12, VOCAB_SIZE),
    smoke_kwargs={"widths": (8, 16, 32), "hidden_dim": 32, "embed_dim": 16, "attention_dim": 16},
    reference="Xu et al. 2015, Show, Attend and Tell",
)
def caption_lstm_attention(
    vocab_size: int = VOCAB_SIZE, widths: Sequence[int] = (32, 64, 128), **kwargs
) -> ShowAttendTell:
    """CNN encoder + LSTM decoder with soft attention over the region features."""
    return ShowAttendTell(vocab_size, widths=widths, attention=True, **kwargs)


@register_model(
    "caption_lstm",
    task="captioning",
    example_inputs=_decoder_inputs,
    output_shape=(12, VOCAB_SIZE),
    smoke_kwargs={"widths": (8, 16, 32), "hidden_dim": 32, "embed_dim": 16},
    reference="Vinyals et al. 2015, Show and Tell (encoder-decoder)",
)
def caption_lstm(vocab_size: int = VOCAB_SIZE, widths: Sequence[int] = (32, 64, 128), **kwargs) -> ShowAttendTell:
    """CNN encoder + LSTM decoder fed one context vector (the encoder-decoder bottleneck)."""
    return ShowAttendTell(vocab_size, widths=widths, attention=False, **kwargs)


@register_model(
    "caption_transformer",
    task="captioning",
    example_inputs=_decoder_inputs,
    output_shape=(12, VOCAB_SIZE),
    smoke_kwargs={"widths": (8, 16, 32), "dim": 32, "heads": 2, "decoder_layers": 1},
    reference="Vaswani et al. 2017; Cornia et al. 2020 (transformer captioning)",
)
def caption_transformer(
    vocab_size: int = VOCAB_SIZE, widths: Sequence[int] = (32, 64, 128), image_size: int = 48, **kwargs
) -> TransformerCaptioner:
    """CNN region features with self-attention, read by a transformer decoder."""
    return TransformerCaptioner(vocab_size, widths=widths, image_size=image_size, **kwargs)


@register_model(
    "clip_shapes",
    task="embedding",
    example_inputs=_caption_inputs,
    output_shape=(2,),
    smoke_kwargs={"widths": (8, 16, 32), "embed_dim": 16, "text_width": 16, "text_heads": 2, "text_layers": 1},
    reference="Radford et al. 2021, CLIP",
)
def clip_shapes(vocab_size: int = VOCAB_SIZE, widths: Sequence[int] = (32, 64, 128), **kwargs) -> CLIP:
    """A small CLIP for the shapes captions: returns the (B, B) image-text logits."""
    return CLIP(vocab_size, widths=widths, **kwargs)


def _vqa_inputs(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    questions = CaptionTokenizer(QUESTION_VOCAB).encode(
        ["what colour is the circle ?", "how many squares are there ?"] * batch_size
    )[:batch_size]
    return torch.rand(batch_size, 3, 48, 48, generator=g), questions


@register_model(
    "vqa_net",
    task="other",
    example_inputs=_vqa_inputs,
    output_shape=(len(ANSWERS),),
    smoke_kwargs={"widths": (8, 16, 16), "dim": 16},
    reference="Antol et al. 2015; Yang et al. 2016 (stacked attention)",
)
def vqa_net(widths: Sequence[int] = (32, 64, 96), dim: int = 128, use_image: bool = True) -> VQANet:
    """CNN + GRU + question-guided attention over the regions; ``use_image=False`` is the blind baseline."""
    return VQANet(widths=widths, dim=dim, use_image=use_image)
