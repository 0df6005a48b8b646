"""The venv pinned to Google Colab's published runtime, built once per test session (see ``ci/colab_env.py``).

    from tests.colab import colab_venv  # a session fixture: the venv with the setup cell's install done

The venv is cached in ``.venv-colab/`` (git-ignored) and rebuilt only when the freeze file, the pinned
list or the interpreter changes. ``$CVKIT_COLAB_PYTHON`` picks another interpreter (Colab runs 3.13).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))

import colab_env  # noqa: E402  (ci/colab_env.py, importable once ci/ is on the path)


@pytest.fixture(scope="session")
def colab_venv() -> Path:
    """The pinned venv, with the notebooks' setup cell run in it (pointed at this checkout)."""
    venv = colab_env.build(colab_env.DEFAULT_VENV)
    proc = colab_env.run_setup_cell(venv)
    assert proc.returncode == 0, f"the setup cell failed in the Colab venv:\n{proc.stdout}\n{proc.stderr}"
    return venv
