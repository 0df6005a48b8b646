"""The oracle libraries: a missing one skips a test locally and fails it under CI."""

import sys

import pytest

from tests.oracles import require_oracle


def test_a_missing_oracle_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # import torchmetrics now raises ImportError
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="oracle torchmetrics is not installed"):
        require_oracle("torchmetrics")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_oracle("torchmetrics")
    with pytest.raises(ValueError, match="unknown oracle"):
        require_oracle("sklearn")


@pytest.mark.parametrize("name", ["diffusers", "torchmetrics", "transformers"])
def test_the_oracles_are_installed_here(name, monkeypatch):
    """The dev extra installs every oracle, so the comparisons run (under CI a missing one fails above)."""
    monkeypatch.setenv("CI", "true")
    assert require_oracle(name).__name__ == name
