"""Finding the students' notebooks in a folder of collected submissions.

Two layouts are accepted, also mixed:

* one folder per student: ``SUBMISSIONS/<student>/<a>.ipynb``;
* an LMS export, flat: ``SUBMISSIONS/<student>_<a>.ipynb`` (also ``<student>-<a>.ipynb``).

A student who renamed the notebook (``<student>/<a> (1).ipynb``, ``Copy of <a>.ipynb``) is
still graded: when ``<a>.ipynb`` is missing, the student's folder's notebook that shares the
most graded-cell ids with the assignment is used, and the rename is noted. A student with
no notebook at all still gets a row (``ungradable``), so no submission is lost silently.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    """One student's submission.

    Attributes:
        student: the student id (folder name, or the prefix of a flat file name), made safe for paths.
        notebook: the notebook to grade, or ``None`` when none was found.
        notes: what was unusual (a renamed file, several candidates, nothing found).
    """

    student: str
    notebook: Path | None
    notes: list[str] = field(default_factory=list)


def safe_student_id(raw: str) -> str:
    """A student id usable as a folder name and a CSV key: runs of other characters become ``_``."""
    cleaned = _SAFE_ID.sub("_", raw.strip()).strip("._")
    return cleaned or "student"


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not p.name.startswith("."))


def _grade_ids(path: Path) -> set[str]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        return {c["metadata"]["nbgrader"]["grade_id"] for c in nb.get("cells", []) if isinstance(c.get("metadata", {}).get("nbgrader"), dict) and "grade_id" in c["metadata"]["nbgrader"]}
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return set()


def _pick(candidates: list[Path], expected_ids: set[str]) -> Path:
    """The candidate sharing the most grade ids with the assignment (ties: the largest file)."""
    return max(candidates, key=lambda p: (len(_grade_ids(p) & expected_ids), p.stat().st_size))


def collect_submissions(folder: str | os.PathLike, assignment: str, expected_ids: set[str] | None = None) -> list[Submission]:
    """Every student's notebook for ``assignment`` under ``folder``, sorted by student id.

    Args:
        folder: the collected submissions (either layout, see the module docstring).
        assignment: the assignment name, e.g. ``"a1_convolution"``.
        expected_ids: the assignment's grade ids, used to pick among renamed notebooks.

    Returns:
        One :class:`Submission` per student (``notebook=None`` when a student folder holds none).

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: two entries map to the same student id (the message names both).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such submissions folder (expected <student>/{assignment}.ipynb or <student>_{assignment}.ipynb files)")
    expected = f"{assignment}.ipynb"
    ids = expected_ids or set()
    found: dict[str, tuple[Submission, Path]] = {}

    def add(sub: Submission, origin: Path) -> None:
        if sub.student in found:
            raise ValueError(f"two submissions for student {sub.student!r}: {found[sub.student][1]} and {origin}; keep one")
        found[sub.student] = (sub, origin)

    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            student = safe_student_id(entry.name)
            direct = entry / expected
            if direct.is_file():
                add(Submission(student, direct), entry)
                continue
            nested = [p for p in _notebooks_in(entry) if p.name == expected]
            candidates = nested or _notebooks_in(entry)
            if not candidates:
                add(Submission(student, None, [f"no notebook in {entry.name}/ (expected {expected})"]), entry)
                continue
            chosen = _pick(candidates, ids)
            rel = chosen.relative_to(entry)
            notes = [] if chosen.name == expected else [f"notebook submitted as {rel} instead of {expected}"]
            if len(candidates) > 1:
                notes.append(f"{len(candidates)} notebooks in {entry.name}/; graded {rel}")
            add(Submission(student, chosen, notes), entry)
        elif entry.suffix == ".ipynb":
            notes: list[str] = []
            match = re.match(rf"^(?P<student>.+?)[ _-]+{re.escape(assignment)}(?:[ _-]*\(?\d+\)?)?$", entry.stem)
            stem = match.group("student") if match else entry.stem
            if not match:
                notes.append(f"file {entry.name} does not end in _{assignment}.ipynb; student id taken from the file name")
            add(Submission(safe_student_id(stem), entry, notes), entry)
    return [found[k][0] for k in sorted(found)]
