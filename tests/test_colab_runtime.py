"""The student path in Colab's runtime: a venv pinned to Colab's published ``pip freeze`` (``ci/colab/``).

1. The notebooks' setup cell, pointed at this checkout, changes none of Colab's pinned packages: pip's own
   ``--dry-run --report`` of it is read, then the cell really runs and the venv is compared with the pins.
2. Lecture notebooks run there top to bottom with Colab's ipykernel 6.17.1, IPython 7.34 and ipywidgets 7.7.1,
   executed by the venv's own ``jupyter nbconvert --execute``. CI runs the subset below (chosen to cover
   the failures of issue 13: a torchmetrics import, the diffusion training cell that hung, live widgets);
   ``python ci/colab_env.py run`` runs all of them.

The first run builds ``.venv-colab/`` (about 3 minutes here, most of it torch's CUDA wheels); later runs reuse it.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.colab import colab_env, colab_venv  # noqa: F401  (session fixture)

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ["02_convolution", "09_segmentation", "12_diffusion"]

pytestmark = pytest.mark.colab


def test_freeze_file_pins_what_the_kit_depends_on():
    pins = colab_env.pinned()
    assert pins["torch"] == "2.11.0" and pins["ipykernel"] == "6.17.1" and pins["ipywidgets"] == "7.7.1"
    assert pins["notebook"] == "6.5.7" and pins["ipython"] == "7.34.0"


def test_setup_cell_changes_no_pinned_package(colab_venv, tmp_path, monkeypatch):  # noqa: F811
    # CI's run reaches here with this checkout on $PYTHONPATH (the course runner sets it in-process) and the
    # checkout's egg-info beside it (the editable install): pip must still uninstall and report the venv's cvkit
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    report_file = tmp_path / "report.json"
    wheel = colab_env.build_wheel(colab_venv, tmp_path)
    proc = colab_env.run_setup_cell(colab_venv, dry_run_report=report_file, target=wheel)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report_file.is_file(), f"pip wrote no --report; the cell printed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    installs = {i["metadata"]["name"] for i in report["install"]}
    assert "cvkit-course" in installs
    assert colab_env.changes(report) == []
    assert not installs & set(colab_env.pinned()), (
        f"pip would reinstall pinned packages: {installs & set(colab_env.pinned())}"
    )
    # and for real: after the cell, the venv still holds exactly Colab's pins, and cvkit imports from it
    proc = colab_env.run_setup_cell(colab_venv)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installed: cvkit-course" in proc.stdout and "unchanged" in proc.stdout
    assert colab_env.drift(colab_venv) == {}
    probe = "import cvkit, ipywidgets, IPython; print(cvkit.__file__, ipywidgets.__version__, IPython.__version__)"
    out = subprocess.run(
        [str(colab_env.venv_python(colab_venv)), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=colab_env.venv_env(),
        cwd=tempfile.gettempdir(),
    ).stdout.split()
    assert "site-packages" in out[0] and out[1:] == ["7.7.1", "7.34.0"]


def test_setup_cell_without_internet_says_which_switch_to_turn_on(tmp_path):
    """On Kaggle with Internet off the cell stops with the switch to turn on (run in this interpreter, no network)."""
    sys.path.insert(0, str(ROOT / "ci"))
    import notebooks as nbtools

    code = nbtools.setup_cell()
    # what Kaggle does with Internet off: name resolution fails; and the machine is Kaggle (/kaggle exists)
    prelude = (
        "import os, socket, importlib.util\n"
        "def _offline(*a, **k):\n    raise socket.gaierror(-3, 'Temporary failure in name resolution')\n"
        "socket.create_connection = _offline\n"
        "importlib.util.find_spec = lambda name, *a: None\n"
        "os.path.isdir = lambda p, _real=os.path.isdir: True if p == '/kaggle' else _real(p)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode != 0
    assert "Kaggle: turn on Settings > Internet, then run this cell again" in proc.stderr


@pytest.mark.notebook
@pytest.mark.parametrize("name", SUBSET)
def test_lecture_runs_in_colab_runtime(colab_venv, name):  # noqa: F811
    out = ROOT / "build" / "test-colab-notebooks"
    [result] = colab_env.run_notebooks(colab_venv, [ROOT / "notebooks" / f"{name}.ipynb"], out, timeout=300)
    assert result["ok"], f"{name} failed in the Colab runtime after {result['seconds']} s:\n{result['error']}"
