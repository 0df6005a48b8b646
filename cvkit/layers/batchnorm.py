r"""Batch normalization by hand: the forward pass and the full backward pass of the lecture slides.

Ioffe & Szegedy (2015), Algorithm 1, normalizes each feature over the mini-batch
:math:`\mathcal{B} = \{x_1, \dots, x_m\}`:

.. math::
    \mu_\mathcal{B} = \frac{1}{m}\sum_i x_i, \quad
    \sigma^2_\mathcal{B} = \frac{1}{m}\sum_i (x_i - \mu_\mathcal{B})^2, \quad
    \hat x_i = \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma^2_\mathcal{B} + \epsilon}}, \quad
    y_i = \gamma \hat x_i + \beta.

For images (B, C, H, W) a "feature" is a channel and the mini-batch is every pixel of every
image in it, so :math:`m = B H W`. :func:`batchnorm_backward` applies the chain rule in the
slides' order (section 3 of the paper): dL/dx_hat, dL/dvar, dL/dmu, dL/dx, dL/dgamma, dL/dbeta.

In training the batch statistics are used and running averages are updated
(``running = (1 - momentum) * running + momentum * batch``, with the unbiased variance, as
torch does); in evaluation the running averages replace the batch statistics, so an
image's output no longer depends on the other images in its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class BatchNormCache:
    """What the backward pass needs from the forward pass.

    Attributes:
        x_hat: normalized input, same shape as x.
        x_minus_mu: x - mu, same shape as x.
        var: (C,) batch variance (biased, divided by m).
        gamma: (C,) scale.
        eps: the epsilon added to the variance.
    """

    x_hat: torch.Tensor
    x_minus_mu: torch.Tensor
    var: torch.Tensor
    gamma: torch.Tensor
    eps: float


def _check(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> tuple[int, ...]:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(
            f"x must be a tensor of shape (N, C) or (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}"
        )
    c = x.shape[1]
    if gamma.shape != (c,) or beta.shape != (c,):
        raise ValueError(
            f"gamma and beta must have shape ({c},) to match x's channels, got {tuple(gamma.shape)} and {tuple(beta.shape)}"
        )
    return (0, *range(2, x.dim()))  # reduce over the batch and every spatial axis


def _per_channel(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t.view(1, -1, *([1] * (ndim - 2)))  # (C,) -> (1, C, 1, ..., 1)


def batchnorm_forward(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, BatchNormCache]:
    """Training-mode batch normalization with batch statistics (Algorithm 1 of Ioffe & Szegedy 2015).

    Args:
        x: (N, C) or (N, C, H, W) float; each channel is normalized over the other axes.
        gamma, beta: (C,) scale and shift.
        eps: added to the variance for numerical stability.

    Returns:
        (y, cache): y has the shape and dtype of x; cache feeds :func:`batchnorm_backward`.

    Raises:
        ValueError: x has fewer than 2 axes, or gamma/beta do not have shape (C,).
    """
    axes = _check(x, gamma, beta)
    mu = x.mean(dim=axes)  # (C,) mini-batch mean
    x_minus_mu = x - _per_channel(mu, x.dim())
    var = (x_minus_mu**2).mean(dim=axes)  # (C,) mini-batch variance (biased: divided by m)
    x_hat = x_minus_mu / torch.sqrt(_per_channel(var, x.dim()) + eps)  # normalize
    y = _per_channel(gamma, x.dim()) * x_hat + _per_channel(beta, x.dim())  # scale and shift
    return y, BatchNormCache(x_hat, x_minus_mu, var, gamma, eps)


def batchnorm_backward(dy: torch.Tensor, cache: BatchNormCache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Gradients of batch normalization, following the slides' chain rule step by step.

    With :math:`m` values per channel:

    .. math::
        \frac{\partial \ell}{\partial \hat x_i} = \frac{\partial \ell}{\partial y_i}\gamma, \qquad
        \frac{\partial \ell}{\partial \sigma^2} = \sum_i \frac{\partial \ell}{\partial \hat x_i}(x_i - \mu)\,
            \frac{-1}{2}(\sigma^2 + \epsilon)^{-3/2},

        \frac{\partial \ell}{\partial \mu} = \sum_i \frac{\partial \ell}{\partial \hat x_i}\frac{-1}{\sqrt{\sigma^2+\epsilon}}
            + \frac{\partial \ell}{\partial \sigma^2}\frac{\sum_i -2(x_i - \mu)}{m},

        \frac{\partial \ell}{\partial x_i} = \frac{\partial \ell}{\partial \hat x_i}\frac{1}{\sqrt{\sigma^2+\epsilon}}
            + \frac{\partial \ell}{\partial \sigma^2}\frac{2(x_i - \mu)}{m} + \frac{\partial \ell}{\partial \mu}\frac{1}{m},

        \frac{\partial \ell}{\partial \gamma} = \sum_i \frac{\partial \ell}{\partial y_i}\hat x_i, \qquad
        \frac{\partial \ell}{\partial \beta} = \sum_i \frac{\partial \ell}{\partial y_i}.

    Args:
        dy: upstream gradient dL/dy, the shape of x.
        cache: from :func:`batchnorm_forward`.

    Returns:
        (dx, dgamma, dbeta): dx the shape of x; dgamma, dbeta (C,).

    Raises:
        ValueError: dy does not have the shape of the cached input.
    """
    if dy.shape != cache.x_hat.shape:
        raise ValueError(
            f"dy must have the shape of the forward input {tuple(cache.x_hat.shape)}, got {tuple(dy.shape)}"
        )
    nd = dy.dim()
    axes = (0, *range(2, nd))
    m = dy.numel() // dy.shape[1]  # values per channel: N * H * W
    var = _per_channel(cache.var, nd)
    inv_std = 1.0 / torch.sqrt(var + cache.eps)
    dx_hat = dy * _per_channel(cache.gamma, nd)
    dvar = (dx_hat * cache.x_minus_mu).sum(dim=axes, keepdim=True) * -0.5 * (var + cache.eps) ** -1.5
    dmu = (dx_hat * -inv_std).sum(dim=axes, keepdim=True) + dvar * (-2.0 * cache.x_minus_mu).sum(
        dim=axes, keepdim=True
    ) / m
    dx = dx_hat * inv_std + dvar * 2.0 * cache.x_minus_mu / m + dmu / m
    dgamma = (dy * cache.x_hat).sum(dim=axes)
    dbeta = dy.sum(dim=axes)
    return dx, dgamma, dbeta


class _BatchNormFunction(torch.autograd.Function):
    """Autograd wrapper whose backward is :func:`batchnorm_backward` (not torch's)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):  # type: ignore[override]
        y, cache = batchnorm_forward(x, gamma, beta, eps)
        ctx.cache = cache
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        dx, dgamma, dbeta = batchnorm_backward(dy, ctx.cache)
        return dx, dgamma, dbeta, None


class BatchNormScratch(nn.Module):
    """Batch normalization written out by hand, a drop-in twin of ``nn.BatchNorm1d/2d``.

    Training mode normalizes with batch statistics (:func:`batchnorm_forward`, gradients from
    :func:`batchnorm_backward`) and updates the running averages; eval mode uses the running
    averages: :math:`y = \\gamma (x - \\hat\\mu) / \\sqrt{\\hat\\sigma^2 + \\epsilon} + \\beta`.

    Args:
        num_features: C.
        eps: added to the variance.
        momentum: weight of the new batch in the running averages (torch's convention).

    Shapes:
        input (N, C) or (N, C, H, W) float; output the same.

    Raises:
        ValueError: the input's channel axis is not ``num_features``, or fewer than two values per
            channel in training mode (the variance of one value is 0).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected (N, {self.num_features}, ...) input, got {tuple(x.shape)}")
        if not self.training:
            scale = self.weight / torch.sqrt(self.running_var + self.eps)
            return _per_channel(scale, x.dim()) * (x - _per_channel(self.running_mean, x.dim())) + _per_channel(
                self.bias, x.dim()
            )
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError(
                f"training-mode batch norm needs more than one value per channel, got input {tuple(x.shape)}"
            )
        y = _BatchNormFunction.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            axes = (0, *range(2, x.dim()))
            self.running_mean.lerp_(x.mean(dim=axes), self.momentum)
            self.running_var.lerp_(x.var(dim=axes, unbiased=True), self.momentum)  # unbiased, as torch does
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
