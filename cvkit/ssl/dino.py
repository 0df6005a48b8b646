r"""DINO: self-distillation with no labels (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021).

A student network learns to match a momentum teacher's output distribution over K
"prototype" dimensions, across different views (crops) of the same image. The student's
distribution is a softmax with temperature :math:`\tau_s` (the lecture's formula):

.. math::  P_s(x)^{(i)} = \frac{\exp(g_{\theta_s}(x)^{(i)}/\tau_s)}{\sum_{k=1}^K \exp(g_{\theta_s}(x)^{(k)}/\tau_s)}

and the teacher's is the same with its own output **centred** and a lower temperature
:math:`\tau_t` (**sharpened**). Both tricks fight collapse, from opposite sides:
centring (subtracting a running mean ``c`` of the teacher's outputs, eq. 4) stops one
dimension from dominating but pushes towards the uniform distribution; sharpening
pushes away from uniform. The loss is :math:`-\sum P_t \log P_s` over pairs of different views.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.layers.heads import feature_dim_of, mlp_head
from cvkit.ssl.momentum import ema_update_, frozen_copy


def dino_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    center: torch.Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> torch.Tensor:
    r"""DINO's cross-entropy between the centred, sharpened teacher and the student, over pairs of different views.

    .. math::  \mathcal{L} = \frac{1}{|\text{pairs}|} \sum_{t} \sum_{s \ne t} \frac{1}{B} \sum_b
               -\,\mathrm{softmax}\!\left(\frac{g_t(x^t_b) - c}{\tau_t}\right) \cdot \log \mathrm{softmax}\!\left(\frac{g_s(x^s_b)}{\tau_s}\right)

    Args:
        student_logits: (V_s, B, K) float, the student's outputs for V_s views (global views first).
        teacher_logits: (V_t, B, K) float, the teacher's outputs for the V_t global views (V_t <= V_s);
            teacher view t and student view t are the same crop, so that pair is skipped.
        center: (K,) float, the running mean of the teacher's outputs.
        student_temperature: :math:`\tau_s` (DINO: 0.1).
        teacher_temperature: :math:`\tau_t` (DINO: 0.04 to 0.07); lower is sharper.

    Returns:
        scalar float tensor. No gradient flows into the teacher.

    Raises:
        ValueError: mismatched shapes, V_t > V_s, fewer than 2 views, or non-positive temperatures.
    """
    if student_logits.dim() != 3 or teacher_logits.dim() != 3:
        raise ValueError(
            f"student_logits and teacher_logits must be (views, B, K), got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    vs, b, k = student_logits.shape
    vt = teacher_logits.shape[0]
    if teacher_logits.shape[1:] != (b, k) or center.shape != (k,):
        raise ValueError(
            f"need teacher_logits (V_t, {b}, {k}) and center ({k},), got {tuple(teacher_logits.shape)} and {tuple(center.shape)}"
        )
    if vt > vs or vs < 2:
        raise ValueError(
            f"need at least 2 student views and no more teacher views than student views, got V_s={vs}, V_t={vt}"
        )
    if student_temperature <= 0 or teacher_temperature <= 0:
        raise ValueError(f"temperatures must be positive, got {student_temperature} and {teacher_temperature}")
    teacher = F.softmax(
        (teacher_logits.detach().float() - center) / teacher_temperature, dim=-1
    )  # (V_t, B, K) centre, sharpen
    student = F.log_softmax(student_logits.float() / student_temperature, dim=-1)  # (V_s, B, K)
    total, pairs = student.new_zeros(()), 0
    for t in range(vt):
        for s in range(vs):
            if s == t:
                continue  # same crop: nothing to learn
            total = total + (-(teacher[t] * student[s]).sum(dim=-1)).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    r"""DINO eq. 4: :math:`c \leftarrow m\,c + (1 - m)\,\frac{1}{B}\sum_b g_{\theta_t}(x_b)`, averaged over views too.

    Args:
        center: (K,) float.
        teacher_logits: (V, B, K) or (B, K) float.
        momentum: m in [0, 1] (DINO: 0.9).

    Returns:
        the new (K,) centre (a new tensor; ``center`` is not modified).

    Raises:
        ValueError: ``momentum`` outside [0, 1] or a last dimension other than K.
    """
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if teacher_logits.shape[-1] != center.shape[0]:
        raise ValueError(f"teacher_logits must end with K = {center.shape[0]}, got {tuple(teacher_logits.shape)}")
    batch_mean = teacher_logits.detach().float().reshape(-1, center.shape[0]).mean(dim=0)  # (K,)
    return momentum * center + (1 - momentum) * batch_mean


class DINOHead(nn.Module):
    """DINO's projection head: a 3-layer MLP to a bottleneck, L2 normalisation, then K unit-norm prototypes.

    The last layer's weight rows are normalised (DINO's ``norm_last_layer``, its weight-norm with g = 1),
    so each output is a cosine similarity in [-1, 1] before the temperature.

    Shapes:
        (B, in_dim) -> (B, out_dim) float.
    """

    def __init__(self, in_dim: int, out_dim: int = 256, hidden_dim: int = 256, bottleneck_dim: int = 64) -> None:
        super().__init__()
        self.mlp = mlp_head(in_dim, hidden_dim, bottleneck_dim, layers=3, batch_norm=False)
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck_dim) * bottleneck_dim**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)  # (B, bottleneck)
        return x @ F.normalize(self.prototypes, dim=-1).T  # (B, K)


class DINO(nn.Module):
    """Student (encoder + :class:`DINOHead`), momentum teacher, and the running centre.

    Args:
        encoder: backbone mapping (B, C, H, W) to (B, D), with ``feature_dim`` = D (any input size: global
            and local crops may differ in resolution).
        out_dim: K, the number of prototypes (DINO: 65536; small data needs far fewer).
        hidden_dim, bottleneck_dim: widths of the head.
        momentum: the teacher's EMA momentum (DINO: 0.996 rising to 1).
        center_momentum: m of the centre (DINO: 0.9).
        student_temperature, teacher_temperature: :math:`\\tau_s`, :math:`\\tau_t`.
        global_views: how many of the views passed to :meth:`forward` are global crops (the teacher sees only those).

    Attributes:
        encoder, head: the student (``encoder`` is what a probe reads).
        teacher_encoder, teacher_head: the teacher (``requires_grad=False``).
        center: (K,) buffer. num_views: 2 (global views; pass more views for multi-crop).

    Shapes:
        ``forward(*views)``: V >= 2 batches (B, C, H_v, W_v), the global ones first -> scalar loss.

    In training mode, :meth:`forward` first moves the teacher one EMA step and afterwards updates the centre.
    """

    num_views = 2

    def __init__(
        self,
        encoder: nn.Module,
        out_dim: int = 256,
        hidden_dim: int = 256,
        bottleneck_dim: int = 64,
        momentum: float = 0.99,
        center_momentum: float = 0.9,
        student_temperature: float = 0.1,
        teacher_temperature: float = 0.04,
        global_views: int = 2,
    ) -> None:
        super().__init__()
        if global_views < 1:
            raise ValueError(f"global_views must be >= 1, got {global_views}")
        self.encoder = encoder
        self.head = DINOHead(feature_dim_of(encoder), out_dim, hidden_dim, bottleneck_dim)
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(out_dim))
        self.momentum = momentum
        self.center_momentum = center_momentum
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.global_views = global_views

    @torch.no_grad()
    def momentum_update(self) -> None:
        """One EMA step of the teacher towards the student."""
        ema_update_(self.teacher_encoder, self.encoder, self.momentum)
        ema_update_(self.teacher_head, self.head, self.momentum)

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        if len(views) < max(2, self.global_views):
            raise ValueError(f"DINO needs at least {max(2, self.global_views)} views (global first), got {len(views)}")
        if self.training:
            self.momentum_update()
        student = torch.stack(_run_grouped(lambda x: self.head(self.encoder(x)), views))  # (V, B, K)
        with torch.no_grad():
            teacher = torch.stack(
                _run_grouped(lambda x: self.teacher_head(self.teacher_encoder(x)), views[: self.global_views])
            )
        loss = dino_loss(student, teacher, self.center, self.student_temperature, self.teacher_temperature)
        if self.training:
            self.center.copy_(update_center(self.center, teacher, self.center_momentum))
        return loss

    def extra_repr(self) -> str:
        return (
            f"out_dim={self.center.shape[0]}, momentum={self.momentum}, tau_s={self.student_temperature}, "
            f"tau_t={self.teacher_temperature}, global_views={self.global_views}"
        )


def _run_grouped(fn, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Apply ``fn`` to each view, batching consecutive views of one resolution into a single call (as DINO does)."""
    outs: list[torch.Tensor] = []
    i = 0
    while i < len(views):
        j = i
        while j + 1 < len(views) and views[j + 1].shape == views[i].shape:
            j += 1
        out = fn(torch.cat(views[i : j + 1]))  # ((j - i + 1) B, K)
        outs.extend(out.chunk(j - i + 1))
        i = j + 1
    return outs
