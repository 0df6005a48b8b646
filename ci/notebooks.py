"""Check, clean or regenerate the committed notebooks against the notebook contract (shared design README).

    python ci/notebooks.py check [PATHS ...]   exit 1 and list problems when any notebook breaks the contract
    python ci/notebooks.py clean [PATHS ...]   strip outputs and execution counts in place
    python ci/notebooks.py sync  [PATHS ...]   rewrite every badge line and setup cell from pyproject's [tool.cvkit]

Without PATHS: the lecture notebooks (``notebooks/NN_topic.ipynb``) and the assignment sources
(``solutions/<a>/<a>.ipynb``); ``check`` also reads the releases (``assignments/<a>/<a>.ipynb``), which
``cvkit release`` regenerates from the sources (so after ``sync`` run ``cvkit release``).

The course's repository and branch are written once, in ``pyproject.toml``::

    [tool.cvkit]
    repository = "https://github.com/OWNER/REPO"
    branch = "main"

Every badge line (Open in Colab, Open in Kaggle) and every setup cell is generated from them, so a fork
changes those two lines and runs ``sync``; ``check`` fails when a notebook disagrees, and when the URL is
written anywhere else in the repository.

The contract for lecture notebooks (and the project templates, ``notebooks/projects/*.ipynb``):
  * committed without outputs or execution counts;
  * first cell: Markdown with a ``# `` title, the badge line and what you will learn;
  * second cell: the setup cell, exactly as generated (installs cvkit only when it is missing);
  * a code cell tagged ``parameters`` that sets ``PROFILE = "auto"``;
  * ``cvkit.runtime.use_profile(PROFILE, ...)`` called after it;
  * a kernelspec (python3) in the metadata, so papermill and Colab know how to run it.
Assignment notebooks: the same first cell (title and badge) and setup cell, no parameters cell.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = (
    "cvkit-course"  # the name on PyPI and in pip (the import name is cvkit; "cvkit" on PyPI is another project)
)

COLAB_BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"
KAGGLE_BADGE = "[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)]({kaggle})"

# The setup cell of every notebook. It runs in the student's kernel before cvkit exists, so it is plain Python.
# Everything already installed is passed to pip as a constraint: pip may add what is missing (cvkit itself,
# torchmetrics) but can change nothing the runtime has, so Colab's torch and its Jupyter stack (ipykernel,
# IPython, ipywidgets 7) stay as they are. {source} is the pip requirement of the course package; {pip_options}
# is empty in every notebook (tests put pip options there).
SETUP_CELL = """\
# Setup (Colab, Kaggle): installs the course package cvkit and only what this runtime lacks; it never
# upgrades what the runtime has (torch, Jupyter, ipywidgets). Where cvkit is installed it does nothing.
import importlib.metadata as md, importlib.util, os, socket, subprocess, sys, tempfile
if importlib.util.find_spec("cvkit") is None:
    try:
        socket.create_connection(("pypi.org", 443), timeout=10).close()
    except OSError:
        fix = "Kaggle: turn on Settings > Internet, then run this cell again" if os.path.isdir("/kaggle") else "connect to the internet"
        raise RuntimeError(f"cvkit is not installed and there is no internet to install it. {{fix}}.") from None
    have = {{}}
    for d in md.distributions():
        have.setdefault(d.metadata["Name"], d.version)
    pins = os.path.join(tempfile.gettempdir(), "runtime-pins.txt")  # pip must keep every installed version
    with open(pins, "w") as f:
        f.writelines(f"{{name}}==={{version}}\\n" for name, version in have.items() if name)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",{pip_options} "-c", pins, "{source}"], check=True)
    added = sorted(f"{{d.metadata['Name']}} {{d.version}}" for d in md.distributions() if d.metadata["Name"] not in have)
    print("installed:", ", ".join(added) or "nothing", "- every package the runtime had is unchanged")
else:
    import cvkit
    print(f"cvkit {{cvkit.__version__}} is installed: nothing to do")"""


# A training loop whose progress bar is switched off (issue 13: no training cell hides its progress). One level
# of nested parentheses inside the call is enough for the course's calls (fit(model, DeviceLoader(...), ...)).
HIDDEN_PROGRESS = re.compile(r"\bfit\((?:[^()]|\([^()]*\))*\bprogress\s*=\s*False")


def course_config(root: Path = ROOT) -> dict[str, str]:
    """``[tool.cvkit]`` of pyproject.toml: ``repository`` (https URL of the GitHub repository) and ``branch``.

    Raises:
        ValueError: the section or a key is missing, or the repository is not a ``https://github.com/OWNER/REPO`` URL.
    """
    data = tomllib.loads((root / "pyproject.toml").read_text())
    cfg = data.get("tool", {}).get("cvkit", {})
    repo, branch = cfg.get("repository", ""), cfg.get("branch", "")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repo or ""):
        raise ValueError(f"pyproject.toml [tool.cvkit] repository must be https://github.com/OWNER/REPO, got {repo!r}")
    if not branch:
        raise ValueError('pyproject.toml [tool.cvkit] needs branch = "main" (the branch students open)')
    return {"repository": repo, "branch": branch}


def badge_line(relpath: str, cfg: dict[str, str] | None = None) -> str:
    """The Markdown line with the Colab and Kaggle badges for the notebook at ``relpath`` (from the repository root)."""
    cfg = cfg or course_config()
    slug = cfg["repository"].removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/{cfg['branch']}/{relpath}"
    kaggle = f"https://kaggle.com/kernels/welcome?src={cfg['repository']}/blob/{cfg['branch']}/{relpath}"
    return COLAB_BADGE.format(colab=colab) + " " + KAGGLE_BADGE.format(kaggle=kaggle)


def pip_source(cfg: dict[str, str] | None = None) -> str:
    """The pip requirement students install: ``cvkit-course @ git+https://github.com/OWNER/REPO@BRANCH``."""
    cfg = cfg or course_config()
    return f"{DISTRIBUTION} @ git+{cfg['repository']}@{cfg['branch']}"


def setup_cell(source: str | None = None, pip_options: tuple[str, ...] = ()) -> str:
    """The setup cell's code; ``source`` replaces the pip requirement (tests point it at a checkout) and
    ``pip_options`` go before it on pip's command line (tests add ``--dry-run --report FILE``)."""
    options = "".join(f" {json.dumps(o)}," for o in pip_options)
    return SETUP_CELL.format(source=source or pip_source(), pip_options=options)


def lecture_notebooks() -> list[Path]:
    """The lecture notebooks, then the project templates (notebooks/projects/), which follow the same contract."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (ROOT / "notebooks" / "projects").glob("*.ipynb")
    )


def assignment_sources() -> list[Path]:
    return sorted(p for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def assignment_releases() -> list[Path]:
    return sorted(p for p in (ROOT / "assignments").glob("*/*.ipynb") if p.stem == p.parent.name)


def _kind(path: Path) -> str:
    parent = path.resolve().parent
    if parent.name == "notebooks" or (parent.name == "projects" and parent.parent.name == "notebooks"):
        return "lecture"
    if parent.parent.name in ("solutions", "assignments"):
        return "assignment"
    return "other"


def _badge_target(path: Path) -> str:
    """What the badge opens: the lecture itself; for an assignment, its release (what students get)."""
    path = path.resolve()
    if _kind(path) == "assignment":
        return f"assignments/{path.parent.name}/{path.name}"
    return path.relative_to(ROOT).as_posix()


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell: dict, text: str) -> None:
    lines = text.split("\n")
    cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _is_badge_line(line: str) -> bool:
    return "colab-badge.svg" in line or "open-in-kaggle.svg" in line


def _setup_index(cells: list[dict]) -> int | None:
    for i, c in enumerate(cells[:4]):
        if c.get("cell_type") == "code" and 'find_spec("cvkit")' in _source(c):
            return i
    return None


def problems(path: Path, lecture: bool | None = None) -> list[str]:
    """Contract violations of one notebook (empty when it complies)."""
    kind = _kind(path) if lecture is None else ("lecture" if lecture else "other")
    nb = json.loads(path.read_text())
    found = []
    cells = nb.get("cells", [])
    for i, c in enumerate(cells):
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            found.append(f"cell {i} has outputs or an execution count (run: python ci/notebooks.py clean {path.name})")
            break
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        found.append("metadata.kernelspec.name must be 'python3'")
    if kind == "other":
        return found
    cfg = course_config()
    if not cells or cells[0].get("cell_type") != "markdown" or not _source(cells[0]).lstrip().startswith("# "):
        found.append("the first cell must be Markdown starting with a '# ' title")
    else:
        badges = [line for line in _source(cells[0]).split("\n") if _is_badge_line(line)]
        if badges != [badge_line(_badge_target(path), cfg)]:
            found.append(
                "the badge line (Colab and Kaggle) differs from [tool.cvkit] in pyproject.toml (run: python ci/notebooks.py sync)"
            )
    setup = _setup_index(cells)
    if setup != 1:
        found.append("the second cell must be the setup cell (run: python ci/notebooks.py sync)")
    elif _source(cells[setup]) != setup_cell():
        found.append("the setup cell differs from the template in ci/notebooks.py (run: python ci/notebooks.py sync)")
    if kind != "lecture":
        return found
    code = [_source(c) for c in cells if c.get("cell_type") == "code"]
    params = [
        c for c in cells if c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if len(params) != 1:
        found.append(f"needs exactly one code cell tagged 'parameters', found {len(params)}")
    elif 'PROFILE = "auto"' not in _source(params[0]):
        found.append('the parameters cell must set PROFILE = "auto"')
    if not any("use_profile(PROFILE" in s for s in code):
        found.append("no call to cvkit.runtime.use_profile(PROFILE, ...)")
    for i, c in enumerate(cells):
        if c.get("cell_type") == "code" and HIDDEN_PROGRESS.search(_source(c)):
            found.append(
                f"cell {i} calls fit(..., progress=False): a full-profile run trains for minutes with no sign of "
                "life (remove the argument; verbose=False keeps the per-epoch lines out)"
            )
    return found


def sync(path: Path) -> bool:
    """Rewrite the badge line and the setup cell of one lecture or assignment notebook; True when it changed.

    The badge line replaces the existing one (or goes right under the title); the setup cell replaces the
    existing one (a code cell calling ``find_spec("cvkit")`` among the first cells) or is inserted as cell 2.

    Raises:
        ValueError: the notebook does not start with a Markdown title cell.
    """
    text = path.read_text()
    nb = json.loads(text)
    cells = nb["cells"]
    if not cells or cells[0].get("cell_type") != "markdown" or not _source(cells[0]).lstrip().startswith("# "):
        raise ValueError(f"{path}: the first cell must be Markdown starting with a '# ' title")
    cfg = course_config()
    lines = _source(cells[0]).split("\n")
    badge = badge_line(_badge_target(path), cfg)
    at = [i for i, line in enumerate(lines) if _is_badge_line(line)]
    if at:
        lines[at[0]] = badge
        lines = [line for i, line in enumerate(lines) if i not in at[1:]]
    else:
        title = next(i for i, line in enumerate(lines) if line.startswith("# "))
        lines[title + 1 : title + 1] = ["", badge]
    _set_source(cells[0], "\n".join(lines))
    setup = _setup_index(cells)
    if setup is None:
        cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": []}
        if "id" in cells[0]:
            cell["id"] = "cvkit-setup"
        cells.insert(1, cell)
        setup = 1
    elif setup != 1:
        cells.insert(1, cells.pop(setup))
        setup = 1
    _set_source(cells[setup], setup_cell())
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new)
        return True
    return False


def url_elsewhere(root: Path = ROOT) -> list[str]:
    """Tracked files (other than pyproject.toml and the generated cells) that spell out the course URL.

    Student submissions kept as test fixtures are left out: they are what students handed in.
    """
    cfg = course_config(root)
    slug = cfg["repository"].removeprefix("https://github.com/")
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError):
        return []
    found = []
    for name in tracked:
        if not name or name == "pyproject.toml" or name.startswith(("tests/fixtures/", "ci/colab/")):
            continue
        path = root / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if slug not in text:
            continue
        if name.endswith(".ipynb") and _kind(path) in ("lecture", "assignment"):
            nb = json.loads(text)
            generated = {0, _setup_index(nb["cells"])}
            rest = "".join(_source(c) for i, c in enumerate(nb["cells"]) if i not in generated)
            rest += "\n".join(line for line in _source(nb["cells"][0]).split("\n") if not _is_badge_line(line))
            if slug not in rest:
                continue
        found.append(name)
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


def _show(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "clean", "sync"):
        print(__doc__)
        return 2
    given = [Path(p) for p in argv[1:]]
    paths = given or lecture_notebooks() + assignment_sources()
    if argv[0] == "clean":
        for p in paths:
            if clean(p):
                print(f"cleaned {_show(p)}")
        return 0
    if argv[0] == "sync":
        changed = [p for p in paths if _kind(p) != "other" and sync(p)]
        for p in changed:
            print(f"synced {_show(p)}")
        if any(_kind(p) == "assignment" for p in changed):
            print("assignment sources changed: run `cvkit release` to regenerate assignments/")
        print(f"{len(paths)} notebooks, {len(changed)} rewritten from [tool.cvkit] ({pip_source()})")
        return 0
    if not given:
        paths = paths + assignment_releases()
    bad = 0
    for p in paths:
        for message in problems(p):
            print(f"{_show(p)}: {message}")
            bad += 1
    if not given:
        for name in url_elsewhere():
            print(
                f"{name}: spells out the course URL; it belongs only in pyproject.toml [tool.cvkit] (generated cells read it)"
            )
            bad += 1
    print(f"{len(paths)} notebooks checked, {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
