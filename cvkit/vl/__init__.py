"""Vision and language (lecture 10): captioning with attention or transformers, and a small CLIP.

* :mod:`~cvkit.vl.tokenizer`: caption words to ids and back.
* :mod:`~cvkit.vl.data`: synthetic shapes as (image, caption) pairs.
* :mod:`~cvkit.vl.captioning`: encoder-decoder, Show-Attend-Tell and transformer captioners.
* :mod:`~cvkit.vl.decoding`: greedy decoding and beam search.
* :mod:`~cvkit.vl.metrics`: BLEU (torchmetrics), exact match, and attention on the named objects.
* :mod:`~cvkit.vl.clip`: CLIP's encoders, loss, zero-shot classification and dense similarity.
* :mod:`~cvkit.vl.vqa`: visual question answering on shapes (questions from the ground truth, a VQA network).
"""

from cvkit.vl.captioning import ShowAttendTell, TransformerCaptioner, caption_loss, caption_step
from cvkit.vl.clip import (
    CLIP,
    ClipImageEncoder,
    TextEncoder,
    clip_loss,
    clip_step,
    dense_similarity,
    dense_zero_shot_accuracy,
    pointing_game,
    region_embeddings,
    zero_shot_classifier,
    zero_shot_predict,
)
from cvkit.vl.data import CaptionedImages, captioned_shapes
from cvkit.vl.decoding import Decoded, beam_search, greedy_decode
from cvkit.vl.metrics import attention_on_named_objects, caption_metrics
from cvkit.vl.tokenizer import CaptionTokenizer
from cvkit.vl.vqa import ANSWERS, QUESTION_VOCAB, VQAData, VQANet, questions_for, vqa_accuracy, vqa_shapes, vqa_step

__all__ = [
    "CLIP",
    "CaptionTokenizer",
    "CaptionedImages",
    "Decoded",
    "ClipImageEncoder",
    "ShowAttendTell",
    "TextEncoder",
    "TransformerCaptioner",
    "attention_on_named_objects",
    "beam_search",
    "caption_loss",
    "caption_metrics",
    "caption_step",
    "captioned_shapes",
    "clip_loss",
    "clip_step",
    "dense_similarity",
    "dense_zero_shot_accuracy",
    "greedy_decode",
    "pointing_game",
    "region_embeddings",
    "zero_shot_classifier",
    "zero_shot_predict",
    "ANSWERS",
    "QUESTION_VOCAB",
    "VQAData",
    "VQANet",
    "questions_for",
    "vqa_accuracy",
    "vqa_shapes",
    "vqa_step",
]
