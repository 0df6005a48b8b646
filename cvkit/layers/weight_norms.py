r"""Normalising the weights instead of the activations: weight normalization, spectral normalization, and an
orthogonality penalty (lecture 03; seed 003, "Going beyond (1)" and "(2)").

* **Weight normalization** (Salimans & Kingma, NeurIPS 2016, eq. 2): :math:`w = g\, v / \lVert v\rVert` per output
  unit, so the length ``g`` and the direction ``v`` of each filter are learned separately. With :math:`g = 1` every
  row of the (out, fan-in) weight matrix has unit norm, so the squared singular values sum to the number of rows,
  :math:`\sigma_1^2 + \dots + \sigma_T^2 = \lVert \bar W\rVert_F^2 = d_o` (the seed's identity).
* **Spectral normalization** (Miyato et al., ICLR 2018, eq. 8 and Algorithm 1): :math:`\bar W = W / \sigma(W)`
  with :math:`\sigma(W)` the largest singular value, estimated by one step of power iteration per training forward
  pass (:math:`v \leftarrow W^\top u / \lVert\cdot\rVert,\ u \leftarrow W v / \lVert\cdot\rVert,\ \sigma = u^\top W v`).
  Each layer is then 1-Lipschitz, which bounds how fast a GAN discriminator's output can change with its input.
* **Orthogonal regularization** (the seed's :math:`\lVert W^\top W - I\rVert_F^2`; Brock et al. 2017, Bansal et al.
  NeurIPS 2018): a penalty that pulls a layer towards orthogonality, so all its singular values towards 1.

The first two are ``torch.nn.utils.parametrize`` parametrizations: the layer keeps a raw parameter and its
``weight`` is recomputed from it at every access (the same mechanism as ``torch.nn.utils.parametrizations``, against
which they are tested). A weight of any shape is read as the matrix (out, fan-in): ``weight.flatten(1)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """A layer's weight as the matrix (out, fan-in): (out, in) for Linear, (out, in * kh * kw) for Conv2d.

    Raises:
        ValueError: a 1-D weight (a bias or a norm scale).
    """
    if weight.dim() < 2:
        raise ValueError(f"expected a weight with at least 2 dimensions (out, ...), got shape {tuple(weight.shape)}")
    return weight.flatten(1)


class WeightNormalization(nn.Module):
    r"""Parametrization :math:`w = g\, v/\lVert v\rVert_2`, the norm taken per output unit (Salimans & Kingma 2016).

    Registered on ``weight`` by :func:`weight_normalize`; the parametrization's ``original0`` is ``g`` with shape
    (out, 1, ..., 1) and ``original1`` is ``v`` with the weight's shape, the same layout as
    ``torch.nn.utils.parametrizations.weight_norm``.
    """

    def forward(self, g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        norm = v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))  # (out, 1, ..., 1)
        return g * v / norm

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Start with the layer's function unchanged: ``v = w`` and ``g = ||w||`` per unit."""
        return weight.flatten(1).norm(dim=1).view(-1, *([1] * (weight.dim() - 1))), weight


class SpectralNormalization(nn.Module):
    r"""Parametrization :math:`\bar W = W / \sigma(W)`, :math:`\sigma` by power iteration (Miyato et al. 2018, Alg. 1).

    The vectors ``u`` (out,) and ``v`` (fan-in,) are buffers carried from step to step, so one iteration per
    training forward pass is enough once they have converged; 15 iterations at construction start them close (as
    torch does). In eval mode they are not updated.

    Args:
        weight: the weight it will normalise (sets the buffer sizes and the starting vectors).
        n_power_iterations: iterations per training forward pass, >= 1.
        generator: seeds the random start vectors (``None``: torch's global generator).

    Raises:
        ValueError: a 1-D weight or ``n_power_iterations`` < 1.
    """

    def __init__(
        self, weight: torch.Tensor, n_power_iterations: int = 1, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        if n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
        w = weight_matrix(weight).detach()
        self.n_power_iterations = n_power_iterations
        u = torch.randn(w.shape[0], generator=generator).to(w)
        v = torch.randn(w.shape[1], generator=generator).to(w)
        self.register_buffer("_u", F.normalize(u, dim=0, eps=1e-12))
        self.register_buffer("_v", F.normalize(v, dim=0, eps=1e-12))
        self._power_iteration(w, 15)

    @torch.no_grad()
    def _power_iteration(self, w: torch.Tensor, steps: int) -> None:
        for _ in range(steps):
            self._u.copy_(F.normalize(w @ self._v, dim=0, eps=1e-12))  # u <- W v / |W v|
            self._v.copy_(F.normalize(w.T @ self._u, dim=0, eps=1e-12))  # v <- W^T u / |W^T u|

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        r"""The current estimate :math:`u^\top W v` of the largest singular value (a scalar, differentiable in W)."""
        return torch.dot(self._u, weight_matrix(weight) @ self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_iteration(weight_matrix(weight.detach()), self.n_power_iterations)
        # u and v are constants for autograd (Miyato et al., sec. 2.2 and appendix: the gradient still flows through
        # sigma's dependence on W); clone because the next forward updates the buffers in place
        u, v = self._u.clone(), self._v.clone()
        return weight / torch.dot(u, weight_matrix(weight) @ v)


def weight_normalize(layer: nn.Module, name: str = "weight") -> nn.Module:
    """Register :class:`WeightNormalization` on ``layer.<name>`` (in place; the layer computes the same function).

    Returns:
        the layer.

    Raises:
        ValueError: the layer has no such parameter, or it is 1-D.
    """
    _check_parameter(layer, name)
    parametrize.register_parametrization(layer, name, WeightNormalization(), unsafe=True)
    return layer


def spectral_normalize(
    layer: nn.Module, name: str = "weight", n_power_iterations: int = 1, generator: torch.Generator | None = None
) -> nn.Module:
    """Register :class:`SpectralNormalization` on ``layer.<name>`` (in place): its weight's largest singular value is 1.

    Returns:
        the layer.

    Raises:
        ValueError: the layer has no such parameter, it is 1-D, or ``n_power_iterations`` < 1.
    """
    weight = _check_parameter(layer, name)
    parametrize.register_parametrization(layer, name, SpectralNormalization(weight, n_power_iterations, generator))
    return layer


def spectral_normalize_all(model: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """:func:`spectral_normalize` every ``nn.Conv2d`` and ``nn.Linear`` in ``model`` (in place).

    Returns:
        the model.
    """
    for module in list(model.modules()):
        if isinstance(module, (nn.Conv2d, nn.Linear)) and not parametrize.is_parametrized(module, "weight"):
            spectral_normalize(module, n_power_iterations=n_power_iterations)
    return model


def orthogonality_penalty(weight: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert W^\top W - I\rVert_F^2` for the (out, fan-in) matrix W, on its smaller Gram matrix.

    With more inputs than outputs (the usual conv layer) :math:`W^\top W` (fan-in x fan-in) has rank at most ``out``
    and can never be the identity, so the penalty is taken on :math:`W W^\top` (out x out) instead: rows orthonormal.
    Zero exactly when the smaller side's vectors are orthonormal (all singular values 1).

    Args:
        weight: (out, ...) float tensor.

    Returns:
        scalar tensor, differentiable in ``weight``.

    Raises:
        ValueError: a 1-D weight.
    """
    w = weight_matrix(weight)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return ((gram - torch.eye(gram.shape[0], dtype=w.dtype, device=w.device)) ** 2).sum()


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values of the (out, fan-in) matrix of ``weight``, largest first (min(out, fan-in),)."""
    return torch.linalg.svdvals(weight_matrix(weight.detach().float()))


def _check_parameter(layer: nn.Module, name: str) -> torch.Tensor:
    weight = getattr(layer, name, None)
    if not isinstance(weight, torch.Tensor):
        raise ValueError(f"{type(layer).__name__} has no tensor {name!r} to normalise")
    if weight.dim() < 2:
        raise ValueError(
            f"{type(layer).__name__}.{name} must have at least 2 dimensions, got shape {tuple(weight.shape)}"
        )
    return weight
