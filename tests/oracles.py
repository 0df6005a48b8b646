"""Library oracles for tests: a test that compares with diffusers, torchmetrics or transformers imports it here.

Locally a missing oracle skips the test (a student's laptop need not have every library); under CI (``CI`` set,
as ``.ci/run`` is run) it fails, so CI cannot go green without the comparisons. The ``dev`` extra installs them.

    from tests.oracles import require_oracle
    diffusers = require_oracle("diffusers")
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ORACLES = ("diffusers", "torchmetrics", "transformers")


def require_oracle(name: str) -> ModuleType:
    """Import the oracle library ``name``; skip the test without it, or fail under CI.

    Raises:
        ValueError: ``name`` is not one of :data:`ORACLES` (add it there and to the ``dev`` extra first).
    """
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; choose one of {ORACLES} (and install it in pyproject's dev extra)")
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"oracle {name} is not installed ({exc}); pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI must install it (ci/install.sh installs the dev extra)")
        pytest.skip(message)
