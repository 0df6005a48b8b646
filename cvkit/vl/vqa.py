r"""Visual question answering on synthetic shapes (lecture 10; seed 003, "视觉问答" / VQA).

VQA (Antol et al., ICCV 2015) gives a model an image and a question in words and asks for the answer, scored as
classification over a fixed answer vocabulary. Questions here are generated from each image's ground truth, with
answers that only the image can give:

* ``what colour is the circle ?`` (asked only when the image holds exactly one circle) -> red / green / blue / yellow;
* ``what shape is the red object ?`` (exactly one red object) -> circle / square / triangle;
* ``how many squares are there ?`` -> zero / one / two / three;
* ``is there a blue triangle ?`` -> yes / no (asked so that half the answers are yes).

The model (:class:`VQANet`) is the classic recipe: a CNN grid of region features, a recurrent encoding of the
question, **question-guided attention** over the regions (stacked attention, Yang et al., CVPR 2016, one hop), the
element-wise product of the attended image vector and the question vector, and a classifier over the answers. A
*blind* model that sees only the question (``use_image=False``) measures how much the answers can be guessed from
language priors alone (Goyal et al., CVPR 2017): the gap between the two is what looking at the image buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data.shapes import COLOUR_NAMES, SHAPE_CLASSES
from cvkit.layers.conv_encoder import ConvEncoder
from cvkit.train.loop import StepOutput
from cvkit.vl.tokenizer import SPECIALS, CaptionTokenizer

QUESTION_TYPES = ("colour", "shape", "count", "exists")
COUNT_WORDS = ("zero", "one", "two", "three")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}
ANSWERS: tuple[str, ...] = COLOUR_NAMES + SHAPE_CLASSES + COUNT_WORDS + ("yes", "no")
QUESTION_VOCAB: tuple[str, ...] = (
    SPECIALS
    + (
        "what",
        "colour",
        "is",
        "the",
        "shape",
        "object",
        "how",
        "many",
        "are",
        "there",
        "a",
        "?",
    )
    + COLOUR_NAMES
    + SHAPE_CLASSES
    + tuple(PLURALS.values())
)


@dataclass
class VQAData:
    """Images, questions and answers.

    Attributes:
        images: (N, 3, H, W) float32 in [0, 1] (one row per question; an image appears once per question asked of it).
        questions: (N, T) int64 token ids (:data:`QUESTION_VOCAB`). answers: (N,) int64 into :data:`ANSWERS`.
        kinds: (N,) int64 into :data:`QUESTION_TYPES`. texts: the N questions as strings.
    """

    images: torch.Tensor
    questions: torch.Tensor
    answers: torch.Tensor
    kinds: torch.Tensor
    texts: list[str]

    def __len__(self) -> int:
        return len(self.answers)


def questions_for(
    labels: Sequence[int], colours: Sequence[int], generator: torch.Generator | None = None
) -> list[tuple[str, str, str]]:
    """Every question of the four types that an image with these objects answers unambiguously.

    Args:
        labels: the objects' shape indices (into ``SHAPE_CLASSES``). colours: their colour indices.
        generator: picks the object of the ``exists`` question (a present one or an absent combination).

    Returns:
        list of ``(question, answer, kind)``; e.g. ``("what colour is the circle ?", "red", "colour")``.
    """
    shapes = [SHAPE_CLASSES[int(i)] for i in labels]
    cols = [COLOUR_NAMES[int(i)] for i in colours]
    out = []
    for s in SHAPE_CLASSES:
        if shapes.count(s) == 1:
            out.append((f"what colour is the {s} ?", cols[shapes.index(s)], "colour"))
    for c in COLOUR_NAMES:
        if cols.count(c) == 1:
            out.append((f"what shape is the {c} object ?", shapes[cols.index(c)], "shape"))
    s = SHAPE_CLASSES[int(torch.randint(len(SHAPE_CLASSES), (1,), generator=generator))]
    out.append((f"how many {PLURALS[s]} are there ?", COUNT_WORDS[min(shapes.count(s), 3)], "count"))
    present = list(zip(cols, shapes))
    if bool(torch.rand(1, generator=generator) < 0.5) and present:
        c, s = present[int(torch.randint(len(present), (1,), generator=generator))]
        out.append((f"is there a {c} {s} ?", "yes", "exists"))
    else:
        absent = [(c, s) for c in COLOUR_NAMES for s in SHAPE_CLASSES if (c, s) not in present]
        c, s = absent[int(torch.randint(len(absent), (1,), generator=generator))]
        out.append((f"is there a {c} {s} ?", "no", "exists"))
    return out


def vqa_shapes(dataset, seed: int = 0, tokenizer: CaptionTokenizer | None = None) -> VQAData:
    """Questions and answers for every image of a shapes dataset (:func:`questions_for` on its ground truth).

    Args:
        dataset: a :class:`cvkit.data.ShapesDataset` (or anything indexable giving samples with ``image``, ``labels``,
            ``colours``). seed: seeds the choice of questions. tokenizer: default: one over :data:`QUESTION_VOCAB`.

    Returns:
        :class:`VQAData` with one row per question.
    """
    tok = tokenizer or CaptionTokenizer(QUESTION_VOCAB)
    g = torch.Generator().manual_seed(seed)
    images, texts, answers, kinds = [], [], [], []
    for i in range(len(dataset)):
        s = dataset[i]
        for question, answer, kind in questions_for(s.labels.tolist(), s.colours.tolist(), g):
            images.append(s.image)
            texts.append(question)
            answers.append(ANSWERS.index(answer))
            kinds.append(QUESTION_TYPES.index(kind))
    return VQAData(torch.stack(images), tok.encode(texts), torch.tensor(answers), torch.tensor(kinds), texts)


class VQANet(nn.Module):
    """CNN regions + GRU question + question-guided attention + product fusion + answer classifier.

    Args:
        vocab_size: question vocabulary size V. num_answers: A.
        widths: CNN stage widths (the grid is H / 2^len(widths) on a side).
        dim: width of the joint space. use_image: ``False`` gives the blind (question-only) baseline.

    Shapes:
        ``forward(images (B, 3, H, W), questions (B, T) int64)`` -> (B, A) logits; after a forward pass
        ``last_attention`` holds the (B, h*w) attention over the regions (``None`` for the blind model).
    """

    def __init__(
        self,
        vocab_size: int = len(QUESTION_VOCAB),
        num_answers: int = len(ANSWERS),
        widths: Sequence[int] = (32, 64, 96),
        dim: int = 128,
        use_image: bool = True,
    ) -> None:
        super().__init__()
        self.use_image = use_image
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        if use_image:
            self.encoder = ConvEncoder(3, widths)
            self.project = nn.Conv2d(widths[-1], dim, 1)
            self.attend = nn.Linear(dim, 1)
        self.classifier = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, num_answers))
        self.last_attention: torch.Tensor | None = None

    def encode_question(self, questions: torch.Tensor) -> torch.Tensor:
        """The GRU's hidden state after the last non-pad token: (B, dim)."""
        lengths = (questions != 0).sum(1).clamp_min(1)
        out, _ = self.gru(self.embed(questions))  # (B, T, dim)
        return out[torch.arange(len(questions)), lengths - 1]

    def forward(self, images: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        q = self.encode_question(questions)  # (B, dim)
        if not self.use_image:
            return self.classifier(q)
        regions = self.project(self.encoder.forward_map(images)).flatten(2).transpose(1, 2)  # (B, h*w, dim)
        scores = self.attend(torch.tanh(regions + q[:, None])).squeeze(-1)  # (B, h*w): which regions the question needs
        weights = scores.softmax(dim=1)
        self.last_attention = weights.detach()
        attended = (weights[..., None] * regions).sum(1)  # (B, dim)
        return self.classifier(F.relu(attended) * q)  # product fusion


def vqa_accuracy(model: nn.Module, data: VQAData, batch_size: int = 256) -> dict[str, float]:
    """Accuracy overall and per question type (exact match of the answer class).

    Returns:
        ``{"all": float, "colour": float, "shape": float, "count": float, "exists": float}`` (a type without questions
        is left out).
    """
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            preds.append(
                model(data.images[i : i + batch_size].to(device), data.questions[i : i + batch_size].to(device))
                .argmax(1)
                .cpu()
            )
    model.train(was)
    correct = (torch.cat(preds) == data.answers).float()
    out = {"all": correct.mean().item()}
    for k, name in enumerate(QUESTION_TYPES):
        sel = data.kinds == k
        if sel.any():
            out[name] = correct[sel].mean().item()
    return out


def vqa_step(model: nn.Module, batch) -> StepOutput:
    """``fit`` step for ``(images, questions, answers)`` batches: cross-entropy over the answers; counts correct ones."""
    images, questions, answers = batch
    logits = model(images, questions)
    return StepOutput(F.cross_entropy(logits, answers), len(answers), (logits.argmax(1) == answers).sum())
