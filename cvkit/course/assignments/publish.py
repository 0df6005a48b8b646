"""``cvkit publish DIR``: the student-facing course, without anything a student must not see.

The instructor repository holds ``solutions/`` (every solution and hidden test) and ``tests/`` (whose
fixtures hold complete solutions): it must stay private. Students get the published course, and the
notebooks' "Open in Colab" badges point at the repository it is pushed to.

Published: the lecture notebooks, the released assignments (with their data), the ``cvkit`` package,
and what installs and explains them (README, licence, ``pyproject.toml``, ``environment.yml``, ``ci/``).
Never published: ``solutions/``, ``tests/``, ``benchmarks/``, build outputs, virtual environments, git
metadata, gradebooks (``*.db``) and caches.

Every published notebook, Markdown and text file is scanned for the solutions' and hidden tests' lines
(:func:`cvkit.course.assignments.release.protected_lines`), and every notebook for nbgrader's markers;
when one is found nothing is published and the error names the file. (The package's Python files are not scanned:
the package is public by design, and the assignments forbid calling its reference implementations.)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cvkit.course.assignments.model import cell_source, find_assignments, read_json
from cvkit.course.assignments.release import MARKERS, protected_lines

INCLUDE = (
    "README.md",
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
    "pyproject.toml",
    "environment.yml",
    "CONTRIBUTING.md",
    ".gitignore",
    "cvkit",
    "notebooks",
    "assignments",
    "ci",
    "data",
)
EXCLUDE_NAMES = {
    "__pycache__",
    ".ipynb_checkpoints",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".DS_Store",
    ".git",
}
EXCLUDE_SUFFIXES = (".db", ".pyc", ".sqlite", ".sqlite3")
SCANNED_SUFFIXES = (".ipynb", ".md", ".txt", ".rst", ".json", ".csv", ".yml", ".yaml", ".toml", ".html")
MARKER_FILE = ".cvkit-publish"


class LeakError(ValueError):
    """Something that must not reach students was about to be published; nothing was."""


@dataclass
class PublishReport:
    """What ``cvkit publish`` wrote.

    Attributes:
        out_dir: the published course.
        files: how many files were written.
        scanned: how many of them were scanned for solution and hidden-test lines.
        skipped: top-level entries of the course that were not published.
    """

    out_dir: str
    files: int = 0
    scanned: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Two lines for the command's output."""
        return (
            f"published {self.files} file(s) into {self.out_dir} ({self.scanned} scanned: no solution or hidden-test line found)\n"
            f"not published: {', '.join(self.skipped) or '-'}; keep the instructor repository private and push {self.out_dir} "
            "to the public one the badges point at"
        )


def _copy(src: Path, dest: Path, written: list[Path]) -> None:
    if src.name in EXCLUDE_NAMES or src.name.endswith(EXCLUDE_SUFFIXES) or src.is_symlink():
        return
    if src.is_dir():
        for child in sorted(src.iterdir()):
            _copy(child, dest / child.name, written)
    elif src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        written.append(dest)


RUN = 3  # consecutive protected lines that make a leak outside the releases


def _text_lines(path: Path) -> list[str] | None:
    """The stripped, non-empty lines a reader of ``path`` sees (a notebook: its cells and outputs); None for binary files."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".ipynb":
        try:
            nb = json.loads(text)
            text = "\n".join(cell_source(c) + "\n" + json.dumps(c.get("outputs", [])) for c in nb.get("cells", []))
        except (ValueError, AttributeError):
            pass
    return [line.strip() for line in text.splitlines() if line.strip()]


def scan_for_leaks(folder: Path, protected: dict[str, set[str]]) -> list[str]:
    """Files under ``folder`` holding solution or hidden-test code (or, for notebooks, an nbgrader marker).

    Args:
        folder: the staged course.
        protected: per assignment, the lines of its solutions and hidden tests.

    A released assignment is checked against its own lines, each one (as ``cvkit release --check`` does).
    Every other file is checked against all of them, less the lines any release shows anyway, and counts
    as leaking when :data:`RUN` consecutive lines of it are protected (a solution or test pasted in); a
    single line such as ``loss.backward()`` also appears in lectures by design.

    Returns:
        ``"path: what"`` per finding.
    """
    released: set[str] = set()
    for path in sorted((folder / "assignments").rglob("*")) if (folder / "assignments").is_dir() else []:
        if path.is_file():
            released |= set(_text_lines(path) or [])
    everything = set().union(*protected.values()) - released if protected else set()
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SCANNED_SUFFIXES):
        rel = path.relative_to(folder)
        lines = _text_lines(path)
        if lines is None:
            continue
        if path.suffix == ".ipynb":
            text = "\n".join(lines)
            found += [f"{rel}: the marker {m!r}" for m in MARKERS if m in text]
        if rel.parts[0] == "assignments" and len(rel.parts) > 2:
            hits = sorted(set(lines) & protected.get(rel.parts[1], set()))
            if hits:
                found.append(f"{rel}: {len(hits)} solution/hidden-test line(s), e.g. {hits[0][:80]!r}")
            continue
        run, best = [], []
        for line in lines:
            run = run + [line] if line in everything else []
            best = run if len(run) > len(best) else best
        if len(best) >= RUN:
            found.append(f"{rel}: {len(best)} consecutive solution/hidden-test lines, e.g. {best[0][:80]!r}")
    return found


def publish(root: str | os.PathLike, out: str | os.PathLike) -> PublishReport:
    """Write the student-facing course of the course at ``root`` into ``out`` (see the module docstring).

    Args:
        root: the instructor's course folder.
        out: a new or empty folder, or an earlier publish output (it is replaced).

    Returns:
        PublishReport.

    Raises:
        ValueError: ``out`` is the course itself, inside it, or a non-empty folder that is not an earlier publish output.
        LeakError: a file would have leaked a solution or hidden-test line (nothing is written).
    """
    root = Path(root).resolve()
    out_dir = Path(out).resolve()
    if out_dir == root or root in out_dir.parents or out_dir in root.parents:
        raise ValueError(f"{out_dir}: publish into a folder outside the course (it is pushed to another repository)")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER_FILE).exists():
        raise ValueError(f"{out_dir} is not empty and not an earlier cvkit publish output; choose a new folder")
    protected = {a.name: set(protected_lines(read_json(a.source_notebook))) for a in find_assignments(root)}
    staging = out_dir.with_name(f".{out_dir.name}.publishing")
    if staging.exists():
        shutil.rmtree(staging)
    written: list[Path] = []
    report = PublishReport(str(out_dir))
    try:
        for name in INCLUDE:
            if (root / name).exists():
                _copy(root / name, staging / name, written)
        report.skipped = sorted(p.name for p in root.iterdir() if p.name not in INCLUDE and not p.name.startswith("."))
        if not any(w.suffix == ".ipynb" for w in written):
            raise ValueError(f"{root}: no notebooks to publish (is it a cvkit course?)")
        leaks = scan_for_leaks(staging, protected)
        if leaks:
            raise LeakError("not published: " + "; ".join(leaks[:5]))
        (staging / MARKER_FILE).write_text(
            "written by cvkit publish: the student-facing course; regenerate it, do not edit\n"
        )
        report.files = len(written)
        report.scanned = sum(1 for w in written if w.suffix in SCANNED_SUFFIXES)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return report
