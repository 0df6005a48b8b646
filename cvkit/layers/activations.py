r"""Activation functions by name: the nonlinearities lecture 03 compares.

``make_activation("gelu")`` returns a fresh module, so blocks can take the activation as
a string (a closed set) instead of a class. The formulas, for reference:

* ReLU (Nair & Hinton 2010): :math:`\max(0, x)`
* Leaky ReLU (Maas et al. 2013): :math:`\max(0, x) + a \min(0, x)`, fixed :math:`a = 0.01`
* PReLU (He et al. 2015, eq. 1): the same with a learned :math:`a` (one per channel)
* ELU (Clevert et al. 2016): :math:`x` for :math:`x > 0`, :math:`\alpha (e^x - 1)` otherwise
* GELU (Hendrycks & Gimpel 2016): :math:`x \Phi(x)`, :math:`\Phi` the standard normal CDF
* SiLU / swish (Elfwing et al. 2018): :math:`x \sigma(x)`
* sigmoid :math:`1 / (1 + e^{-x})` and tanh, the saturating classics
"""

from __future__ import annotations

from typing import Callable, Literal

import torch.nn as nn

ActivationName = Literal["relu", "leaky_relu", "prelu", "elu", "gelu", "silu", "sigmoid", "tanh", "identity"]

# name -> factory(channels) ; ``channels`` only matters for PReLU (one slope per channel)
ACTIVATIONS: dict[str, Callable[[int | None], nn.Module]] = {
    "relu": lambda c: nn.ReLU(),
    "leaky_relu": lambda c: nn.LeakyReLU(0.01),
    "prelu": lambda c: nn.PReLU(c or 1, init=0.25),
    "elu": lambda c: nn.ELU(alpha=1.0),
    "gelu": lambda c: nn.GELU(),
    "silu": lambda c: nn.SiLU(),
    "sigmoid": lambda c: nn.Sigmoid(),
    "tanh": lambda c: nn.Tanh(),
    "identity": lambda c: nn.Identity(),
}


def make_activation(name: ActivationName | None, channels: int | None = None) -> nn.Module:
    """A new activation module for ``name``.

    Args:
        name: one of :data:`ACTIVATIONS` (``"relu"``, ``"gelu"``, ...); ``None`` means identity.
        channels: number of channels, used by ``"prelu"`` to learn one slope per channel
            (``None``: one shared slope).

    Returns:
        nn.Module acting elementwise: any shape in, the same shape and dtype out.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)} or None")
    return ACTIVATIONS[name](channels)
