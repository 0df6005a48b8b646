"""``ci/full_smoke.py`` (the full profiles' code paths at tiny sizes) stays runnable: it imports, and it has a tiny
``FULL`` for every lecture notebook (and for nothing else) with exactly the keys of the notebook's own ``FULL``
(``use_profile`` takes the dict whole, so a missing key is an ``AttributeError`` deep in the notebook)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))

import full_smoke  # noqa: E402

LECTURES = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def full_keys(path: Path) -> set[str]:
    """The keyword names of ``FULL = dict(...)`` in the notebook's code cells."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code" or "FULL" not in "".join(cell["source"]):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FULL" for t in node.targets):
                return {k.arg for k in node.value.keywords}
    raise AssertionError(f"{path.name} has no FULL = dict(...)")


def test_the_script_imports_its_runner_and_names_only_lectures_that_exist():
    assert callable(full_smoke.run_notebook)
    assert set(full_smoke.TINY) == {p.stem for p in LECTURES}, "a TINY entry without its notebook, or the reverse"


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_lecture_has_a_tiny_full_profile_with_its_keys(path):
    assert path.stem in full_smoke.TINY, f"ci/full_smoke.py has no TINY entry for {path.stem}"
    assert set(full_smoke.TINY[path.stem]) == full_keys(path)
