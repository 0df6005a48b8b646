"""``cvkit release``: generate the student version of an assignment, and check a committed one.

``release`` runs nbgrader's ``generate_assignment`` on ``solutions/<a>/`` in a scratch
course folder and publishes only the notebook and ``data/`` into ``assignments/<a>/``.
:func:`release_drift` compares a fresh generation with the committed release (CI fails on
drift) and :func:`release_leaks` looks in every released file for solution code, hidden
tests and their markers.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cvkit.course.assignments import Assignment, cell_source, read_json
from cvkit.course.assignments.nbgrader_course import copy_release, generate

MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "BEGIN MARK SCHEME",
    "END MARK SCHEME",
)
_REGION = re.compile(r"^\s*#*\s*BEGIN (SOLUTION|HIDDEN TESTS)\s*$(.*?)^\s*#*\s*END \1\s*$", re.MULTILINE | re.DOTALL)
_STUBS = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


@dataclass
class ReleaseReport:
    """What ``cvkit release`` did (or would do) for one assignment.

    Attributes:
        name: the assignment.
        files: released files, relative to ``assignments/<a>/``.
        drift: files that differ between the committed release and a fresh one (``--check``).
        leaks: solution code, hidden tests or markers found in released files.
    """

    name: str
    files: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No drift and no leak."""
        return not self.drift and not self.leaks


def release(assignment: Assignment, check: bool = False, work: Path | None = None) -> ReleaseReport:
    """Generate ``assignments/<a>/`` from ``solutions/<a>/`` (or, with ``check``, compare only).

    Args:
        assignment: from :func:`cvkit.course.assignments.load_assignment`.
        check: do not write; report the files where the committed release differs from a fresh one.
        work: scratch folder (default: a temporary one, removed afterwards).

    Returns:
        ReleaseReport with the released files, the drift (``check`` only) and any leaks.

    Raises:
        cvkit.course.nbgrader_course.NbgraderError: nbgrader rejected the source notebook.
    """
    with tempfile.TemporaryDirectory(prefix=f"cvkit-release-{assignment.name}-") as tmp:
        scratch = Path(work) if work is not None else Path(tmp)
        generated = generate(assignment, scratch / "course", log_file=scratch / "release.log")
        fresh = scratch / "fresh"
        files = copy_release(generated, fresh, assignment)
        report = ReleaseReport(assignment.name, [str(f) for f in files])
        report.leaks = release_leaks(assignment, fresh)
        if check:
            report.drift = release_drift(fresh, assignment.release_dir)
        else:
            copy_release(fresh, assignment.release_dir, assignment)
    return report


def release_drift(fresh: Path, committed: Path) -> list[str]:
    """Files that differ between two release folders (notebooks compared as JSON, other files as bytes).

    Returns:
        One line per difference, e.g. ``"a1_convolution.ipynb: differs (cell 7 'test_conv2d')"``.
    """
    if not committed.is_dir():
        return [f"{committed} does not exist: run cvkit release {committed.name} and commit it"]
    ours = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
    theirs = {
        p.relative_to(committed) for p in committed.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
    }
    problems = [f"{p}: missing from the committed release" for p in sorted(ours - theirs)]
    problems += [
        f"{p}: in the committed release but not generated from solutions/ (remove it)" for p in sorted(theirs - ours)
    ]
    for rel in sorted(ours & theirs):
        a, b = fresh / rel, committed / rel
        if rel.suffix == ".ipynb":
            diff = _notebook_difference(read_json(a), read_json(b))
            if diff:
                problems.append(f"{rel}: differs ({diff})")
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{rel}: differs")
    return problems


def _notebook_difference(fresh: dict, committed: dict) -> str:
    fc, cc = fresh.get("cells", []), committed.get("cells", [])
    if len(fc) != len(cc):
        return f"{len(cc)} cells committed, {len(fc)} generated"
    for i, (a, b) in enumerate(zip(fc, cc)):
        if (
            cell_source(a) != cell_source(b)
            or a.get("metadata") != b.get("metadata")
            or a.get("cell_type") != b.get("cell_type")
        ):
            gid = (a.get("metadata", {}).get("nbgrader") or {}).get("grade_id", "")
            return f"cell {i}" + (f" {gid!r}" if gid else "")
        if a.get("outputs") != b.get("outputs"):
            return f"cell {i} has outputs"
    if fresh.get("metadata") != committed.get("metadata"):
        return "notebook metadata"
    return ""


def protected_lines(source_notebook: dict, regions: tuple[str, ...] = ("SOLUTION", "HIDDEN TESTS")) -> list[str]:
    """Lines that only appear inside the given marker regions of the source (what must never be released).

    Args:
        source_notebook: the source notebook as a dict.
        regions: ``"SOLUTION"`` and/or ``"HIDDEN TESTS"``.

    A line that also appears outside those regions (given code, a signature) is not counted,
    nor are blank lines, comments, the stubs nbgrader writes, and lines of three characters or fewer.
    """
    inside: set[str] = set()
    outside: set[str] = set()
    for cell in source_notebook.get("cells", []):
        text = cell_source(cell)
        matches = [m for m in _REGION.finditer(text)]
        for m in matches:
            if m.group(1) in regions:
                inside.update(line.strip() for line in m.group(2).splitlines())
        rest = text
        for m in reversed(matches):
            rest = rest[: m.start(2)] + rest[m.end(2) :]
        outside.update(line.strip() for line in rest.splitlines())
    return sorted(
        line for line in inside - outside if len(line) > 3 and line not in _STUBS and not line.startswith("#")
    )


def release_leaks(assignment: Assignment, folder: Path) -> list[str]:
    """Solution code, hidden tests or nbgrader markers found in the released files under ``folder``.

    Notebooks are searched cell by cell (sources and outputs); other text files as text.
    """
    lines = protected_lines(read_json(assignment.source_notebook))
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if rel.parts[0] == "private":
            found.append(f"{rel}: private files must never be released")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data: markers and code cannot hide there readably
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            chunks = [
                (f"cell {i}", cell_source(c) + "\n" + json.dumps(c.get("outputs", [])))
                for i, c in enumerate(nb.get("cells", []))
            ]
        else:
            chunks = [("", text)]
        for where, chunk in chunks:
            label = f"{rel}" + (f" {where}" if where else "")
            for marker in MARKERS:
                if marker in chunk:
                    found.append(f"{label}: contains the marker {marker!r}")
            stripped = {line.strip() for line in chunk.splitlines()}
            for line in lines:
                if line in stripped:
                    found.append(f"{label}: contains a solution/hidden-test line: {line[:80]!r}")
    return found


def format_reports(reports: list[ReleaseReport], check: bool, root: str | os.PathLike) -> str:
    """Human-readable summary printed by ``cvkit release``."""
    out = []
    for r in reports:
        state = "ok" if r.ok else "PROBLEMS"
        where = Path(root) / "assignments" / r.name
        if check:
            out.append(f"{r.name}: compared a fresh release ({len(r.files)} file(s)) with {where} [{state}]")
        else:
            out.append(f"{r.name}: released {len(r.files)} file(s) into {where} [{state}]")
        out += [f"  drift: {d}" for d in r.drift]
        out += [f"  leak: {d}" for d in r.leaks]
    return "\n".join(out)
