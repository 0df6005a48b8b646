r"""Caption quality: BLEU (Papineni et al., ACL 2002) through torchmetrics, and exact match.

Corpus BLEU-n is the geometric mean of the clipped n-gram precisions :math:`p_1 \dots p_n`
times a brevity penalty :math:`\min(1, e^{1 - r/c})` (c: total candidate length, r: total
length of the closest references). "Clipped": a candidate n-gram counts at most as often as
it appears in one reference. The computation is torchmetrics' ``bleu_score``; this module only
fixes the conventions the notebooks report.
"""

from __future__ import annotations

from typing import Sequence


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
