r"""One model, many tasks, one interface: Florence-2's idea in miniature (Xiao et al., "Florence-2: Advancing a
Unified Representation for a Variety of Vision Tasks", CVPR 2024; lecture 13).

Florence-2 is a single sequence-to-sequence model: an image encoder, a transformer decoder, and **every task written
as text**. A task token (``<caption>``, ``<od>`` for object detection, ``<ground>`` for phrase grounding, ...) and an
optional prompt go in; the answer comes out as tokens, with locations as **location tokens**: each box coordinate
quantised into one of ``bins`` values, each value a word of the vocabulary (``<loc_0>`` ... ``<loc_999>`` in the
paper). Nothing is task-specific but the training data.

Here, on synthetic shapes, one :class:`cvkit.vl.TransformerCaptioner` learns three tasks:

* ``<caption>`` -> ``a red circle left of a blue square``;
* ``<od>`` -> ``circle <loc_3> <loc_5> <loc_9> <loc_11> square ...`` (objects left to right, boxes x1 y1 x2 y2);
* ``<ground> red circle`` -> ``<loc_3> <loc_5> <loc_9> <loc_11>`` (asked only when one object matches the phrase).

A sequence is ``<bos> task [prompt] <sep> answer <eos>``; the loss is on the answer only (:func:`unified_loss`), and
:func:`unified_generate` decodes greedily after the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data.shapes import CAPTION_VOCAB, COLOUR_NAMES, SHAPE_CLASSES
from cvkit.vl.tokenizer import CaptionTokenizer

TASK_TOKENS = ("<caption>", "<od>", "<ground>")


def unified_vocab(bins: int = 32) -> tuple[str, ...]:
    """The shapes caption vocabulary plus the task tokens, ``<sep>`` and ``bins`` location tokens."""
    return CAPTION_VOCAB + TASK_TOKENS + ("<sep>",) + tuple(f"<loc_{i}>" for i in range(bins))


def quantize(values: torch.Tensor, image_size: int, bins: int) -> torch.Tensor:
    """Pixel coordinates in [0, image_size] -> bin indices in [0, bins) (floor of the scaled value)."""
    return (values / image_size * bins).floor().clamp(0, bins - 1).long()


def dequantize(index: torch.Tensor, image_size: int, bins: int) -> torch.Tensor:
    """Bin indices -> pixel coordinates at the bins' centres."""
    return (index.float() + 0.5) * image_size / bins


def _locations(box: torch.Tensor, image_size: int, bins: int) -> str:
    return " ".join(f"<loc_{int(i)}>" for i in quantize(box, image_size, bins))


def task_examples(sample, bins: int = 32, generator: torch.Generator | None = None) -> list[tuple[str, str]]:
    """The (prompt, answer) pairs of one shapes sample for the three tasks.

    Args:
        sample: a :class:`cvkit.data.ShapesSample`. bins: location bins per axis.
        generator: picks the object of the grounding question among the unambiguous ones.

    Returns:
        list of ``(prompt, answer)`` strings: caption, detection, and grounding when one object is unique by colour
        and shape.
    """
    size = sample.image.shape[-1]
    names = [(COLOUR_NAMES[int(c)], SHAPE_CLASSES[int(s)]) for c, s in zip(sample.colours, sample.labels)]
    od = " ".join(f"{shape} {_locations(box, size, bins)}" for (_, shape), box in zip(names, sample.boxes))
    out = [("<caption>", sample.caption), ("<od>", od)]
    unique = [i for i, n in enumerate(names) if names.count(n) == 1]
    if unique:
        i = unique[int(torch.randint(len(unique), (1,), generator=generator))]
        out.append((f"<ground> {names[i][0]} {names[i][1]}", _locations(sample.boxes[i], size, bins)))
    return out


@dataclass
class UnifiedData:
    """Token sequences for every (image, task) pair, with each image stored once.

    An image gives two or three pairs (caption, detection, grounding), so the pairs index into ``source_images`` through
    ``image_index`` rather than holding a copy each (the full profile's 16,000 images make about 47,500 pairs).

    Attributes:
        source_images: (M, 3, H, W) float32 in [0, 1], the dataset's images, each once.
        tokens: (N, T) int64 ``<bos> prompt <sep> answer <eos>`` padded.
        answer_start: (N,) int64, the index of the first answer token in ``tokens``.
        tasks: (N,) int64 into :data:`TASK_TOKENS`.
        prompts, answers: the N strings.
        image_index: (N,) int64, the index of each pair's image in ``source_images`` (and in the dataset).
    """

    source_images: torch.Tensor
    tokens: torch.Tensor
    answer_start: torch.Tensor
    tasks: torch.Tensor
    prompts: list[str]
    answers: list[str]
    image_index: torch.Tensor

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def images(self) -> torch.Tensor:
        """(N, 3, H, W) float32: each pair's image, a new tensor with one copy per pair (fine for a test set; training
        reads pairs through :meth:`pair_dataset` instead)."""
        return self.source_images[self.image_index]

    def pair_dataset(self) -> torch.utils.data.Dataset:
        """A map-style dataset of ``(image (3, H, W), tokens (T,), answer_start ())`` per pair, reading each image from
        ``source_images`` (no copy per pair)."""
        return _PairDataset(self)


class _PairDataset(torch.utils.data.Dataset):
    """Item k of a :class:`UnifiedData`: its image (looked up by ``image_index``), tokens and answer start."""

    def __init__(self, data: UnifiedData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        d = self.data
        return d.source_images[d.image_index[k]], d.tokens[k], d.answer_start[k]


def unified_dataset(dataset, bins: int = 32, seed: int = 0, tokenizer: CaptionTokenizer | None = None) -> UnifiedData:
    """Every task of every image of a shapes dataset (:func:`task_examples`), tokenised; each image stored once."""
    tok = tokenizer or CaptionTokenizer(unified_vocab(bins))
    g = torch.Generator().manual_seed(seed)
    images, texts, starts, tasks, prompts, answers, index = [], [], [], [], [], [], []
    for i in range(len(dataset)):
        s = dataset[i]
        images.append(s.image)
        for prompt, answer in task_examples(s, bins, g):
            texts.append(f"{prompt} <sep> {answer}")
            starts.append(len(prompt.split()) + 2)  # <bos>, the prompt words, <sep>
            tasks.append(TASK_TOKENS.index(prompt.split()[0]))
            prompts.append(prompt)
            answers.append(answer)
            index.append(i)
    return UnifiedData(
        torch.stack(images),
        tok.encode(texts),
        torch.tensor(starts),
        torch.tensor(tasks),
        prompts,
        answers,
        torch.tensor(index),
    )


def unified_loss(
    model: nn.Module, images: torch.Tensor, tokens: torch.Tensor, answer_start: torch.Tensor
) -> torch.Tensor:
    """Teacher-forced cross-entropy on the answer tokens only (the prompt is given, not predicted).

    Args:
        model: ``model(images, tokens) -> (log-probabilities (B, T, V), _)`` (:class:`cvkit.vl.TransformerCaptioner`).
        images: (B, 3, H, W). tokens: (B, T). answer_start: (B,) first answer position.

    Returns:
        scalar, mean over answer tokens (``<eos>`` included, padding excluded).
    """
    logp, _ = model(images, tokens[:, :-1])  # predicts tokens[:, 1:]
    target = tokens[:, 1:]
    pos = torch.arange(1, tokens.shape[1], device=tokens.device)[None]  # position of each target token
    keep = (pos >= answer_start[:, None]) & (target != 0)
    return F.nll_loss(logp[keep], target[keep])


def unified_step(model: nn.Module, batch):
    """``fit`` step for ``(images, tokens, answer_start)`` batches (:func:`unified_loss`)."""
    from cvkit.train.loop import StepOutput

    images, tokens, starts = batch
    return StepOutput(unified_loss(model, images, tokens, starts), images.shape[0])


@torch.no_grad()
def unified_generate(
    model: nn.Module, images: torch.Tensor, prompts: Sequence[str], tokenizer: CaptionTokenizer, max_new: int = 16
) -> list[str]:
    """Greedy answers to ``prompts`` (one per image), decoded after ``<bos> prompt <sep>``.

    Prompts of the same length are decoded together (the image is encoded once per answer).

    Args:
        model: a :class:`cvkit.vl.TransformerCaptioner` (``encode``, ``decode``; eval mode set and restored).
        images: (B, 3, H, W). prompts: B prompts (``"<od>"``, ``"<ground> red circle"``, ...).
        tokenizer: the one of the training data. max_new: most tokens generated per answer.

    Returns:
        B answer strings (without ``<eos>``).

    Raises:
        ValueError: a different number of images and prompts.
    """
    if len(images) != len(prompts):
        raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    answers: list[str] = [""] * len(prompts)
    try:
        prefixes = [tokenizer.encode(f"{p} <sep>")[0, :-1] for p in prompts]  # <bos> prompt <sep> (no <eos>)
        for length in sorted({len(p) for p in prefixes}):
            group = [i for i, p in enumerate(prefixes) if len(p) == length]
            memory = model.encode(images[group].to(device))
            seqs = torch.stack([prefixes[i] for i in group]).to(device)  # (G, length)
            done = torch.zeros(len(group), dtype=torch.bool, device=device)
            for _ in range(min(max_new, getattr(model, "max_len", 10**9) - length)):
                word = model.decode(seqs, memory)[:, -1].argmax(dim=1)  # (G,)
                word = torch.where(done, torch.full_like(word, tokenizer.pad_id), word)
                done |= word == tokenizer.eos_id
                seqs = torch.cat([seqs, word[:, None]], dim=1)
                if bool(done.all()):
                    break
            for row, i in zip(seqs.tolist(), group):
                words = []
                for w in row[length:]:
                    if w in (tokenizer.eos_id, tokenizer.pad_id):
                        break
                    words.append(tokenizer.vocab[w])
                answers[i] = " ".join(words)
        return answers
    finally:
        model.train(was)


def parse_locations(answer: str, image_size: int, bins: int) -> tuple[list[str], torch.Tensor]:
    """Read ``name <loc> <loc> <loc> <loc> ...`` (names optional) back into labels and (K, 4) xyxy pixel boxes.

    Incomplete groups (fewer than four location tokens) are dropped.
    """
    names, boxes, current, locs = [], [], None, []
    for word in answer.split():
        if word.startswith("<loc_"):
            locs.append(int(word[5:-1]))
            if len(locs) == 4:
                boxes.append(dequantize(torch.tensor(locs), image_size, bins))
                names.append(current or "")
                locs = []
        else:
            current, locs = word, []
    return names, torch.stack(boxes) if boxes else torch.zeros(0, 4)


def _collapse_inverted(boxes: torch.Tensor) -> torch.Tensor:
    """Generated boxes with x2 < x1 or y2 < y1 become empty boxes at (x1, y1): they still count, and match nothing."""
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    return torch.where(bad[:, None], boxes[:, :2].repeat(1, 2), boxes)


def score_tasks(predictions: Sequence[str], data: UnifiedData, shapes, bins: int) -> dict[str, float]:
    """Score generated answers to every prompt of ``data`` on its three tasks.

    * ``<caption>``: exact match with the reference caption (``caption_exact``);
    * ``<od>``: COCO AP50 and AP (:func:`cvkit.detection.mean_average_precision`) of the boxes and names parsed back
      from the tokens against the image's objects, every parsed box scored 1 (a sequence carries no confidence;
      names that are not shape classes are dropped; a generated box with x2 < x1 or y2 < y1 counts as an empty box
      that matches nothing) (``detection_ap50``, ``detection_ap``);
    * ``<ground>``: the share of answers whose first box has IoU >= 0.5 with the reference answer's box (the object's
      box at bin centres) (``grounding_hits``); an answer without a box misses. ``grounding_leftmost_hits`` is the
      same share for a phrase-blind answer, the box of the image's left-most object: what finding *an* object,
      without reading the phrase, scores.

    Args:
        predictions: one answer string per entry of ``data`` (as :func:`unified_generate` returns them).
        data: made by :func:`unified_dataset` from ``shapes`` with the same ``bins``: its ``<od>`` entries are in the
            images' order, one per image.
        shapes: the :class:`cvkit.data.ShapesDataset` the data was made from (its boxes: xyxy pixels).
        bins: location bins per axis.

    Returns:
        ``{"caption_exact", "detection_ap50", "detection_ap", "grounding_hits", "grounding_leftmost_hits"}``, floats
        in [0, 1].

    Raises:
        ValueError: a different number of predictions and entries, or ``data`` that is not ``shapes``'s.
    """
    from cvkit.detection import box_iou, mean_average_precision

    if len(predictions) != len(data):
        raise ValueError(f"got {len(predictions)} predictions for {len(data)} prompts; answer every prompt of data")
    by_task: dict[str, list[tuple[str, str, int]]] = {t: [] for t in TASK_TOKENS}
    for p, a, t, i in zip(predictions, data.answers, data.tasks.tolist(), data.image_index.tolist()):
        by_task[TASK_TOKENS[t]].append((p, a, i))
    if [i for _, _, i in by_task["<od>"]] != list(range(len(shapes))):
        raise ValueError(f"data has {len(by_task['<od>'])} detection prompts but shapes has {len(shapes)} images")
    size = data.source_images.shape[-1]
    captions = by_task["<caption>"]
    detections, targets = [], []
    for answer, _, i in by_task["<od>"]:
        names, boxes = parse_locations(answer, size, bins)
        boxes = _collapse_inverted(boxes)
        keep = [j for j, n in enumerate(names) if n in SHAPE_CLASSES]
        labels = torch.tensor([SHAPE_CLASSES.index(names[j]) for j in keep], dtype=torch.int64)
        detections.append({"boxes": boxes[keep], "scores": torch.ones(len(keep)), "labels": labels})
        targets.append({"boxes": shapes[i].boxes, "labels": shapes[i].labels})
    ap = mean_average_precision(detections, targets)
    hits, leftmost = [], []
    for p, a, i in by_task["<ground>"]:
        _, predicted = parse_locations(p, size, bins)
        predicted = _collapse_inverted(predicted)
        _, truth = parse_locations(a, size, bins)
        hits.append(len(predicted) > 0 and float(box_iou(predicted[:1], truth[:1])[0, 0]) >= 0.5)
        objects = shapes[i].boxes  # (K, 4) xyxy pixels; a ShapesDataset renders the image on every access
        left = objects[objects[:, 0].argmin()][None]
        leftmost.append(float(box_iou(left, truth[:1])[0, 0]) >= 0.5)
    return {
        "caption_exact": sum(p == a for p, a, _ in captions) / max(len(captions), 1),
        "detection_ap50": float(ap["map_50"]),
        "detection_ap": float(ap["map"]),
        "grounding_hits": sum(hits) / max(len(hits), 1),
        "grounding_leftmost_hits": sum(leftmost) / max(len(leftmost), 1),
    }
