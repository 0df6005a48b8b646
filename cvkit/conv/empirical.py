r"""Measured receptive fields: back-propagate from one unit to the input image.

:func:`empirical_receptive_field` back-propagates from one unit to the input
image: the pixels with a non-zero gradient are the ones that unit depends on. In
``mode="support"`` it does so on a copy of the model made linear and positive (max-pools
become average pools of the same geometry, weights become small positive numbers, inputs
positive), so no ReLU or max-pool hides part of the field and the support's bounding box
is exactly the analytic field clipped to the image. In ``mode="gradient"`` it uses the
model as it is: the gradient magnitude is the *effective* receptive field (Luo et al.,
NeurIPS 2016), which concentrates in the centre of the analytic one.

:func:`conv_chain` builds the plain chain of convolutions that :func:`cvkit.conv.receptive_field.receptive_field_chain`
describes with numbers, so the formula and the measurement can be compared on the same layers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn as nn

from cvkit.conv.rules import ReceptiveFieldError, pair
from cvkit.inspect.hooks import get_module


@dataclass
class EmpiricalReceptiveField:
    """What one unit's input gradient shows.

    Attributes:
        layer: the module whose output the unit belongs to.
        unit: (y, x) of the unit in that output.
        gradient: (H, W) float, |d unit / d input| summed over input channels.
        support: (H, W) bool, where the gradient is non-zero.
        box: (x1, y1, x2, y2) bounding box of the support, exclusive ends (the kit's ``xyxy`` pixels).
    """

    layer: str
    unit: tuple[int, int]
    gradient: torch.Tensor
    support: torch.Tensor
    box: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(rows, cols) of the support's bounding box."""
        x1, y1, x2, y2 = self.box
        return (y2 - y1, x2 - x1)


def linear_positive_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with the same geometry in which every input pixel of a unit's field matters.

    Max-pools become average pools with the same window (a max passes gradient to one input only),
    conv and linear weights become positive (uniform in [0.5, 1.5] / fan-in, so channels differ and
    nothing cancels), biases zero, BatchNorm the identity; in eval mode. With a positive input every
    ReLU is then the identity and the input gradient of a unit is non-zero exactly on its field.

    Raises:
        ReceptiveFieldError: a max-pool with dilation (no average-pool twin).
    """
    twin = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(0)
    for name, module in list(twin.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                if pair(child.dilation) != (1, 1):
                    raise ReceptiveFieldError(f"{name}.{child_name}: a dilated max-pool has no average-pool twin")
                setattr(
                    module,
                    child_name,
                    nn.AvgPool2d(
                        child.kernel_size, child.stride, child.padding, child.ceil_mode, count_include_pad=False
                    ),
                )
            elif isinstance(child, nn.AdaptiveMaxPool2d):
                setattr(module, child_name, nn.AdaptiveAvgPool2d(child.output_size))
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                w = module.weight
                fan_in = w[0].numel()
                w.copy_((torch.rand(w.shape, generator=g, dtype=w.dtype) + 0.5) / fan_in)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                if module.running_mean is not None:
                    module.running_mean.zero_()
                    module.running_var.fill_(1.0)
                if module.weight is not None:
                    module.weight.fill_(1.0)
                    module.bias.zero_()
    return twin


class _Reached(Exception):
    """Raised by a hook to stop a forward pass once the wanted layer has run."""


def _forward_until(net: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Run ``net(x)`` in eval mode with gradients on, stopping right after ``layer``; returns its output."""
    store: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        store["out"] = output
        raise _Reached

    handle = get_module(net, layer).register_forward_hook(hook)
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            net(x)
    except _Reached:
        pass
    finally:
        handle.remove()
        net.train(was_training)
    if "out" not in store:
        raise ValueError(f"layer {layer!r} did not run in the forward pass")
    return store["out"]


def empirical_receptive_field(
    model: nn.Module,
    layer: str,
    unit: tuple[int, int] | None = None,
    *,
    input_size: Sequence[int] | None = None,
    image: torch.Tensor | None = None,
    mode: Literal["support", "gradient"] = "support",
    channel: int | None = None,
) -> EmpiricalReceptiveField:
    """Measure a unit's receptive field by back-propagating from it to the input.

    Args:
        model: any ``nn.Module`` taking an image (B, C, H, W).
        layer: name of the module whose output holds the unit (as in ``model.named_modules()``).
        unit: (y, x) in that output (``None``: the centre unit).
        input_size: (C, H, W) of a random positive input (for ``mode="support"`` without ``image``).
        image: (C, H, W) or (1, C, H, W) float image to differentiate at (``mode="gradient"``: required).
        mode: ``"support"`` (a linear positive twin of the model, see :func:`linear_positive_copy`:
            the support is the analytic field clipped to the image) or ``"gradient"`` (the model as it
            is, in eval mode: the effective receptive field).
        channel: differentiate this channel of the unit (``None``: the sum over channels).

    Returns:
        EmpiricalReceptiveField with the gradient map, its support and the support's box.

    Raises:
        KeyError: no module called ``layer``.
        ValueError: neither ``input_size`` nor ``image``; ``mode="gradient"`` without ``image``; a unit
            outside the layer's output; an unknown mode.
    """
    if mode not in ("support", "gradient"):
        raise ValueError(f"mode must be 'support' or 'gradient', got {mode!r}")
    if image is None and (mode == "gradient" or input_size is None):
        raise ValueError(
            "give image=(C, H, W) (required for mode='gradient'), or input_size=(C, H, W) for mode='support'"
        )
    net = linear_positive_copy(model) if mode == "support" else model
    get_module(net, layer)  # KeyError with the valid names
    param = next(net.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    if image is not None:
        x = image if image.dim() == 4 else image[None]
        x = x.detach().to(device, dtype)
        if mode == "support":
            x = x.clamp_min(0) + 0.5  # positive, so every ReLU passes
    else:
        x = torch.rand(1, *input_size, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device) + 0.5
    x = x.clone().requires_grad_(True)

    out = _forward_until(net, x, layer)
    if out.dim() != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(out.shape)}; pick a layer with a (B, C, H, W) output")
    h, w = out.shape[-2:]
    y, xx = unit if unit is not None else (h // 2, w // 2)
    if not (0 <= y < h and 0 <= xx < w):
        raise ValueError(f"unit {(y, xx)} is outside the {h}x{w} output of {layer!r}")
    target = out[0, :, y, xx].sum() if channel is None else out[0, channel, y, xx]
    (grad,) = torch.autograd.grad(target, x)
    gradient = grad[0].abs().sum(0).float()  # (H, W)
    support = gradient > 0
    rows = support.any(1).nonzero()
    cols = support.any(0).nonzero()
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1) if rows.numel() else (0, 0, 0, 0)
    return EmpiricalReceptiveField(layer, (int(y), int(xx)), gradient.cpu(), support.cpu(), box)


def conv_chain(layers: Sequence[tuple[int, int] | tuple[int, int, int]], channels: int = 1) -> nn.Sequential:
    """The plain chain of convolutions that :func:`~cvkit.conv.receptive_field.receptive_field_chain` describes.

    Each layer is ``nn.Conv2d(channels, channels, k, stride=s, padding=d (k - 1) // 2, dilation=d, bias=False)``, the
    padding that formula assumes; the modules are named ``"0"``, ``"1"``, ... in order. Measure its field with
    ``empirical_receptive_field(net, str(len(net) - 1), input_size=(channels, H, W))``.

    Args:
        layers: ``(kernel_size, stride)`` or ``(kernel_size, stride, dilation)`` per layer, input first.
        channels: input and output channels of every layer.

    Returns:
        nn.Sequential of ``len(layers)`` convolutions: (B, channels, H, W) -> (B, channels, H', W').

    Raises:
        ValueError: no layers, or a kernel, stride or dilation below 1.
    """
    if not layers:
        raise ValueError("layers must name at least one (kernel_size, stride[, dilation])")
    convs = []
    for layer in layers:
        k, s, d = (*layer, 1)[:3]
        if min(k, s, d) < 1:
            raise ValueError(f"kernel, stride and dilation must be >= 1, got {layer}")
        convs.append(nn.Conv2d(channels, channels, k, stride=s, padding=d * (k - 1) // 2, dilation=d, bias=False))
    return nn.Sequential(*convs)


__all__ = ["EmpiricalReceptiveField", "conv_chain", "empirical_receptive_field", "linear_positive_copy"]
