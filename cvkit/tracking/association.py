r"""Association by appearance: UniTrack's *association* primitive for multi-object tracking (Wang et al. 2021,
sec. 3.2; the matching step of DeepSORT, Wojke et al. 2017).

Each detection gets an embedding: the frame's feature map pooled inside its box (RoIAlign, then an average). The
detections of a new frame are matched to the existing tracks by the Hungarian algorithm on the cost
:math:`1 - \cos(e_{track}, e_{det})`; a pair whose cost is above ``max_cost`` is not matched and the detection
starts a new track. A track's embedding follows its detections with a moving average.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
import torchvision.ops
from scipy.optimize import linear_sum_assignment


def embed_boxes(feature_map: torch.Tensor, boxes: torch.Tensor, stride: float, size: int = 3) -> torch.Tensor:
    """One embedding per box: RoIAlign of the (D, h, w) map on the box, averaged over the ``size`` x ``size`` bins.

    Args:
        feature_map: (D, h, w) features of the frame. boxes: (N, 4) xyxy in image pixels. stride: image pixels per cell.

    Returns:
        (N, D) float, L2-normalised.
    """
    if len(boxes) == 0:
        return feature_map.new_zeros(0, feature_map.shape[0])
    pooled = torchvision.ops.roi_align(
        feature_map[None], [boxes.to(feature_map)], size, 1.0 / stride, 2, True
    )  # (N, D, s, s)
    return F.normalize(pooled.mean(dim=(2, 3)), dim=1)


def associate(tracks: torch.Tensor, detections: torch.Tensor, max_cost: float = 0.5) -> list[tuple[int, int]]:
    """Match detections to tracks by appearance (Hungarian algorithm on cosine distance).

    Args:
        tracks: (M, D) track embeddings. detections: (N, D) detection embeddings.
        max_cost: pairs with :math:`1 - \\cos` above it stay unmatched.

    Returns:
        list of ``(track index, detection index)`` pairs.
    """
    if len(tracks) == 0 or len(detections) == 0:
        return []
    cost = 1 - F.normalize(tracks, dim=1) @ F.normalize(detections, dim=1).T  # (M, N)
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    return [(int(r), int(c)) for r, c in zip(rows, cols) if float(cost[r, c]) <= max_cost]


def track_by_appearance(
    embeddings: Sequence[torch.Tensor], max_cost: float = 0.5, momentum: float = 0.5
) -> list[torch.Tensor]:
    """Give every detection of every frame a track id, frame by frame, by :func:`associate`.

    Args:
        embeddings: per frame, (N_t, D) detection embeddings.
        max_cost: see :func:`associate`. momentum: weight of the old embedding when a track is updated.

    Returns:
        per frame, (N_t,) int64 track ids (the detections of frame 0 get ids 0..N_0 - 1).
    """
    track_embeddings: list[torch.Tensor] = []
    ids = []
    for e in embeddings:
        frame_ids = torch.full((len(e),), -1, dtype=torch.int64)
        if track_embeddings:
            for t, d in associate(torch.stack(track_embeddings), e, max_cost):
                frame_ids[d] = t
                track_embeddings[t] = F.normalize(momentum * track_embeddings[t] + (1 - momentum) * e[d], dim=0)
        for d in (frame_ids == -1).nonzero().flatten().tolist():  # unmatched: a new track
            frame_ids[d] = len(track_embeddings)
            track_embeddings.append(e[d])
        ids.append(frame_ids)
    return ids


def identity_accuracy(predicted: Sequence[torch.Tensor], truth: Sequence[torch.Tensor]) -> float:
    """Fraction of detections after the first frame whose track is the one their true identity started in frame 0
    (each true identity maps to the track id it got first).

    Args:
        predicted, truth: per frame, (N_t,) int64 ids (the same detections in the same order).

    Returns:
        a float in [0, 1] (1.0 when there is nothing after the first frame).
    """
    first = {int(t): int(p) for p, t in zip(predicted[0], truth[0])}
    hits = total = 0
    for p, t in zip(predicted[1:], truth[1:]):
        for pi, ti in zip(p.tolist(), t.tolist()):
            total += 1
            hits += first.get(ti) == pi
    return hits / total if total else 1.0
