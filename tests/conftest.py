"""Shared test settings: a headless matplotlib, headless widgets, and small thread counts."""

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CVKIT_HEADLESS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test opened."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def executed_notebooks():
    """The lecture notebooks executed in this test session: ``folder`` and ``results`` ({file name: NotebookResult}).

    tests/test_notebooks.py executes every notebook into ``folder`` (build/test-notebooks/) and records
    it in ``results``; tests/test_site.py builds the course website from those copies, so CI executes
    the course once, not twice.
    """
    folder = Path(__file__).resolve().parents[1] / "build" / "test-notebooks"
    return SimpleNamespace(folder=folder, results={})
