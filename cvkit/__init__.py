"""cvkit: the helper package of a runnable course on Deep Learning for Computer Vision.

Subpackages are imported on first use, so ``import cvkit`` stays cheap and never
needs a notebook front end::

    import cvkit
    photo = cvkit.data.load_photo("astronaut")      # (3, 512, 512) float32 in [0, 1]
    history = cvkit.train.fit(model, train_loader, val_loader)

Conventions used everywhere in the kit: images are NCHW float32 in [0, 1] unless a
docstring says otherwise, tokens are (B, N, D), boxes are ``xyxy`` in pixels.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from cvkit import course, data, runtime, train, viz, widgets  # noqa: F401


def __getattr__(name: str):
    """Import ``cvkit.<name>`` on first access, so ``cvkit.data`` works after ``import cvkit``."""
    if not name.startswith("_") and importlib.util.find_spec(f"cvkit.{name}") is not None:
        module = importlib.import_module(f"cvkit.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'cvkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {m.name for m in pkgutil.iter_modules(__path__)})
