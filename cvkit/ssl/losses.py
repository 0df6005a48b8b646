r"""Contrastive and self-distillation losses: InfoNCE, NT-Xent (SimCLR) and BYOL's regression loss.

InfoNCE (van den Oord et al., "Representation Learning with Contrastive Predictive
Coding", 2018, eq. 4) scores one positive against N - 1 negatives with a softmax:

.. math::  \mathcal{L}_N = -\mathbb{E}\left[\log \frac{f(x_{+}, c)}{\sum_{x_j \in X} f(x_j, c)}\right],
           \qquad f(x, c) = \exp(\mathrm{sim}(x, c) / \tau)

It is a cross-entropy whose "class" is the index of the positive among the candidates,
which is how :func:`info_nce` computes it. Instance discrimination (Wu et al. 2018), MoCo
(He et al. 2020), SimCLR (Chen et al. 2020) and CLIP (Radford et al. 2021) all use it and
differ in where the negatives come from: a memory bank, a queue, the rest of the batch,
or the other modality.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cvkit.train.losses import Reduction, reduce_loss


def _check_temperature(temperature: float | torch.Tensor) -> None:
    t = torch.as_tensor(temperature)
    if t.numel() != 1 or not bool(t > 0):
        raise ValueError(f"temperature must be one positive number, got {temperature!r}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    for name, t in zip(names, (a, b)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a (B, D) tensor of embeddings, got {got}")
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape (B, D), got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    negative_keys: torch.Tensor | None = None,
    temperature: float | torch.Tensor = 0.1,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    r"""InfoNCE with cosine similarity: each query must pick out its own key among the candidates.

    Embeddings are L2-normalised first, so the score is the cosine similarity over the temperature.

    * ``negative_keys=None`` (SimCLR, CLIP): the candidates of query i are all B positive keys;
      key i is the positive, the other B - 1 are negatives. Logits (B, B), target ``i``.
    * ``negative_keys`` (K, D) given (MoCo's queue, a memory bank): the candidates of query i are its
      positive key and the K shared negatives. Logits (B, 1 + K), target ``0``.

    Args:
        query: (B, D) float.
        positive_key: (B, D) float, row i is the positive of query i.
        negative_keys: (K, D) float or ``None``.
        temperature: :math:`\tau > 0` (a float, or a scalar tensor to learn it as CLIP does).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (then (B,) per-query losses).

    Returns:
        scalar float tensor (or (B,)).

    Raises:
        ValueError: shapes that do not match, a non-positive temperature, or an unknown reduction.
    """
    _check_pair(query, positive_key, ("query", "positive_key"))
    _check_temperature(temperature)
    q = F.normalize(query.float(), dim=1)
    k = F.normalize(positive_key.float(), dim=1)
    if negative_keys is None:
        logits = q @ k.T / temperature  # (B, B): row i scores query i against every key
        targets = torch.arange(q.shape[0], device=q.device)
    else:
        if negative_keys.dim() != 2 or negative_keys.shape[1] != q.shape[1]:
            raise ValueError(f"negative_keys must be (K, {q.shape[1]}), got {tuple(negative_keys.shape)}")
        n = F.normalize(negative_keys.float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
        negative = q @ n.T  # (B, K)
        logits = torch.cat([positive, negative], dim=1) / temperature  # (B, 1 + K)
        targets = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return reduce_loss(F.cross_entropy(logits, targets, reduction="none"), reduction)


def nt_xent(
    z1: torch.Tensor, z2: torch.Tensor, temperature: float | torch.Tensor = 0.5, reduction: Reduction = "mean"
) -> torch.Tensor:
    r"""SimCLR's normalised temperature-scaled cross-entropy (Chen et al. 2020, eq. 1).

    The 2B embeddings of two views form the batch. For the pair (i, j) of views of one image,

    .. math::  \ell_{i,j} = -\log \frac{\exp(\mathrm{sim}(z_i, z_j)/\tau)}{\sum_{k \ne i} \exp(\mathrm{sim}(z_i, z_k)/\tau)}

    so every anchor has one positive and 2B - 2 negatives (both views of the other images).
    The loss averages :math:`\ell` over all 2B anchors, i.e. both (i, j) and (j, i).

    Args:
        z1, z2: (B, D) float, projections of the first and second view; row i of each comes from image i.
        temperature: :math:`\tau > 0` (SimCLR: 0.5 on CIFAR-10, 0.1 on ImageNet with large batches).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (then (2B,) losses: anchors from z1, then from z2).

    Returns:
        scalar float tensor (or (2B,)).

    Raises:
        ValueError: mismatched or non-2-D inputs, B < 2, a non-positive temperature.
    """
    _check_pair(z1, z2, ("z1", "z2"))
    _check_temperature(temperature)
    b = z1.shape[0]
    if b < 2:
        raise ValueError(f"nt_xent needs at least 2 images per batch (B >= 2) so there are negatives, got B = {b}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, D)
    sim = z @ z.T / temperature  # (2B, 2B)
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))  # k != i
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)  # the other view of the same image
    return reduce_loss(F.cross_entropy(sim, targets, reduction="none"), reduction)


def byol_loss(prediction: torch.Tensor, target: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    r"""BYOL's regression loss (Grill et al. 2020, eq. 2): the squared distance of L2-normalised vectors.

    .. math::  \mathcal{L} = \lVert \bar q - \bar z' \rVert_2^2 = 2 - 2 \frac{\langle q, z' \rangle}{\lVert q \rVert \lVert z' \rVert}

    The target is detached here (the stop-gradient of BYOL: only the online network learns from this loss).

    Args:
        prediction: (B, D) float, the online network's prediction q.
        target: (B, D) float, the target network's projection z' of the other view.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (then (B,)).

    Returns:
        scalar float tensor in [0, 4] (or (B,)).

    Raises:
        ValueError: mismatched or non-2-D inputs, or an unknown reduction.
    """
    _check_pair(prediction, target, ("prediction", "target"))
    p = F.normalize(prediction.float(), dim=1)
    z = F.normalize(target.detach().float(), dim=1)
    return reduce_loss(2 - 2 * (p * z).sum(dim=1), reduction)


__all__ = ["byol_loss", "info_nce", "nt_xent"]
