"""Every lecture notebook follows the contract and runs top to bottom in its fast profile.

Executed copies land in build/test-notebooks/ for inspection, and are recorded in the session's
``executed_notebooks`` (conftest.py): tests/test_site.py builds the course website from them.
``pytest --durations`` shows each notebook's time (the 90 s budget is measured in benchmarks and
reports, not asserted here).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from cvkit.course.lectures.notebooks import run_notebook
from cvkit.course.paths import course_notebooks, lecture_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = course_notebooks(ROOT)  # the lectures, then the mini-project template (notebooks/projects/)


def test_there_are_lecture_notebooks():
    assert [p.name[:2] for p in lecture_notebooks(ROOT)][:3] == ["00", "01", "02"]
    assert "mini_project_template.ipynb" in [p.name for p in NOTEBOOKS]


def test_notebook_contract():
    result = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "notebooks.py"), "check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_profile(path, executed_notebooks):
    result = run_notebook(path, executed_notebooks.folder, profile="fast", cell_timeout=600)
    executed_notebooks.results[path.name] = result
    assert result.ok, f"{path.name} {result.status} after {result.seconds:.0f} s: {result.message}"
