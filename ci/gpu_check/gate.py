"""Gate of a GPU check: a two-cell notebook through ``cvkit run`` (kernel start, cvkit import, Fashion-MNIST from
``$CVKIT_DATA``, a torchvision NMS on CUDA). Exits 0 only when it passed, so run.sh stops early and a second try of
the device call still fits in the session's device time.

Usage: ``python ci/gpu_check/gate.py WORK_DIR``
"""

import json
import subprocess
import sys
import time
from pathlib import Path

GATE_CELL = """import torch, torchvision, cvkit
from cvkit.data import load_fashion_mnist
from cvkit.runtime import use_profile
P = use_profile(PROFILE)
print(P)
d = load_fashion_mnist()
print(type(d).__name__, len(d))
b = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.0]], device="cuda")
print(torchvision.ops.nms(b, torch.tensor([0.9, 0.8, 0.7], device="cuda"), 0.5).tolist())
assert P.device.type == "cuda", P.device
"""


def main() -> int:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    cells = [
        {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "source": 'PROFILE = "auto"'},
        {"cell_type": "code", "id": "g", "metadata": {}, "source": GATE_CELL},
    ]
    for cell in cells:
        cell.update(outputs=[], execution_count=None)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernel}, "cells": cells}
    (work / "gate.ipynb").write_text(json.dumps(notebook))
    tic = time.time()
    command = [sys.executable, "-m", "cvkit", "run", "--profile", "auto", str(work / "gate.ipynb")]
    r = subprocess.run([*command, "--out", str(work / "out")], capture_output=True, text=True, timeout=120)
    print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
    print(f"gate: rc {r.returncode} in {time.time() - tic:.1f} s")
    try:
        executed = json.loads((work / "out" / "gate.ipynb").read_text())
        for output in executed["cells"][1]["outputs"]:
            print("OUT:", output.get("text") or output.get("evalue") or output.get("data", {}).get("text/plain"))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        print("no executed gate notebook:", exc)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
