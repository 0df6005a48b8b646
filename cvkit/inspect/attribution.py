r"""Which pixels made the network say that? Gradient saliency and Grad-CAM.

**Saliency** (Simonyan, Vedaldi & Zisserman, ICLR workshop 2014, section 3.1): the
gradient of the class score :math:`S_c` with respect to the input image; its magnitude,
maximised over colour channels, :math:`M_{ij} = \max_k |\partial S_c / \partial x_{k,i,j}|`,
shows which pixels would change the score most.

**Grad-CAM** (Selvaraju et al., ICCV 2017): take the feature maps :math:`A^k` of a
convolutional layer (the last one sees the most semantic, still spatial features), weight
each map by the spatial mean of the score's gradient,

.. math:: \alpha_k^c = \frac{1}{Z}\sum_i\sum_j \frac{\partial y^c}{\partial A^k_{ij}} \quad\text{(eq. 1)},
          \qquad L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A^k\Big) \quad\text{(eq. 2)},

and upsample the coarse map to the image. For a network ending in global average pooling
and one linear layer, :math:`\alpha_k^c` is the class weight :math:`w_k^c / Z` and Grad-CAM
equals the class activation map of Zhou et al. (CVPR 2016) up to that constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.inspect.hooks import recording


def _batch(image: torch.Tensor) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise ValueError(
            f"image must be (C, H, W) or (B, C, H, W), got {getattr(image, 'shape', type(image).__name__)}"
        )
    return image if image.dim() == 4 else image[None]


def _targets(logits: torch.Tensor, target: int | torch.Tensor | None) -> torch.Tensor:
    if logits.dim() != 2:
        raise ValueError(f"the model must return (B, num_classes) scores, got shape {tuple(logits.shape)}")
    if target is None:
        return logits.argmax(dim=1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(logits.shape[0])
    if t.numel() != logits.shape[0] or int(t.min()) < 0 or int(t.max()) >= logits.shape[1]:
        raise ValueError(f"target must be a class index in [0, {logits.shape[1]}) or one per image, got {target!r}")
    return t


def saliency_map(model: nn.Module, image: torch.Tensor, target: int | torch.Tensor | None = None) -> torch.Tensor:
    """Vanilla gradient saliency: max over channels of |d score / d pixel|.

    Args:
        model: a classifier returning (B, K) scores (logits); run in eval mode.
        image: (C, H, W) or (B, C, H, W) float, as the model expects it (normalized if it was trained so).
        target: the class to explain (``None``: the predicted class; an int or one index per image).

    Returns:
        (H, W) for one image or (B, H, W), float32, non-negative.

    Raises:
        ValueError: a malformed image or target, or a model that does not return (B, K) scores.
    """
    x = _batch(image).detach().clone().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
        t = _targets(logits, target)
        score = logits.gather(1, t[:, None]).sum()
        (grad,) = torch.autograd.grad(score, x)
    finally:
        model.train(was_training)
    sal = grad.abs().amax(dim=1).float()  # (B, H, W)
    return sal[0] if image.dim() == 3 else sal


@dataclass
class GradCAMResult:
    """Grad-CAM for a batch.

    Attributes:
        cam: (B, H, W) float in [0, inf), upsampled to the image (bilinear); the ReLU of eq. 2.
        coarse: (B, h, w), the map at the layer's resolution.
        weights: (B, K) the channel weights alpha_k^c of eq. 1.
        target: (B,) the explained class per image.
        score: (B,) the explained class's score.
    """

    cam: torch.Tensor
    coarse: torch.Tensor
    weights: torch.Tensor
    target: torch.Tensor
    score: torch.Tensor

    def normalized(self) -> torch.Tensor:
        """``cam`` divided by its maximum per image, in [0, 1] (all zeros stay zeros)."""
        peak = self.cam.flatten(1).amax(dim=1).clamp_min(1e-12)
        return self.cam / peak[:, None, None]


def grad_cam(
    model: nn.Module, image: torch.Tensor, layer: str, target: int | torch.Tensor | None = None
) -> GradCAMResult:
    """Grad-CAM of one convolutional layer (Selvaraju et al. 2017, eq. 1-2).

    Args:
        model: a classifier returning (B, K) scores; run in eval mode.
        image: (C, H, W) or (B, C, H, W) float.
        layer: name of the module whose (B, K_l, h, w) output to explain, e.g. ``"layer4"`` in a ResNet
            or ``"features.28"`` in VGG-16.
        target: class to explain (``None``: the predicted class).

    Returns:
        GradCAMResult (``cam`` upsampled to H x W, ``coarse`` at h x w, the weights, targets and scores).

    Raises:
        KeyError: unknown layer.
        ValueError: a malformed image/target, or a layer whose output is not (B, K_l, h, w).
    """
    x = _batch(image).detach()
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), recording(model, [layer]) as store:
            logits = model(x)
            if layer not in store:
                raise ValueError(f"layer {layer!r} did not run in the forward pass")
            acts = store[layer]
            if not isinstance(acts, torch.Tensor) or acts.dim() != 4:
                raise ValueError(
                    f"layer {layer!r} must output (B, K, h, w) feature maps, got {getattr(acts, 'shape', type(acts).__name__)}"
                )
            t = _targets(logits, target)
            score = logits.gather(1, t[:, None])[:, 0]  # (B,)
            (grads,) = torch.autograd.grad(score.sum(), acts)  # (B, K, h, w); images do not interact in eval mode
    finally:
        model.train(was_training)
    weights = grads.mean(dim=(2, 3))  # eq. 1: alpha_k = global average of the gradient, (B, K)
    coarse = F.relu((weights[:, :, None, None] * acts.detach()).sum(dim=1))  # eq. 2: (B, h, w)
    cam = F.interpolate(coarse[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return GradCAMResult(cam.float(), coarse.float(), weights.float(), t, score.detach().float())
