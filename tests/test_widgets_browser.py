"""Every explorer in cvkit.widgets, used in a real front end: a Jupyter server on 127.0.0.1 and Debian's Chromium.

Two front ends, each running the notebooks in its own kernel:

* JupyterLab 4 with ipywidgets 8 (this venv);
* classic Notebook 6.5.7 with ipywidgets 7.7.1, ipykernel 6.17.1 and IPython 7.34 (the venv pinned to Colab's
  runtime, ``tests/colab.py``): the stand-in for Colab's and Kaggle's front ends.

In each, the browser opens lecture 02 (its conv-arithmetic explorer) and a notebook with one cell per
explorer, runs all cells, then for every explorer moves a slider and asserts that the figure's PNG bytes
changed; for click-to-segment it clicks on a shape in the image and asserts that a mask is painted there
and the mask candidates appear. A failure leaves ``failure.png`` (a screenshot) in
``build/test-browser/<test>/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tests.browser import chromium_page, require_browser
from tests.colab import colab_env, colab_venv  # noqa: F401  (session fixture)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "test-browser"
TOKEN = "cvkit-browser-test"
DONE = "CVKIT-NOTEBOOK-DONE"  # printed by the last cell, whose source spells it in two halves

DONE_CELL = f"print({DONE[:6]!r} + {DONE[6:]!r})"
OUTPUT = {"lab": ".jp-OutputArea-output", "classic": ".output_area"}

pytestmark = pytest.mark.browser

# The notebook with one cell per explorer. A predictor that answers with the true mask of the clicked shape stands
# in for SAM: the widget, not the model, is under test.
EXPLORERS = [
    """import torch
import torch.nn as nn
import cvkit
from cvkit.data import ShapesDataset, load_photo
from cvkit.widgets import click_to_segment, conv_arithmetic_explorer, explore_anchors, feature_map_explorer, receptive_field_explorer
torch.manual_seed(0)
photo = load_photo("astronaut", 64)  # (3, 64, 64)
model = nn.Sequential()
model.add_module("conv1", nn.Conv2d(3, 8, 3, padding=1))
model.add_module("act1", nn.ReLU())
model.add_module("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1))
model.add_module("act2", nn.ReLU())
print("live widgets:", not cvkit.runtime.headless())""",
    "conv_arithmetic_explorer();",
    'feature_map_explorer(model, photo, ["act1", "act2"], n=4);',
    'receptive_field_explorer(model, photo, ["act1", "act2"]);',
    "explore_anchors(photo);",
    """from cvkit.sam.predictor import Prediction

class GroundTruthPredictor:
    \"\"\"Answers a click with the true mask of the shape under it (ShapesDataset knows every mask).\"\"\"
    def __init__(self, masks):
        self.masks = masks  # (K, H, W) bool
    def set_image(self, image):
        self.image = image
    def predict(self, points=None, labels=None, box=None, multimask=True):
        x, y = (int(v) for v in points[-1].tolist())
        hit = [m for m in self.masks if m[y, x]]
        mask = hit[0] if hit else torch.zeros_like(self.masks[0])
        return Prediction(mask[None], torch.tensor([0.9]), mask[None].float())

sample = ShapesDataset(1, image_size=64, min_shapes=1, max_shapes=1, seed=3)[0]
click_to_segment(GroundTruthPredictor(sample.masks), sample.image);""",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path, sources: list[str], kernel: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [*sources, DONE_CELL]]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nbformat.write(nb, path)
    return path


def _lecture_copy(name: str, folder: Path, kernel: str) -> Path:
    """A lecture notebook with a last cell that prints DONE (so the browser knows every cell ran)."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DONE_CELL))
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@contextlib.contextmanager
def jupyter_server(command: list[str], folder: Path, env: dict[str, str], log: Path):
    """Start a Jupyter server on 127.0.0.1 (a free port, a fixed token); yield its base URL; stop it."""
    port = _free_port()
    runtime = folder / ".runtime"
    env = {**env, "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTERLAB_WORKSPACES_DIR": str(folder / ".workspaces")}
    # the kernels must be live: neither the test suite's headless switch nor CI's reach them
    for var in ("CVKIT_HEADLESS", "CI", "MPLBACKEND"):
        env.pop(var, None)
    args = [
        *command,
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.token={TOKEN}",
        f"--NotebookApp.token={TOKEN}",
        f"--notebook-dir={folder}",
    ]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Jupyter server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


# ---- what the browser does, per front end -------------------------------------------------------------------


def _open_and_run_all(page, url: str, name: str, front_end: str, timeout_s: float) -> None:
    if front_end == "lab":
        page.goto(f"{url}/lab/tree/{name}?token={TOKEN}&reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=90_000)  # the kernel is up
        page.locator(".jp-Notebook").first.click()  # focus the notebook
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    else:
        # ipywidgets 7's manager first asks the kernel for existing widgets over a "control" comm (ipykernel 6.17
        # has none: it logs a warning and falls back); a widget displayed before that settles is never drawn
        settled = []
        page.on("console", lambda m: "jupyter.widget.control" in m.text and settled.append(m.text))
        page.goto(f"{url}/notebooks/{name}?token={TOKEN}")
        # the kernel is up and the widget manager listens: a widget created before that is never drawn
        page.wait_for_function(
            "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected()"
            " && Jupyter.notebook.kernel.comm_manager.targets['jupyter.widget'] !== undefined",
            timeout=90_000,
        )
        deadline = time.monotonic() + 20
        while not settled and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        page.wait_for_timeout(500)
        page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    page.locator(OUTPUT[front_end], has_text=DONE).first.wait_for(timeout=timeout_s * 1000)


IMAGE_BYTES_JS = """async (img) => {
    const data = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let s = ''; for (const b of data) s += String.fromCharCode(b);
    return btoa(s);
}"""

PIXELS_JS = """async (img) => {
    await img.decode();
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
    return {w: c.width, h: c.height, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data)};
}"""


def _png_digest(image) -> str:
    import base64

    data = base64.b64decode(image.evaluate(IMAGE_BYTES_JS))
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "the explorer's image is not a PNG"
    return hashlib.sha256(data).hexdigest()


def _wait_changed(image, before: str, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = _png_digest(image)
        if now != before:
            return now
        time.sleep(0.25)
    raise AssertionError(f"the figure did not change within {seconds:.0f} s after moving a control")


def _move_first_slider(explorer, page, front_end: str, presses: int = 3) -> None:
    handle = explorer.locator(".noUi-handle" if front_end == "lab" else ".ui-slider-handle").first
    handle.focus()
    for _ in range(presses):
        handle.press("ArrowRight")
        page.wait_for_timeout(150)


def _check_explorers(page, front_end: str, expected: int) -> None:
    explorers = page.locator(".cvkit-explorer")
    assert explorers.count() == expected, f"{explorers.count()} explorers on the page, expected {expected}"
    for i in range(expected):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        sliders = explorer.locator(".widget-slider")
        assert sliders.count() >= 1, f"explorer {i} shows no slider"
        image = explorer.locator("img").first
        before = _png_digest(image)
        _move_first_slider(explorer, page, front_end)
        _wait_changed(image, before)


def _changed_fraction(a: dict, b: dict) -> float:
    assert (a["w"], a["h"]) == (b["w"], b["h"])
    pa, pb = a["data"], b["data"]
    changed = sum(
        1
        for i in range(0, len(pa), 4)
        if abs(pa[i] - pb[i]) + abs(pa[i + 1] - pb[i + 1]) + abs(pa[i + 2] - pb[i + 2]) > 30
    )
    return changed / (a["w"] * a["h"])


def _check_click_to_segment(page) -> None:
    from cvkit.data import ShapesDataset

    sample = ShapesDataset(1, image_size=64, min_shapes=1, max_shapes=1, seed=3)[0]
    x1, y1, x2, y2 = sample.boxes[0].tolist()
    widget = page.locator(".cvkit-click-to-segment")
    assert widget.count() == 1, "no click-to-segment widget"
    widget.scroll_into_view_if_needed()
    picture, candidates = widget.locator("img.cvkit-click-image"), widget.locator("img.cvkit-candidates")
    before, candidates_before = picture.evaluate(PIXELS_JS), candidates.evaluate(PIXELS_JS)
    box = picture.bounding_box()
    cx, cy = (x1 + x2) / 2 / 64, (y1 + y2) / 2 / 64  # the shape's centre, as a fraction of the image
    picture.click(position={"x": cx * box["width"], "y": cy * box["height"]})
    deadline = time.monotonic() + 30
    while True:
        after = picture.evaluate(PIXELS_JS)
        if _changed_fraction(before, after) > 0.01 or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    shape_fraction = (x2 - x1) * (y2 - y1) / 64**2
    assert _changed_fraction(before, after) > 0.3 * shape_fraction, "no mask was painted on the image after the click"
    candidates_after = candidates.evaluate(PIXELS_JS)
    assert candidates_after["w"] > candidates_before["w"], "the mask candidates did not appear beside the prompt"


# ---- the tests ------------------------------------------------------------------------------------------------


def _run_front_end(front_end: str, command: list[str], env: dict[str, str], kernel: str, request) -> None:
    require_browser()
    out = OUT / request.node.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    work = out / "notebooks"
    work.mkdir()
    lecture = _lecture_copy("02_convolution", work, kernel)
    explorers = _write_notebook(work / "explorers.ipynb", EXPLORERS, kernel)
    with jupyter_server(command, work, env, out / "server.log") as url, chromium_page(screenshots=out) as page:
        _open_and_run_all(page, url, lecture.name, front_end, timeout_s=240)
        _check_explorers(page, front_end, expected=1)
        _open_and_run_all(page, url, explorers.name, front_end, timeout_s=180)
        assert page.locator(OUTPUT[front_end], has_text="live widgets: True").count() == 1, (
            "the kernel thought it was headless"
        )
        _check_explorers(page, front_end, expected=4)
        _check_click_to_segment(page)


def test_explorers_in_jupyterlab4_ipywidgets8(request):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    _run_front_end("lab", [sys.executable, "-m", "jupyterlab"], env, "python3", request)


def test_explorers_in_classic_notebook_ipywidgets7(colab_venv, request):  # noqa: F811
    env = colab_env.venv_env()
    env["PATH"] = f"{colab_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    versions = subprocess.run(
        [
            str(colab_venv / "bin" / "python"),
            "-c",
            "import notebook, ipywidgets; print(notebook.__version__, ipywidgets.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions == ["6.5.7", "7.7.1"]
    _run_front_end("classic", [str(colab_venv / "bin" / "jupyter"), "notebook"], env, colab_env.KERNEL_NAME, request)
