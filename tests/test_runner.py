"""The notebook runner and the cvkit command: honest pass/fail, reports, clear errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cvkit.course.lectures.notebooks import NotebookError, check_notebook, run_notebooks

ROOT = Path(__file__).resolve().parents[1]


def make_notebook(path: Path, *cells: str, parameters: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters:
        p = nbformat.v4.new_code_cell('PROFILE = "auto"')
        p.metadata["tags"] = ["parameters"]
        nb.cells.append(p)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One runner call over four notebooks (kernels are slow to start: share them across tests)."""
    d = tmp_path_factory.mktemp("nbs")
    make_notebook(
        d / "a_good.ipynb",
        "import cvkit\nx = 21 * 2",
        "assert PROFILE == 'fast', PROFILE\nprint('done', x)",
        "import torch\ncvkit.runtime.record_results(answer=x, accuracy=torch.tensor(0.91234567), note='tiny')",
        "cvkit.runtime.record_results(accuracy=0.99, source='checkpoint')\ncvkit.runtime.record_results(accuracy=0.95)",
    )
    make_notebook(
        d / "b_raises.ipynb",
        "import cvkit\ncvkit.runtime.record_results(loss=float('nan'))",
        "raise RuntimeError('broken on purpose')",
        "print('never')",
    )
    make_notebook(d / "c_exit.ipynb", "import sys\nsys.exit(0)", "print('never reached')")
    make_notebook(d / "d_headless.ipynb", "import os\nassert os.environ['CVKIT_HEADLESS'] == '1'")
    out = d / "out"
    report = run_notebooks(sorted(d.glob("*.ipynb")), out, profile="fast", jobs=2, progress=False)
    return report, out


def test_statuses(batch):
    report, _ = batch
    status = {r.name: r.status for r in report.results}
    assert status == {
        "a_good.ipynb": "passed",
        "b_raises.ipynb": "failed",
        "c_exit.ipynb": "failed",
        "d_headless.ipynb": "passed",
    }
    assert not report.ok
    messages = {r.name: r.message for r in report.results}
    assert "RuntimeError" in messages["b_raises.ipynb"] and "broken on purpose" in messages["b_raises.ipynb"]
    assert "sys.exit" in messages["c_exit.ipynb"]  # papermill alone would call this a success


def test_report_written(batch):
    report, out = batch
    data = json.loads((out / "report.json").read_text())
    assert data["ok"] is False and data["profile"] == "fast" and data["jobs"] == 2
    assert [n["name"] for n in data["notebooks"]] == [
        "a_good.ipynb",
        "b_raises.ipynb",
        "c_exit.ipynb",
        "d_headless.ipynb",
    ]
    assert all({"status", "seconds", "device", "profile"} <= set(n) for n in data["notebooks"])
    md = (out / "report.md").read_text()
    assert "| a_good.ipynb | passed |" in md and "| c_exit.ipynb | failed |" in md
    executed = nbformat.read(out / "a_good.ipynb", 4)
    assert any("done 42" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def test_recorded_results_reach_the_report(batch):
    """record_results in a kernel -> the executed notebook -> report.json and report.md, a failed notebook's too."""
    report, out = batch
    data = {n["name"]: n for n in json.loads((out / "report.json").read_text())["notebooks"]}
    assert data["a_good.ipynb"]["results"] == [
        {"name": "answer", "value": 42, "source": "live"},
        {"name": "accuracy", "value": 0.95, "source": "live"},  # recorded twice: the last value
        {"name": "note", "value": "tiny", "source": "live"},
        {"name": "accuracy", "value": 0.99, "source": "checkpoint"},
    ]
    assert data["b_raises.ipynb"]["results"] == [{"name": "loss", "value": None, "source": "live"}]
    assert data["c_exit.ipynb"]["results"] == []
    md = (out / "report.md").read_text()
    assert "| answer 42, accuracy 0.95, note tiny; checkpoint: accuracy 0.99 |" in md
    executed = nbformat.read(out / "a_good.ipynb", 4)
    shown = [o["data"]["text/plain"] for c in executed.cells for o in c.get("outputs", []) if "data" in o]
    assert "recorded (live): answer=42, accuracy=0.9123, note=tiny" in shown


def test_missing_parameters_cell_and_missing_path(tmp_path):
    bare = make_notebook(tmp_path / "bare.ipynb", "print(1)", parameters=False)
    with pytest.raises(NotebookError, match="no cell tagged 'parameters'"):
        check_notebook(bare)
    with pytest.raises(NotebookError, match="no such notebook"):
        run_notebooks([tmp_path / "nope.ipynb"], tmp_path / "out")


def _cvkit(*args, cwd=ROOT):
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(Path.home()),
    }
    return subprocess.run(
        [sys.executable, "-m", "cvkit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_run_exit_codes(tmp_path):
    good = make_notebook(tmp_path / "good.ipynb", "print('ok')")
    bad = make_notebook(tmp_path / "bad.ipynb", "1 / 0")
    r = _cvkit("run", str(good), "--profile", "fast", "--out", str(tmp_path / "o1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "o1" / "report.md").is_file()
    r = _cvkit("run", str(good), str(bad), "--profile", "fast", "--out", str(tmp_path / "o2"))
    assert r.returncode == 1 and "ZeroDivisionError" in r.stdout
    r = _cvkit("run", str(tmp_path / "missing.ipynb"))
    assert r.returncode == 2 and "no such notebook" in r.stderr


def test_cli_doctor_reports_datasets():
    r = _cvkit("doctor")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Fashion-MNIST" in r.stdout and "offline from" in r.stdout
    assert "torchvision.ops.nms runs" in r.stdout


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets")
def test_private_kernel_sockets_live_in_a_folder_removed_afterwards():
    from cvkit.course.lectures.kernel_sockets import private_kernel_sockets

    with private_kernel_sockets() as settings:
        folder = Path(settings["ip"]).parent
        assert settings["transport"] == "ipc" and folder.is_dir()
        assert len(settings["ip"]) + len("-65535") < 100  # room for jupyter's "-<port>" suffix in a socket name
    assert not folder.exists()


def test_injected_tuples_arrive_as_lists_not_as_strings(tmp_path):
    """papermill writes a tuple parameter as the string of its repr; ci/full_smoke.py injects FULL dicts with tuples."""
    from cvkit.course.lectures.notebooks import run_notebook

    nb = make_notebook(
        tmp_path / "widths.ipynb",
        "assert FULL['widths'] == [16, 32] and FULL['nested'] == {'k': [1, [2, 3]]}, FULL",
    )
    result = run_notebook(
        nb, tmp_path / "out", "fast", parameters={"FULL": {"widths": (16, 32), "nested": {"k": (1, (2, 3))}}}
    )
    assert result.status == "passed", result.message
