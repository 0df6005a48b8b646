"""scikit-learn's handwritten digits (1,797 grey 8x8 images, 10 classes): ships inside the wheel."""

from __future__ import annotations

import numpy as np
import torch

from cvkit.data.labeled import LabeledImages


def load_digits() -> LabeledImages:
    """The UCI handwritten digits bundled with scikit-learn.

    Returns:
        LabeledImages: ``images`` (1797, 1, 8, 8) uint8 in [0, 255] (the original 0..16
        grey levels scaled by 255/16), ``labels`` (1797,) int64 in [0, 10).
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    return LabeledImages(
        torch.from_numpy(images), torch.from_numpy(labels), [str(d) for d in range(10)], "scikit-learn"
    )
