"""Check or clean the committed notebooks against the notebook contract (shared design README).

    python ci/notebooks.py check [PATHS ...]   exit 1 and list problems when any notebook breaks the contract
    python ci/notebooks.py clean [PATHS ...]   strip outputs and execution counts in place

The contract for lecture notebooks (``notebooks/NN_topic.ipynb``) and project templates (``notebooks/projects/*.ipynb``):
  * committed without outputs or execution counts;
  * first cell: Markdown with a ``# `` title, an "Open in Colab" badge and what you will learn;
  * a setup cell that installs cvkit only when it is missing;
  * a code cell tagged ``parameters`` that sets ``PROFILE = "auto"``;
  * ``cvkit.runtime.use_profile(PROFILE, ...)`` called after it;
  * a kernelspec (python3) in the metadata, so papermill and Colab know how to run it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLAB = "colab.research.google.com/github/cvkit-course/cvkit/blob/main/"


def lecture_notebooks() -> list[Path]:
    """The lecture notebooks, then the project templates (notebooks/projects/), which follow the same contract."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted((ROOT / "notebooks" / "projects").glob("*.ipynb"))


def problems(path: Path, lecture: bool = True) -> list[str]:
    """Contract violations of one notebook (empty when it complies)."""
    nb = json.loads(path.read_text())
    found = []
    cells = nb.get("cells", [])
    for i, c in enumerate(cells):
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            found.append(f"cell {i} has outputs or an execution count (run: python ci/notebooks.py clean {path.name})")
            break
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        found.append("metadata.kernelspec.name must be 'python3'")
    if not lecture:
        return found
    if not cells or cells[0].get("cell_type") != "markdown" or not "".join(cells[0]["source"]).lstrip().startswith("# "):
        found.append("the first cell must be Markdown starting with a '# ' title")
    else:
        head = "".join(cells[0]["source"])
        where = "notebooks/" + ("projects/" if path.parent.name == "projects" else "") + path.name
        if COLAB + where not in head:
            found.append(f"the first cell needs the Open in Colab badge linking to {COLAB}{where}")
    code = ["".join(c["source"]) for c in cells if c.get("cell_type") == "code"]
    if not any("find_spec(\"cvkit\")" in s or "find_spec('cvkit')" in s for s in code):
        found.append("no setup cell that installs cvkit when importlib.util.find_spec('cvkit') is None")
    params = [c for c in cells if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        found.append(f"needs exactly one code cell tagged 'parameters', found {len(params)}")
    elif "PROFILE = \"auto\"" not in "".join(params[0]["source"]):
        found.append("the parameters cell must set PROFILE = \"auto\"")
    if not any("use_profile(PROFILE" in s for s in code):
        found.append("no call to cvkit.runtime.use_profile(PROFILE, ...)")
    return found


def clean(path: Path) -> bool:
    """Strip outputs and execution counts; returns True when the file changed."""
    text = path.read_text()
    nb = json.loads(text)
    for c in nb.get("cells", []):
        if c.get("cell_type") == "code":
            c["outputs"] = []
            c["execution_count"] = None
        c.get("metadata", {}).pop("execution", None)
        c.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("papermill", None)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "clean"):
        print(__doc__)
        return 2
    paths = [Path(p) for p in argv[1:]] or lecture_notebooks()
    if argv[0] == "clean":
        for p in paths:
            if clean(p):
                print(f"cleaned {p}")
        return 0
    bad = 0
    for p in paths:
        lecture = p.parent.name == "notebooks" or (p.parent.name == "projects" and p.parent.parent.name == "notebooks")
        for message in problems(p, lecture):
            print(f"{p.relative_to(ROOT) if p.is_absolute() else p}: {message}")
            bad += 1
    print(f"{len(paths)} notebooks checked, {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
