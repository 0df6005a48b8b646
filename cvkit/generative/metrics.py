r"""Scoring generated images: the Fréchet distance between feature distributions (Heusel et al., "GANs Trained by a
Two Time-Scale Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017, the FID; lecture 12).

Fit a Gaussian to the features of real images and another to the features of generated ones; their Fréchet (2-
Wasserstein) distance is

.. math:: d^2 = \lVert\mu_r - \mu_g\rVert^2 + \mathrm{Tr}\big(\Sigma_r + \Sigma_g - 2(\Sigma_r\Sigma_g)^{1/2}\big).

The FID uses an ImageNet Inception network's pool features; offline, any trained classifier's penultimate features
give the same kind of score (lower is better; the number is only comparable under one feature extractor).
"""

from __future__ import annotations

import torch


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors.

    The trace of the matrix square root is computed stably as the sum of square roots of the eigenvalues of
    :math:`\\Sigma_r^{1/2}\\Sigma_g\\Sigma_r^{1/2}` (symmetric positive semi-definite), in float64.

    Args:
        real: (N, D) features. generated: (M, D) features (N, M >= 2).

    Returns:
        the squared distance :math:`d^2` (a float >= 0 up to round-off).

    Raises:
        ValueError: not 2-D, different D, or fewer than 2 rows.
    """
    if (
        real.dim() != 2
        or generated.dim() != 2
        or real.shape[1] != generated.shape[1]
        or min(len(real), len(generated)) < 2
    ):
        raise ValueError(
            f"need (N, D) and (M, D) features with N, M >= 2, got {tuple(real.shape)} and {tuple(generated.shape)}"
        )
    a, b = real.double(), generated.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    evals, evecs = torch.linalg.eigh(cov_a)
    sqrt_a = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    inner = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_sqrt)
