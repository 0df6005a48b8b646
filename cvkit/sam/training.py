r"""Training and evaluating the small SAM on synthetic shapes with simulated prompts.

The loss follows SAM (Kirillov et al. 2023, sec. 3 "Losses and training"):

* mask loss: focal loss + dice loss in the ratio 20 : 1 (the focal loss from torchvision.ops,
  Lin et al. 2017; the dice loss of Milletari et al. 2016);
* **ambiguity**: for a single-point prompt the model predicts 3 masks and only the one with the
  lowest loss is back-propagated (any of them may be "the" right answer); for a box or point+box
  prompt it predicts one mask;
* IoU head: mean squared error between each predicted IoU and the actual IoU of that mask.

The score reported per prompt kind is mIoU: the mean over held-out objects of the IoU between the
predicted mask (for points, the candidate with the highest *predicted* IoU, as at inference) and
the object's true mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from cvkit.sam.model import SamOutput, SmallSAM
from cvkit.sam.prompts import PROMPT_KINDS, PromptKind, simulate_prompts
from cvkit.segmentation.metrics import paired_mask_iou


def instance_pairs(dataset, indices: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (image, object) pair of a :class:`cvkit.data.ShapesDataset` as tensors.

    Returns:
        images (M, 3, H, W) uint8 (an image repeated once per object) and masks (M, H, W) bool.
    """
    images, masks = [], []
    for i in indices if indices is not None else range(len(dataset)):
        s = dataset[i]
        for m in s.masks:
            images.append(s.image.mul(255).round().to(torch.uint8))
            masks.append(m)
    if not images:
        raise ValueError("the dataset has no objects")
    return torch.stack(images), torch.stack(masks)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice (Milletari et al. 2016) per mask: logits (B, K, H, W), target (B, H, W) -> (B, K)."""
    p = logits.sigmoid().flatten(2)  # (B, K, HW)
    t = target[:, None].float().flatten(2)  # (B, 1, HW)
    return 1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)


@dataclass
class SamLoss:
    """``loss`` (scalar, what to minimise), ``mask_loss`` and ``iou_loss`` (scalars), ``chosen`` (B,) index of the back-propagated mask."""

    loss: torch.Tensor
    mask_loss: torch.Tensor
    iou_loss: torch.Tensor
    chosen: torch.Tensor


def sam_loss(out: SamOutput, target: torch.Tensor, focal_weight: float = 20.0, dice_weight: float = 1.0) -> SamLoss:
    """SAM's loss: min over candidate masks of (20 focal + 1 dice), plus the IoU-prediction MSE.

    Args:
        out: model output with masks (B, K, H, W) logits and iou (B, K).
        target: (B, H, W) bool true masks.

    Returns:
        :class:`SamLoss`.

    Raises:
        ValueError: masks and target differ in size.
    """
    logits = out.masks.float()
    if logits.shape[-2:] != target.shape[-2:] or logits.shape[0] != target.shape[0]:
        raise ValueError(f"masks {tuple(logits.shape)} and target {tuple(target.shape)} must match in batch and size")
    t = target[:, None].float().expand_as(logits)
    focal = sigmoid_focal_loss(logits, t, alpha=0.25, gamma=2.0, reduction="none").flatten(2).mean(-1)  # (B, K)
    per_mask = focal_weight * focal + dice_weight * dice_loss(logits, target)  # (B, K)
    best, chosen = per_mask.min(dim=1)  # only the best candidate learns (ambiguity-aware)
    iou_loss = F.mse_loss(out.iou.float(), paired_mask_iou(logits.detach(), target[:, None]))
    mask_loss = best.mean()
    return SamLoss(mask_loss + iou_loss, mask_loss, iou_loss, chosen)


def sam_step(
    kinds: Sequence[PromptKind] = PROMPT_KINDS,
    box_noise: float = 0.1,
    focal_weight: float = 20.0,
    dice_weight: float = 1.0,
):
    """A ``step(model, (images, masks)) -> StepOutput`` for :func:`cvkit.train.fit`.

    Successive batches cycle through ``kinds``; single-point prompts use the 3-mask output, the
    others the single mask (SAM's rule). Images may be uint8 (they are scaled to [0, 1]).
    ``focal_weight``/``dice_weight`` as in :func:`sam_loss` (SAM: 20 and 1).

    Raises:
        ValueError: an unknown prompt kind.
    """
    from cvkit.train import StepOutput

    for k in kinds:
        if k not in PROMPT_KINDS:
            raise ValueError(f"unknown prompt kind {k!r}; choose from {PROMPT_KINDS}")
    counter = {"n": 0}

    def step(model: SmallSAM, batch) -> StepOutput:
        images, masks = batch[0], batch[1].bool()
        images = images.float() / 255 if images.dtype == torch.uint8 else images
        kind = kinds[counter["n"] % len(kinds)]
        counter["n"] += 1
        prompts = simulate_prompts(masks, kind, box_noise=box_noise)
        out = model(images, multimask=(kind == "point"), **prompts.as_kwargs())
        return StepOutput(sam_loss(out, masks, focal_weight, dice_weight).loss, images.shape[0])

    return step


@torch.no_grad()
def evaluate_prompts(
    model: SmallSAM,
    images: torch.Tensor,
    masks: torch.Tensor,
    kinds: Sequence[PromptKind] = PROMPT_KINDS,
    batch_size: int = 128,
    seed: int = 0,
    box_noise: float = 0.1,
) -> dict[str, dict[str, float]]:
    """mIoU on held-out objects for each prompt kind.

    Args:
        model: the trained model (evaluated in eval mode, restored afterwards).
        images: (M, 3, H, W) uint8 or float in [0, 1]; masks: (M, H, W) bool (see :func:`instance_pairs`).
        kinds: prompt kinds to evaluate. seed: seed for the simulated prompts (the same for every model).

    Returns:
        ``{kind: {"miou": ..., "oracle_miou": ..., "iou_error": ...}}``: ``miou`` uses the candidate
        with the highest predicted IoU, ``oracle_miou`` the best candidate (equal for one mask), and
        ``iou_error`` is the mean absolute error of the predicted IoU of the chosen mask.
    """
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    results = {}
    try:
        for kind in kinds:
            g = torch.Generator().manual_seed(seed)
            chosen, oracle, err = [], [], []
            for start in range(0, images.shape[0], batch_size):
                x = images[start : start + batch_size].to(device)
                x = x.float() / 255 if x.dtype == torch.uint8 else x
                m = masks[start : start + batch_size].to(device).bool()
                prompts = simulate_prompts(m, kind, box_noise=box_noise, generator=g)
                out = model(x, multimask=(kind == "point"), **prompts.as_kwargs())
                ious = paired_mask_iou(out.masks, m[:, None])  # (B, K)
                pick = out.iou.argmax(dim=1, keepdim=True)
                chosen.append(ious.gather(1, pick).squeeze(1))
                oracle.append(ious.max(dim=1).values)
                err.append((out.iou.gather(1, pick) - ious.gather(1, pick)).abs().squeeze(1))
            results[kind] = {
                "miou": torch.cat(chosen).mean().item(),
                "oracle_miou": torch.cat(oracle).mean().item(),
                "iou_error": torch.cat(err).mean().item(),
            }
    finally:
        model.train(was)
    return results
