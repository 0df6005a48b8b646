r"""Evaluating a representation: the linear probe and the k-nearest-neighbour classifier.

The standard protocol of self-supervised learning (Zhang et al. 2016; Oord et al. 2018;
Chen et al. 2020; He et al. 2020): freeze the pre-trained encoder, compute its features
for labelled images, train only a linear classifier (multinomial logistic regression) on
them, and report its test accuracy. A good representation makes the classes linearly
separable. Two baselines frame the number: the same probe on a **randomly initialised**
encoder (what the architecture gives for free) and a **supervised** encoder trained on the
labels with the same budget (what labels buy).

The k-NN classifier (Wu et al. 2018; Caron et al. 2021) needs no training at all: it votes
among the nearest training features by cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.runtime import pick_device


@torch.no_grad()
def extract_features(
    encoder: nn.Module, images: torch.Tensor, batch_size: int = 1024, device: str | torch.device | None = None
) -> torch.Tensor:
    """Features of a frozen encoder, in eval mode (BatchNorm uses running statistics), in batches.

    Args:
        encoder: maps (B, C, H, W) float to (B, D).
        images: (N, C, H, W) uint8 in [0, 255] or float in [0, 1].
        batch_size: images per forward pass.
        device: where to compute (``None``: the encoder's device).

    Returns:
        (N, D) float32 on the computing device.

    Raises:
        ValueError: ``images`` is not 4-D, or the encoder does not return (B, D).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    if device is None:
        first = next(encoder.parameters(), None)
        dev = first.device if first is not None else pick_device()
    else:
        dev = pick_device(device)
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for i in range(0, images.shape[0], batch_size):
            x = images[i : i + batch_size].to(dev)
            x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
            f = encoder(x)
            if f.dim() != 2:
                raise ValueError(
                    f"the encoder must return (B, D) features, got {tuple(f.shape)}; pool or flatten its output"
                )
            out.append(f.float())
    finally:
        encoder.train(was_training)
    return torch.cat(out)


@dataclass
class ProbeResult:
    """Accuracies of a linear probe (and optionally k-NN) on frozen features.

    Attributes:
        train_accuracy, test_accuracy: fractions in [0, 1] of the linear classifier.
        knn_accuracy: test accuracy of the k-NN classifier (``None`` when not computed).
        classifier: the trained ``nn.Linear`` (on standardised features: use ``mean``/``std``).
        mean, std: (D,) statistics of the training features used to standardise.
    """

    train_accuracy: float
    test_accuracy: float
    knn_accuracy: float | None = None
    classifier: nn.Linear | None = None
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    def __repr__(self) -> str:
        knn = f", knn={self.knn_accuracy:.3f}" if self.knn_accuracy is not None else ""
        return f"ProbeResult(test={self.test_accuracy:.3f}, train={self.train_accuracy:.3f}{knn})"


def fit_linear_classifier(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
) -> nn.Linear:
    r"""Multinomial logistic regression by full-batch L-BFGS: minimise mean cross-entropy + :math:`\frac{\lambda}{2}\lVert W \rVert^2`.

    Deterministic (no mini-batches, no random init: weights start at zero), and the objective is
    scikit-learn's ``LogisticRegression`` with ``C = 1 / (lambda N)``, against which it is tested.

    Args:
        features: (N, D) float.
        labels: (N,) int64 in [0, K).
        num_classes: K (default: ``labels.max() + 1``).
        weight_decay: :math:`\lambda` (the bias is not decayed).
        max_iter: L-BFGS iterations.

    Returns:
        the trained ``nn.Linear(D, K)`` on the features' device.

    Raises:
        ValueError: shapes that do not match.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"need features (N, D) and labels (N,), got {tuple(features.shape)} and {tuple(labels.shape)}")
    k = num_classes or int(labels.max()) + 1
    linear = nn.Linear(features.shape[1], k).to(features.device)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(
        linear.parameters(),
        lr=1,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )
    x, y = features.float(), labels.to(features.device)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(linear(x), y) + 0.5 * weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return linear


@torch.no_grad()
def knn_classify(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    features: torch.Tensor,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    batch_size: int = 1024,
) -> torch.Tensor:
    r"""Weighted k-NN on cosine similarity (Wu et al. 2018, sec. 3.4; DINO's k-NN evaluation).

    Each of the k most similar training features votes for its class with weight
    :math:`\exp(s_i / \tau)`.

    Args:
        train_features: (N, D); train_labels: (N,) int64; features: (M, D) to classify.
        k: neighbours; temperature: :math:`\tau`; num_classes: K (default: ``max label + 1``).

    Returns:
        (M,) int64 predicted classes.
    """
    kk = min(k, train_features.shape[0])
    ncls = num_classes or int(train_labels.max()) + 1
    bank = F.normalize(train_features.float(), dim=1)
    preds = []
    for i in range(0, features.shape[0], batch_size):
        q = F.normalize(features[i : i + batch_size].float(), dim=1)
        sim, idx = (q @ bank.T).topk(kk, dim=1)  # (m, k)
        votes = torch.zeros(q.shape[0], ncls, device=q.device)
        votes.scatter_add_(1, train_labels.to(q.device)[idx], (sim / temperature).exp())
        preds.append(votes.argmax(dim=1))
    return torch.cat(preds)


def linear_probe(
    encoder: nn.Module,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    test_images: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
    knn: int | None = 20,
    batch_size: int = 1024,
) -> ProbeResult:
    """Linear-probe (and k-NN) accuracy of a frozen encoder.

    Features are standardised with the training features' mean and standard deviation
    before the logistic regression (as MAE's probe does with a BatchNorm without affine).

    Args:
        encoder: maps (B, C, H, W) to (B, D); left unchanged (eval mode during extraction, then restored).
        train_images, test_images: (N, C, H, W) uint8 or float in [0, 1].
        train_labels, test_labels: (N,) int64.
        weight_decay, max_iter: of :func:`fit_linear_classifier`.
        knn: k of the k-NN accuracy (``None``: skip it).
        batch_size: for feature extraction.

    Returns:
        :class:`ProbeResult`.

    Raises:
        ValueError: images and labels of different lengths.
    """
    for name, x, y in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{name} images and labels differ in length: {x.shape[0]} vs {y.shape[0]}")
    f_train = extract_features(encoder, train_images, batch_size)
    f_test = extract_features(encoder, test_images, batch_size)
    y_train, y_test = train_labels.to(f_train.device), test_labels.to(f_train.device)
    mean, std = f_train.mean(dim=0), f_train.std(dim=0).clamp_min(1e-6)
    z_train, z_test = (f_train - mean) / std, (f_test - mean) / std
    k = int(max(int(y_train.max()), int(y_test.max()))) + 1
    clf = fit_linear_classifier(z_train, y_train, k, weight_decay, max_iter)
    with torch.no_grad():
        train_acc = (clf(z_train).argmax(1) == y_train).float().mean().item()
        test_acc = (clf(z_test).argmax(1) == y_test).float().mean().item()
    knn_acc = None
    if knn:
        knn_acc = (knn_classify(f_train, y_train, f_test, knn, num_classes=k) == y_test).float().mean().item()
    return ProbeResult(train_acc, test_acc, knn_acc, clf, mean, std)
