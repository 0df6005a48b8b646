"""Reading a network's intermediate outputs with forward hooks.

``capture_outputs(model, x, ["layer1", "layer4"])`` runs the model once and returns what
those modules produced. Feature-map pictures, Grad-CAM and the empirical receptive
field all start from this: a forward hook is PyTorch's way of looking inside a model
without changing its code.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn as nn


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``).

    Raises:
        KeyError: no such module; the message lists some valid names.
    """
    modules = dict(model.named_modules())
    if name not in modules:
        names = [n for n in modules if n]
        raise KeyError(f"no module named {name!r} in {type(model).__name__}; names look like {names[:8]}")
    return modules[name]


@contextmanager
def recording(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: every forward pass inside it stores each named module's output in the yielded dict.

    The stored tensors are not detached (gradients can flow back to them, as Grad-CAM needs);
    a module called more than once keeps its last output. Hooks are removed on exit.

    Raises:
        KeyError: an unknown module name.
    """
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        module = get_module(model, name)
        handles.append(module.register_forward_hook(lambda m, i, o, name=name: store.__setitem__(name, o)))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def capture_outputs(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``model(x)`` once in eval mode and return the outputs of the named modules, detached.

    Args:
        model: any ``nn.Module``.
        x: its input, e.g. (B, C, H, W).
        names: module names, e.g. ``["layer1", "layer2"]`` for a ResNet.

    Returns:
        ``{name: output}`` in the order of ``names``; outputs keep their shapes, e.g. (B, C_l, H_l, W_l).

    Raises:
        KeyError: an unknown module name.
    """
    was_training = model.training
    model.eval()
    try:
        with recording(model, names) as store:
            model(x)
    finally:
        model.train(was_training)
    return {n: store[n].detach() for n in names}
