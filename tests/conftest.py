"""Shared test settings: a headless matplotlib, headless widgets, and small thread counts."""

import os

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
