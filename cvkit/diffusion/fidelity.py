"""Measuring what guidance does: the share of generated samples that a classifier assigns to their conditioning class."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from cvkit.diffusion.samplers import sample
from cvkit.diffusion.schedules import NoiseSchedule


@torch.no_grad()
def guidance_class_share(
    model: Callable[..., torch.Tensor],
    classifier: Callable[[torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    scales: Sequence[float] = (0.0, 1.0, 3.0),
    *,
    num_classes: int = 10,
    samples_per_class: int = 4,
    num_steps: int = 20,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    seed: int = 0,
    device: str | torch.device | None = None,
) -> dict:
    r"""Does guidance make samples look like their class? The share of samples a classifier assigns to the class
    they were conditioned on, per guidance scale (the measurement behind Ho & Salimans 2022, Fig. 1 and Table 1).

    Every scale starts from the same noise (``seed``), so the columns of a grid differ only in the scale. Scale 0 is
    the unconditional model: its share is about 1 / ``num_classes`` (chance); a model that learned its classes scores
    higher at scale 1. Guidance (scale > 1) can raise the share further, until over-guided samples stop looking like
    any class: 12_diffusion measures both (its full-profile model falls from about 80% at scale 1 to 30% at scale 3).

    Args:
        model: a class-conditional noise predictor ``model(x_t, t, labels)`` (label -1: no class).
        classifier: ``classifier(images) -> (B, num_classes)`` logits for images in [0, 1].
        schedule: the :class:`~cvkit.diffusion.schedules.NoiseSchedule` the model was trained with.
        scales: guidance scales s to compare.
        num_classes: K; ``samples_per_class`` samples of each class per scale.
        num_steps: DDIM steps (deterministic, eta = 0).
        image_shape: (C, H, W) of one sample.
        seed: seed of the starting noise (a generator on ``device``).
        device: where to sample (default: the model's device).

    Returns:
        dict with ``shares`` ``{scale: float}``, ``labels`` (K * samples_per_class,) int64 (class-major),
        ``images`` ``{scale: (K * samples_per_class, C, H, W) float in [0, 1]}`` on the CPU and ``predicted``
        ``{scale: (K * samples_per_class,) int64}``.

    Raises:
        ValueError: no scales, or ``samples_per_class`` < 1.
    """
    if not scales or samples_per_class < 1:
        raise ValueError(f"need at least one scale and samples_per_class >= 1, got {list(scales)}, {samples_per_class}")
    if device is None:
        params = list(getattr(model, "parameters", lambda: [])())
        device = params[0].device if params else "cpu"
    labels = torch.arange(num_classes).repeat_interleave(samples_per_class)  # (K * n,) class-major
    shares, images, predicted = {}, {}, {}
    for s in scales:
        g = torch.Generator(device).manual_seed(seed)
        out = sample(
            model,
            (len(labels), *image_shape),
            schedule,
            method="ddim",
            num_steps=num_steps,
            labels=labels,
            guidance_scale=float(s),
            generator=g,
            device=device,
        )
        x = ((out.images + 1) / 2).clamp(0, 1)  # [-1, 1] -> [0, 1]
        pred = torch.cat([classifier(chunk).argmax(1).cpu() for chunk in x.split(256)])
        images[s], predicted[s] = x.cpu(), pred
        shares[s] = (pred == labels).float().mean().item()
    return {"shares": shares, "labels": labels, "images": images, "predicted": predicted}
