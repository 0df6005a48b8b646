r"""DeiT: data-efficient image transformers through attention (Touvron et al. 2021).

DeiT trains a ViT on ImageNet alone (no JFT-300M) with strong augmentation, regularisation, and a
**distillation token**: a second learned token next to the class token, whose output goes to its own
head and is trained to agree with a teacher (a CNN works best: it passes on its inductive bias).

Soft distillation (eq. 2), with student logits :math:`Z_s`, teacher logits :math:`Z_t`, temperature :math:`\tau`:

.. math:: \mathcal{L} = (1 - \lambda)\, \mathcal{L}_{CE}(\psi(Z_s), y) + \lambda \tau^2\, \mathrm{KL}(\psi(Z_t / \tau), \psi(Z_s / \tau))

Hard-label distillation (eq. 3), with the teacher's decision :math:`y_t = \arg\max_c Z_t(c)`:

.. math:: \mathcal{L} = \tfrac12 \mathcal{L}_{CE}(\psi(Z_s), y) + \tfrac12 \mathcal{L}_{CE}(\psi(Z_s), y_t)

With the distillation token, the class head's logits enter the first term and the distillation
head's the second; at test time the two heads' softmax inputs are averaged.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.models.registry import register_model
from cvkit.models.vit import VIT_MINI, VIT_SMOKE, VisionTransformer, ViTConfig
from cvkit.train.loop import StepOutput

Distillation = Literal["hard", "soft"]
DISTILLATIONS = ("hard", "soft")


def distillation_loss(
    cls_logits: torch.Tensor,
    dist_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_logits: torch.Tensor,
    kind: Distillation = "hard",
    alpha: float = 0.5,
    tau: float = 3.0,
) -> torch.Tensor:
    """DeiT's distillation objective (eq. 2 soft, eq. 3 hard).

    Args:
        cls_logits: (B, K) logits of the class head (or of the only head).
        dist_logits: (B, K) logits of the distillation head.
        labels: (B,) int64 true classes.
        teacher_logits: (B, K) the teacher's logits (no gradient flows into them).
        kind: ``"hard"`` (the teacher's argmax as a label, weight 1/2 each) or ``"soft"`` (KL to the
            teacher's tempered softmax, weight ``alpha``).
        alpha: lambda, the weight of the soft distillation term.
        tau: the temperature of the soft term.

    Returns:
        Scalar float tensor, the mean loss over the batch.

    Raises:
        ValueError: shapes that disagree or an unknown kind.
    """
    if (
        cls_logits.shape != dist_logits.shape
        or cls_logits.shape != teacher_logits.shape
        or labels.shape != cls_logits.shape[:1]
    ):
        raise ValueError(
            f"expected cls/dist/teacher logits (B, K) and labels (B,), got {tuple(cls_logits.shape)}, "
            f"{tuple(dist_logits.shape)}, {tuple(teacher_logits.shape)}, {tuple(labels.shape)}"
        )
    teacher_logits = teacher_logits.detach().float()
    if kind == "hard":
        return 0.5 * F.cross_entropy(cls_logits.float(), labels) + 0.5 * F.cross_entropy(
            dist_logits.float(), teacher_logits.argmax(1)
        )
    if kind == "soft":
        student = F.log_softmax(dist_logits.float() / tau, dim=1)
        teacher = F.log_softmax(teacher_logits / tau, dim=1)
        kl = F.kl_div(student, teacher, reduction="batchmean", log_target=True)
        return (1 - alpha) * F.cross_entropy(cls_logits.float(), labels) + alpha * tau**2 * kl
    raise ValueError(f"kind must be one of {DISTILLATIONS}, got {kind!r}")


def distillation_step(teacher: nn.Module, kind: Distillation = "hard", alpha: float = 0.5, tau: float = 3.0):
    """A training step for :func:`cvkit.train.fit` that distils ``teacher`` into a distilled ViT.

    The teacher runs in eval mode without gradients, moved to the device of the batches on first use. Accuracy is counted with the averaged heads
    (DeiT's test-time rule). In evaluation (``model.training`` is False) the step returns the plain
    cross-entropy of the averaged logits, so validation losses compare with other models'.

    Args:
        teacher: any classifier taking the same images, returning (B, K) logits.
        kind, alpha, tau: see :func:`distillation_loss`.

    Returns:
        ``step(model, batch) -> StepOutput`` for ``fit(model, loader, step=...)``.

    Raises:
        ValueError: (when called) a student without a distillation token.
    """
    if kind not in DISTILLATIONS:
        raise ValueError(f"kind must be one of {DISTILLATIONS}, got {kind!r}")
    teacher.eval()

    def step(model: nn.Module, batch) -> StepOutput:
        images, labels = batch[0], batch[1]
        student = getattr(model, "_orig_mod", model)  # unwrap torch.compile
        cls_logits, dist_logits = student.forward_heads(images)
        if dist_logits is None:
            raise ValueError("the student has no distillation token: build it with distilled=True")
        averaged = (cls_logits + dist_logits) / 2
        if model.training:
            if next(teacher.parameters()).device != images.device:
                teacher.to(images.device)  # follow the data (fit moves the student and the batches, not the teacher)
            with torch.no_grad():
                teacher_logits = teacher(images)
            loss = distillation_loss(cls_logits, dist_logits, labels, teacher_logits, kind, alpha, tau)
        else:
            loss = F.cross_entropy(averaged.float(), labels)
        return StepOutput(loss, labels.shape[0], (averaged.argmax(1) == labels).sum())

    return step


@register_model(
    "deit_tiny_distilled_patch4_28",
    task="classification",
    input_shape=(1, 28, 28),
    output_shape=(10,),
    smoke_kwargs=VIT_SMOKE,
    reference="Touvron et al. 2021 (DeiT)",
)
def deit_tiny_distilled_patch4_28(**overrides) -> VisionTransformer:
    """The Fashion-MNIST ViT of ``vit_tiny_patch4_28`` with DeiT's distillation token and head."""
    return VisionTransformer(
        ViTConfig(img_size=28, patch_size=4, in_chans=1, num_classes=10, dim=48, distilled=True, **VIT_MINI),
        **overrides,
    )
