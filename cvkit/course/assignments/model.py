"""What an assignment is on disk: ``solutions/<a>/<a>.ipynb`` and its release ``assignments/<a>/``.

The authoring format is described in CONTRIBUTING.md ("Assignments"). This module finds
assignments, reads their settings and lists their graded cells; it never runs nbgrader.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cvkit.course.paths import course_root

SOLUTIONS = "solutions"
RELEASES = "assignments"
DATA_DIR = "data"  # released with the notebook
PRIVATE_DIR = "private"  # present at autograding only, never released

# Defaults for the notebook-level metadata ``"cvkit": {...}`` of a source notebook.
DEFAULT_CELL_TIMEOUT = 120.0  # seconds one cell may run at grading before it is interrupted
DEFAULT_TIME_LIMIT = 600.0  # seconds a whole submission may run before its kernel is killed
DEFAULT_MEMORY_LIMIT_GB = 4.0  # resident memory of the kernel before it is killed
_SETTINGS = {
    "cell_timeout": DEFAULT_CELL_TIMEOUT,
    "time_limit": DEFAULT_TIME_LIMIT,
    "memory_limit_gb": DEFAULT_MEMORY_LIMIT_GB,
}

_NAME = re.compile(r"^a\d+_[a-z0-9_]+$")


class AssignmentError(ValueError):
    """An assignment is missing or does not follow the authoring format; the message says how to fix it."""


@dataclass(frozen=True)
class GradedCell:
    """A test cell of the source notebook: its ``grade_id`` and its points."""

    grade_id: str
    points: float


@dataclass(frozen=True)
class Rule:
    """What the graded code of some tests may not call (``metadata.cvkit.forbid`` of the source notebook).

    Attributes:
        calls: what is forbidden, each one of: a dispatcher op (``"aten::convolution"``,
            ``"torchvision::nms"``: every way of reaching it counts), a Python function or class
            (``"torchvision.ops.nms"``, ``"torch.nn.Conv2d"``), or a module or package
            (``"cvkit.conv.ops"``: every function defined in it).
        tests: ``grade_id`` patterns of the tests the rule applies to (``fnmatch``; default every test).
        text: the rule as the student reads it (shown when a test fails because of it).
    """

    calls: tuple[str, ...]
    tests: tuple[str, ...] = ("*",)
    text: str = ""

    def applies_to(self, grade_id: str) -> bool:
        """True when the test ``grade_id`` is bound by this rule."""
        return any(fnmatch.fnmatchcase(grade_id, pattern) for pattern in self.tests)


@dataclass(frozen=True)
class Assignment:
    """One assignment of the course.

    Attributes:
        name: ``aN_topic``, the folder and notebook name.
        root: the course folder.
        cell_timeout: seconds one cell may run at grading (``metadata.cvkit.cell_timeout``).
        time_limit: seconds a whole submission may run (``metadata.cvkit.time_limit``).
        memory_limit_gb: resident memory (GiB) the submission may use (``metadata.cvkit.memory_limit_gb``).
        rules: what graded code may not call, per test (``metadata.cvkit.forbid``).
    """

    name: str
    root: Path
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    time_limit: float = DEFAULT_TIME_LIMIT
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB
    rules: tuple[Rule, ...] = ()

    def rules_for(self, grade_id: str) -> tuple[Rule, ...]:
        """The rules that bind the test ``grade_id``."""
        return tuple(r for r in self.rules if r.applies_to(grade_id))

    @property
    def source_dir(self) -> Path:
        """``solutions/<a>/``."""
        return self.root / SOLUTIONS / self.name

    @property
    def source_notebook(self) -> Path:
        """``solutions/<a>/<a>.ipynb``: solutions and hidden tests."""
        return self.source_dir / f"{self.name}.ipynb"

    @property
    def release_dir(self) -> Path:
        """``assignments/<a>/``: what students get (committed)."""
        return self.root / RELEASES / self.name

    @property
    def release_notebook(self) -> Path:
        """``assignments/<a>/<a>.ipynb``."""
        return self.release_dir / f"{self.name}.ipynb"

    @property
    def notebook_file(self) -> str:
        """The file name students submit: ``<a>.ipynb``."""
        return f"{self.name}.ipynb"

    def released_files(self) -> list[Path]:
        """Source files that go into the release besides the notebook: everything under ``data/``."""
        return _files_under(self.source_dir / DATA_DIR)

    def private_files(self) -> list[Path]:
        """Source files present at autograding only: everything under ``private/``."""
        return _files_under(self.source_dir / PRIVATE_DIR)

    def graded_cells(self) -> list[GradedCell]:
        """The test cells of the source notebook, in notebook order."""
        return graded_cells(read_json(self.source_notebook))

    @property
    def max_points(self) -> float:
        """Autograded points of the assignment (its test cells)."""
        return sum(c.points for c in self.graded_cells())

    @property
    def manual_points(self) -> float:
        """Points of its free-response answers, graded by a person (:mod:`cvkit.course.assignments.manual`)."""
        cells = read_json(self.source_notebook).get("cells", [])
        return sum(float(nbgrader_meta(c).get("points", 0)) for c in cells if is_answer_cell(c))


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts and p.name != ".DS_Store"
    )


def read_json(path: str | os.PathLike) -> dict:
    """Read a notebook as plain JSON (no nbformat validation)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def nbgrader_meta(cell: dict) -> dict:
    """The ``metadata.nbgrader`` dict of a cell (empty when absent or malformed)."""
    meta = cell.get("metadata")
    value = meta.get("nbgrader") if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def is_test_cell(cell: dict) -> bool:
    """A code cell with ``grade: true`` and ``solution: false`` (an autograded test)."""
    m = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(m.get("grade")) and not m.get("solution")


def is_answer_cell(cell: dict) -> bool:
    """A free-response answer a person grades (nbgrader's manually graded answer: ``grade`` and ``solution`` both true)."""
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and bool(m.get("solution"))


def is_solution_cell(cell: dict) -> bool:
    """A cell the student writes (``solution: true``)."""
    return bool(nbgrader_meta(cell).get("solution"))


def graded_cells(notebook: dict) -> list[GradedCell]:
    """The autograded test cells of a notebook (``grade_id`` and ``points``), in order."""
    return [
        GradedCell(nbgrader_meta(c)["grade_id"], float(nbgrader_meta(c).get("points", 0)))
        for c in notebook.get("cells", [])
        if is_test_cell(c)
    ]


def cell_source(cell: dict) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def load_assignment(name: str, root: str | os.PathLike | None = None) -> Assignment:
    """The assignment ``name`` of the course at ``root``, with its settings checked.

    Raises:
        AssignmentError: no ``solutions/<name>/<name>.ipynb``, a name that is not ``aN_topic``,
            or bad ``metadata.cvkit`` settings.
    """
    base = Path(root) if root is not None else course_root()
    name = name.strip().rstrip("/").split("/")[-1]
    if not _NAME.match(name):
        raise AssignmentError(f"assignment names look like a1_convolution (aN_topic, lowercase); got {name!r}")
    notebook = base / SOLUTIONS / name / f"{name}.ipynb"
    if not notebook.is_file():
        known = ", ".join(a.name for a in find_assignments(base)) or "none"
        raise AssignmentError(f"no source notebook {notebook}; known assignments: {known}")
    settings = dict(_SETTINGS)
    raw = read_json(notebook).get("metadata", {}).get("cvkit", {})
    if not isinstance(raw, dict):
        raise AssignmentError(
            f'{notebook}: metadata.cvkit must be an object such as {{"cell_timeout": 60}}, got {raw!r}'
        )
    rules: tuple[Rule, ...] = ()
    for key, value in raw.items():
        if key == "forbid":
            rules = parse_rules(value, notebook)
            continue
        if key not in settings:
            raise AssignmentError(
                f"{notebook}: unknown metadata.cvkit key {key!r}; choose from {sorted([*settings, 'forbid'])}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise AssignmentError(
                f"{notebook}: metadata.cvkit.{key} must be a positive number of seconds/GiB, got {value!r}"
            )
        settings[key] = float(value)
    return Assignment(name, base, settings["cell_timeout"], settings["time_limit"], settings["memory_limit_gb"], rules)


def parse_rules(raw: object, where: object = "metadata.cvkit.forbid") -> tuple[Rule, ...]:
    """``metadata.cvkit.forbid`` as :class:`Rule` objects.

    The expected shape is a list of ``{"calls": [...], "tests": [...], "rule": "..."}`` objects
    (``tests`` optional, default every test).

    Raises:
        AssignmentError: any other shape (the message shows the expected one).
    """
    shape = 'a list of {"calls": ["aten::convolution", "cvkit.conv.ops"], "tests": ["test_conv*"], "rule": "..."}'
    if not isinstance(raw, list):
        raise AssignmentError(f"{where}: metadata.cvkit.forbid must be {shape}, got {raw!r}")
    rules = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"calls", "tests", "rule"}:
            raise AssignmentError(f"{where}: each metadata.cvkit.forbid entry must be {shape}, got {item!r}")
        calls, tests = item.get("calls"), item.get("tests", ["*"])
        ok = isinstance(calls, list) and calls and all(isinstance(c, str) and c.strip() for c in calls)
        ok = ok and isinstance(tests, list) and tests and all(isinstance(t, str) and t for t in tests)
        if not ok or not isinstance(item.get("rule", ""), str):
            raise AssignmentError(f"{where}: each metadata.cvkit.forbid entry must be {shape}, got {item!r}")
        rules.append(Rule(tuple(c.strip() for c in calls), tuple(tests), str(item.get("rule", ""))))
    return tuple(rules)


def find_assignments(root: str | os.PathLike | None = None, names: Iterable[str] | None = None) -> list[Assignment]:
    """The assignments named (default: every ``solutions/<a>/<a>.ipynb``), sorted by name.

    Raises:
        AssignmentError: a name given does not exist or breaks the format.
    """
    base = Path(root) if root is not None else course_root()
    if names:
        return [load_assignment(n, base) for n in names]
    folder = base / SOLUTIONS
    if not folder.is_dir():
        return []
    return [
        load_assignment(p.name, base)
        for p in sorted(folder.iterdir())
        if p.is_dir() and (p / f"{p.name}.ipynb").is_file()
    ]
