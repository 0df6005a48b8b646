r"""Zeiler & Fergus's deconvnet: project one feature activation back to pixel space (ECCV 2014, section 2.1;
lecture 05; seed 003, "ZeilerNet").

To see what a unit of layer l responds to, keep only its activation (all other units of the layer set to zero) and
run the network backwards to the input, layer by layer, with each layer's approximate inverse:

* **max-pooling** -> *unpooling with switches*: the value goes back to where the maximum was in the forward pass
  (the "switches" recorded then), zeros elsewhere;
* **ReLU** -> ReLU: the reconstructed signal is rectified again, so it stays a positive "feature";
* **convolution** -> *transposed convolution* with the same filters (flipped: the transpose of the conv matrix);
  biases are not used.

The result is an image-sized map showing the pixels and patterns that excited the unit, inside its receptive field
(nothing outside it can reach the unit). Springenberg et al. (2015) noted that this is back-propagation with one
change, the ReLU step; the tests compare :func:`deconvnet_projection` with autograd modified that way.

Works on an ``nn.Sequential`` of ``Conv2d``, ``ReLU`` and ``MaxPool2d`` (e.g. the ``features`` of
:class:`cvkit.models.zfnet.ZFNetMini`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

SUPPORTED = (nn.Conv2d, nn.ReLU, nn.MaxPool2d)


def _check(features: nn.Sequential, layer: int) -> list[nn.Module]:
    if not isinstance(features, nn.Sequential):
        raise TypeError(f"features must be an nn.Sequential, got {type(features).__name__}")
    if not 0 <= layer < len(features):
        raise ValueError(f"layer must index features (0..{len(features) - 1}), got {layer}")
    modules = list(features)[: layer + 1]
    for i, m in enumerate(modules):
        if not isinstance(m, SUPPORTED):
            raise ValueError(f"deconvnet inverts Conv2d, ReLU and MaxPool2d only; features[{i}] is {type(m).__name__}")
        if isinstance(m, nn.Conv2d) and (
            m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str)
        ):
            raise ValueError(
                f"features[{i}]: only ungrouped, undilated convolutions with numeric zero padding are supported"
            )
    return modules


@torch.no_grad()
def deconvnet_projection(
    features: nn.Sequential,
    image: torch.Tensor,
    layer: int,
    channel: int,
    position: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Project one activation of ``features[layer]`` back to the input with the deconvnet.

    Args:
        features: ``nn.Sequential`` of Conv2d / ReLU / MaxPool2d (eval mode is irrelevant: no BN or dropout).
        image: (C, H, W) or (1, C, H, W), as the network takes it.
        layer: index of the module whose output holds the unit (e.g. the ReLU after a conv).
        channel: feature map of that output.
        position: (row, col) of the unit; ``None``: the strongest activation of the map.

    Returns:
        (C, H, W) float tensor: the reconstruction (only the receptive field of the unit can be non-zero).

    Raises:
        TypeError, ValueError: unsupported modules, out-of-range ``layer``/``channel``/``position``, or a batch of more
        than one image.
    """
    modules = _check(features, layer)
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"image must be (C, H, W) or (1, C, H, W), got {tuple(image.shape)}")
    sizes, switches = [], []
    for m in modules:  # forward, recording each input size and the pooling switches
        sizes.append(x.shape[-2:])
        if isinstance(m, nn.MaxPool2d):
            x, idx = F.max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode, return_indices=True)
            switches.append(idx)
        else:
            switches.append(None)
            x = m(x)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1]}), got {channel}")
    fmap = x[0, channel]
    if position is None:
        flat = int(fmap.argmax())
        position = (flat // fmap.shape[1], flat % fmap.shape[1])
    r, c = position
    if not (0 <= r < fmap.shape[0] and 0 <= c < fmap.shape[1]):
        raise ValueError(f"position {position} outside the {tuple(fmap.shape)} feature map")
    y = torch.zeros_like(x)
    y[0, channel, r, c] = x[0, channel, r, c]  # keep one activation, zero every other
    for m, size, idx in zip(reversed(modules), reversed(sizes), reversed(switches)):  # backwards
        if isinstance(m, nn.MaxPool2d):
            y = F.max_unpool2d(y, idx, m.kernel_size, m.stride, m.padding, output_size=size)  # back to the switch
        elif isinstance(m, nn.ReLU):
            y = F.relu(y)  # rectify the reconstruction
        else:
            # the conv's transpose (no bias); a strided conv's input size is ambiguous from its output: output_padding
            # restores the rows and columns that the last window still read
            kh, kw = m.kernel_size
            default = (
                (y.shape[-2] - 1) * m.stride[0] - 2 * m.padding[0] + kh,
                (y.shape[-1] - 1) * m.stride[1] - 2 * m.padding[1] + kw,
            )
            y = F.conv_transpose2d(
                y, m.weight, None, m.stride, m.padding, output_padding=(size[0] - default[0], size[1] - default[1])
            )
    return y[0]


@dataclass
class TopActivation:
    """Where a feature map fires most in a set of images: ``image`` (index), ``position`` (row, col), ``value``."""

    image: int
    position: tuple[int, int]
    value: float


@torch.no_grad()
def top_activations(
    features: nn.Sequential, images: torch.Tensor, layer: int, channel: int, k: int = 9
) -> list[TopActivation]:
    """The ``k`` images of ``images`` whose map ``channel`` at ``features[layer]`` has the strongest activation
    (one per image, strongest first): the images Zeiler & Fergus show next to each projection.

    Args:
        features: as in :func:`deconvnet_projection`. images: (N, C, H, W). layer, channel: the feature map.
        k: how many (at most N).

    Returns:
        list of :class:`TopActivation`.

    Raises:
        ValueError: bad ``layer``, ``channel`` or ``k``.
    """
    modules = _check(features, layer)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    x = images
    for m in modules:
        x = m(x)
    if not 0 <= channel < x.shape[1]:
        raise ValueError(f"channel must be in [0, {x.shape[1]}), got {channel}")
    maps = x[:, channel].flatten(1)  # (N, h*w)
    values, where = maps.max(dim=1)
    order = values.argsort(descending=True)[:k]
    w = x.shape[-1]
    return [TopActivation(int(i), (int(where[i]) // w, int(where[i]) % w), float(values[i])) for i in order]
