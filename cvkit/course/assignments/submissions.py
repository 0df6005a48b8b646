"""Finding the students' notebooks in a folder of collected submissions.

Two layouts are accepted, also mixed:

* one folder per student: ``SUBMISSIONS/<student>/<a>.ipynb``;
* an LMS export, flat: ``SUBMISSIONS/<student>_<a>.ipynb`` (also ``<student>-<a>.ipynb``).

A student who renamed the notebook (``<student>/<a> (1).ipynb``, ``Copy of <a>.ipynb``) is
still graded: when ``<a>.ipynb`` is missing, the student's folder's notebook that shares the
most graded-cell ids with the assignment is used, and the rename is noted. A student with
no notebook at all still gets a row (``ungradable``), so no submission is lost silently.

Student ids are unique whatever the names: a name is transliterated to ASCII (``Иван`` -> ``Ivan``,
``李小龍`` -> ``LiXiaoLong``), and when two entries still map to one id (or to nothing), each gets a
short hash of its own entry name appended (``student-3f9a1c``), with a note; nothing stops the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

_SAFE_ID = re.compile(r"[^A-Za-z0-9_.@+-]+")


@dataclass
class Submission:
    """One student's submission.

    Attributes:
        student: the student id (from the folder name, or the prefix of a flat file name): ASCII, safe for
            paths and CSV, unique in the batch.
        notebook: the notebook to grade, or ``None`` when none was found.
        notes: what was unusual (a renamed file, several candidates, nothing found, an id made unique).
        name: the name as submitted (the folder or file prefix, any script).
        entry: the folder or file it came from (relative to the submissions folder).
    """

    student: str
    notebook: Path | None
    notes: list[str] = field(default_factory=list)
    name: str = ""
    entry: str = ""


def transliterate(text: str) -> str:
    """ASCII for any script (``anyascii`` when installed; else accents stripped and the rest dropped)."""
    try:
        from anyascii import anyascii

        return anyascii(text)
    except ImportError:
        return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def safe_student_id(raw: str) -> str:
    """A student id usable as a folder name and a CSV key: transliterated to ASCII, other characters ``_``.

    Returns ``""`` when nothing usable is left (the caller makes it unique with a hash).
    """
    cleaned = _SAFE_ID.sub("_", transliterate(unicodedata.normalize("NFC", raw.strip()))).strip("._-+@=")
    return cleaned[:64]


def short_hash(text: str) -> str:
    """Six hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not p.name.startswith(".")
    )


def _grade_ids(path: Path) -> set[str]:
    try:
        nb = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        return {
            c["metadata"]["nbgrader"]["grade_id"]
            for c in nb.get("cells", [])
            if isinstance(c.get("metadata", {}).get("nbgrader"), dict) and "grade_id" in c["metadata"]["nbgrader"]
        }
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return set()


def _pick(candidates: list[Path], expected_ids: set[str]) -> Path:
    """The candidate sharing the most grade ids with the assignment (ties: the largest file)."""
    return max(candidates, key=lambda p: (len(_grade_ids(p) & expected_ids), p.stat().st_size))


def collect_submissions(
    folder: str | os.PathLike, assignment: str, expected_ids: set[str] | None = None
) -> list[Submission]:
    """Every student's notebook for ``assignment`` under ``folder``, sorted by student id.

    Args:
        folder: the collected submissions (either layout, see the module docstring).
        assignment: the assignment name, e.g. ``"a1_convolution"``.
        expected_ids: the assignment's grade ids, used to pick among renamed notebooks.

    Returns:
        One :class:`Submission` per student (``notebook=None`` when a student folder holds none), with unique ids.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: no such submissions folder (expected <student>/{assignment}.ipynb or <student>_{assignment}.ipynb files)"
        )
    expected = f"{assignment}.ipynb"
    ids = expected_ids or set()
    entries: list[Submission] = []

    def add(sub: Submission, origin: Path) -> None:
        sub.name = sub.student
        sub.entry = origin.name
        entries.append(sub)

    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            student = entry.name
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
                notes.append(
                    f"file {entry.name} does not end in _{assignment}.ipynb; student id taken from the file name"
                )
            add(Submission(stem, entry, notes), entry)
    return _unique(entries)


def _unique(entries: list[Submission]) -> list[Submission]:
    """Give every entry a unique id: the transliterated name, or with a hash of its entry when taken or empty."""
    by_id: dict[str, list[Submission]] = {}
    for sub in entries:
        by_id.setdefault(safe_student_id(sub.name), []).append(sub)
    taken = {key for key, subs in by_id.items() if key and len(subs) == 1}
    out = []
    for key, subs in by_id.items():
        for sub in subs:
            if key and len(subs) == 1:
                sub.student = key
            else:
                base = key or "student"
                sub.student = f"{base}-{short_hash(sub.entry)}"
                n = 2
                while sub.student in taken:
                    sub.student = f"{base}-{short_hash(sub.entry + str(n))}"
                    n += 1
                others = [o.entry for o in subs if o is not sub]
                sub.notes.append(
                    f"id {sub.student!r} made unique"
                    + (
                        f" ({len(others)} other entr{'y maps' if len(others) == 1 else 'ies map'} to {key!r}: {', '.join(others[:3])})"
                        if key
                        else " (the name has no usable characters)"
                    )
                )
            taken.add(sub.student)
            out.append(sub)
    return sorted(out, key=lambda s: s.student)
