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


def test_contract_flags_a_training_cell_that_hides_its_progress():
    """09 trained its Oxford-IIIT Pets U-Net with fit(..., progress=False): minutes of silence in the full profile."""
    import json

    sys.path.insert(0, str(ROOT / "ci"))
    import notebooks as nbtools

    nb = json.loads((ROOT / "notebooks" / "09_segmentation.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if "pet_unet = create_model" in "".join(c["source"])]
    code = "".join(cell["source"])
    assert "device=P.device, verbose=False)" in code and not nbtools.HIDDEN_PROGRESS.search(code)
    hidden = code.replace("device=P.device, verbose=False)", "device=P.device, progress=False, verbose=False)")
    assert nbtools.HIDDEN_PROGRESS.search(hidden), "a fit call with a nested DeviceLoader(...) and progress=False"
    assert not nbtools.HIDDEN_PROGRESS.search("fit(model, loader, epochs=2)\nshow(progress=False)")
