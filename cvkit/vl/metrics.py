r"""Caption quality: BLEU (Papineni et al., ACL 2002) through torchmetrics, exact match, and where the words looked.

Corpus BLEU-n is the geometric mean of the clipped n-gram precisions :math:`p_1 \dots p_n`
times a brevity penalty :math:`\min(1, e^{1 - r/c})` (c: total candidate length, r: total
length of the closest references). "Clipped": a candidate n-gram counts at most as often as
it appears in one reference. The computation is torchmetrics' ``bleu_score``; this module only
fixes the conventions the notebooks report.

:func:`attention_on_named_objects` asks the question of Show, Attend and Tell's figures (Xu et al., ICML 2015,
sec. 5.4) with numbers: while the decoder writes an object's noun, how much of its attention lies on that object?
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from cvkit.inspect.attention import attention_inside_mask

if TYPE_CHECKING:
    from cvkit.vl.data import CaptionedImages


def caption_metrics(
    predictions: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]
) -> dict[str, float]:
    """Corpus BLEU-1 to BLEU-4 and the exact-match rate of predicted captions.

    Args:
        predictions: N predicted captions (words separated by spaces).
        references: N references: one string each, or a list of strings (several references) each.

    Returns:
        ``{"bleu1": ..., "bleu2": ..., "bleu3": ..., "bleu4": ..., "exact": ...}``, floats in [0, 1];
        ``exact`` is the fraction of predictions equal to one of their references.

    Raises:
        ValueError: different numbers of predictions and references, or none.
        TypeError: predictions that are not strings.
    """
    from torchmetrics.functional.text import bleu_score  # torchmetrics is in the course extra

    if len(predictions) != len(references):
        raise ValueError(f"got {len(predictions)} predictions for {len(references)} references")
    if not predictions:
        raise ValueError("no captions to score")
    if not all(isinstance(p, str) for p in predictions):
        raise TypeError("predictions must be strings; decode token ids with CaptionTokenizer.decode first")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    out = {f"bleu{n}": float(bleu_score(list(predictions), refs, n_gram=n)) for n in range(1, 5)}
    out["exact"] = sum(p.strip() in [r.strip() for r in rs] for p, rs in zip(predictions, refs)) / len(predictions)
    return out


def attention_on_named_objects(
    attention: torch.Tensor, captions: Sequence[str], data: CaptionedImages, nouns: Sequence[str] | None = None
) -> dict[str, float]:
    """How much attention a captioner puts on the object it is naming, against the object's area.

    A caption of :func:`cvkit.vl.captioned_shapes` names its objects left to right with one noun (shape word) each,
    so the k-th noun of a generated caption names object k. For every image with two or more objects and every
    generated noun k that is right (it equals object k's shape), the attention weights of that word are spread over
    the image's regions and summed over the pixels of each object: ``named`` is the mass on object k, ``other`` the
    mean mass on one of the image's other objects, and ``area`` the share of the image object k covers, which is what
    uniform attention would put on it. ``hit_rate`` is how often object k gets more mass than every other object.

    Args:
        attention: (N, T, L) float attention weights per generated word over L = h * h square-grid regions (each row
            sums to 1), as :func:`cvkit.vl.greedy_decode` returns them; word t is word t of the decoded caption. The
            images' sides must be multiples of h (the mass per object is :func:`cvkit.inspect.attention_inside_mask`).
        captions: N decoded captions (``CaptionTokenizer.decode``), words separated by spaces.
        data: the :class:`cvkit.vl.CaptionedImages` the captions describe (its ``objects`` and ``masks``).
        nouns: the words that name an object (default: the shapes dataset's shape names).

    Returns:
        ``{"words", "named", "other", "area", "hit_rate"}``: the number of nouns scored, then means in [0, 1].

    Raises:
        TypeError: ``attention`` is not a tensor (a model without attention decodes to ``attention=None``).
        ValueError: shapes that do not match (N captions and images; L not a square; image sides not multiples of
            h), or no noun to score.
    """
    from cvkit.data.shapes import SHAPE_CLASSES

    if not isinstance(attention, torch.Tensor):
        raise TypeError(
            f"attention must be an (N, T, L) tensor, got {type(attention).__name__}; decode a model with attention"
        )
    if attention.dim() != 3:
        raise ValueError(f"attention must be (N, T, L), got shape {tuple(attention.shape)}")
    n, steps, regions = attention.shape
    if n != len(captions) or n != len(data):
        raise ValueError(f"got attention for {n} images, {len(captions)} captions and {len(data)} images of data")
    side = round(regions**0.5)
    if side * side != regions:
        raise ValueError(f"expected a square grid of regions, got L = {regions}")
    nouns = set(SHAPE_CLASSES if nouns is None else nouns)
    named, other, area, hits, count = 0.0, 0.0, 0.0, 0, 0
    for i, caption in enumerate(captions):
        objects = data.objects[i]
        if len(objects) < 2:
            continue
        masks = data.masks[i]  # (K, H, W): object k's pixels
        k = -1
        for t, word in enumerate(caption.split()):
            if word not in nouns:
                continue
            k += 1
            if k >= len(objects) or t >= steps or word != objects[k][1]:
                continue
            word_map = attention[i, t].reshape(1, side, side).expand(len(masks), side, side)
            mass, covered = attention_inside_mask(word_map, masks)  # (K,) each: mass on object k, its area
            named += mass[k].item()
            other += (mass.sum() - mass[k]).item() / (len(objects) - 1)
            area += covered[k].item()
            hits += int(mass.argmax().item() == k)
            count += 1
    if count == 0:
        raise ValueError("no correctly named object in an image with two or more objects: nothing to score")
    return {
        "words": float(count),
        "named": named / count,
        "other": other / count,
        "area": area / count,
        "hit_rate": hits / count,
    }
