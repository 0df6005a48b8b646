r"""Label propagation by feature affinity: UniTrack's *propagation* primitive (Wang et al. 2021, sec. 3.2; the same
rule as Jabri et al. 2020 and Vondrick et al. 2018).

Features of the current frame :math:`f_t(p)` are compared with the features of reference frames :math:`f_r(q)`
(L2-normalised, so the product is a cosine), each current position keeps its ``topk`` most similar reference
positions, and its label is their softmax-weighted average:

.. math:: A_{pq} = \frac{\exp(f_t(p)^\top f_r(q)/\tau)}{\sum_{q' \in \mathrm{top}k(p)} \exp(f_t(p)^\top f_r(q')/\tau)},
          \qquad \hat y_t(p) = \sum_{q \in \mathrm{top}k(p)} A_{pq}\, y_r(q).

Nothing is trained for the task: a better appearance model (features) gives better masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def affinity(query: torch.Tensor, reference: torch.Tensor, temperature: float = 0.05, topk: int = 10) -> torch.Tensor:
    """Sparse softmax affinity from every query position to the ``topk`` most similar reference positions.

    Args:
        query: (D, h, w) features of the current frame.
        reference: (R, D, h, w) features of R reference frames (or (D, h, w) for one).
        temperature: :math:`\\tau` > 0. topk: neighbours kept per query position (>= 1).

    Returns:
        (h*w, R*h*w) float; every row sums to 1 and has at most ``topk`` non-zeros.

    Raises:
        ValueError: feature widths that differ, or a bad ``temperature``/``topk``.
    """
    if reference.dim() == 3:
        reference = reference[None]
    if query.dim() != 3 or reference.dim() != 4 or query.shape[0] != reference.shape[1]:
        raise ValueError(
            f"need query (D, h, w) and reference (R, D, h, w) with the same D, got {tuple(query.shape)}, {tuple(reference.shape)}"
        )
    if temperature <= 0 or topk < 1:
        raise ValueError(f"need temperature > 0 and topk >= 1, got {temperature}, {topk}")
    q = F.normalize(query.flatten(1).T, dim=1)  # (h*w, D)
    r = F.normalize(reference.permute(1, 0, 2, 3).flatten(1).T, dim=1)  # (R*h*w, D)
    sim = q @ r.T / temperature  # (h*w, R*h*w)
    k = min(topk, sim.shape[1])
    values, index = sim.topk(k, dim=1)
    return torch.zeros_like(sim).scatter_(1, index, values.softmax(dim=1))


def propagate_labels(
    query: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor, temperature: float = 0.05, topk: int = 10
) -> torch.Tensor:
    """Labels of the current frame from the reference frames' labels, by :func:`affinity`.

    Args:
        query: (D, h, w). reference: (R, D, h, w) or (D, h, w).
        labels: (R, C, h, w) or (C, h, w) per-position label distributions of the references (e.g. one-hot masks).
        temperature, topk: see :func:`affinity`.

    Returns:
        (C, h, w) float, a distribution over the C labels at every position.

    Raises:
        ValueError: labels whose grid does not match the references'.
    """
    if reference.dim() == 3:
        reference = reference[None]
    if labels.dim() == 3:
        labels = labels[None]
    if labels.shape[0] != reference.shape[0] or labels.shape[2:] != reference.shape[2:]:
        raise ValueError(
            f"labels {tuple(labels.shape)} must be (R, C, h, w) on the references' grid {tuple(reference.shape)}"
        )
    a = affinity(query, reference, temperature, topk)  # (h*w, R*h*w)
    y = labels.permute(1, 0, 2, 3).flatten(1).T.float()  # (R*h*w, C)
    return (a @ y).T.reshape(labels.shape[1], *query.shape[1:])  # (C, h, w)


def propagate_mask(
    features: torch.Tensor, first_mask: torch.Tensor, context: int = 3, temperature: float = 0.05, topk: int = 10
) -> torch.Tensor:
    """Track one object's mask through a video from its mask in the first frame (video object segmentation).

    Each frame uses as references the first frame (with its true mask) and the ``context`` previous frames (with their
    predicted soft masks), as UniTrack's propagation does.

    Args:
        features: (T, D, h, w) frozen features of every frame.
        first_mask: (h, w) bool or float mask of the object in frame 0, at the features' resolution.
        context: how many previous frames to use besides the first.
        temperature, topk: see :func:`affinity`.

    Returns:
        (T, h, w) float in [0, 1]: the object's probability at every position (frame 0 is ``first_mask``).

    Raises:
        ValueError: a mask whose size differs from the feature grid.
    """
    if first_mask.shape != features.shape[2:]:
        raise ValueError(
            f"first_mask {tuple(first_mask.shape)} must be on the feature grid {tuple(features.shape[2:])}"
        )
    m0 = first_mask.float()
    masks = [m0]
    for t in range(1, features.shape[0]):
        refs = [0] + list(range(max(1, t - context), t))
        labels = torch.stack([torch.stack([1 - masks[r], masks[r]]) for r in refs])  # (R, 2, h, w): background, object
        masks.append(propagate_labels(features[t], features[refs], labels, temperature, topk)[1])
    return torch.stack(masks)
