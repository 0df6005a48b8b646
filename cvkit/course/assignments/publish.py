"""``cvkit publish DIR``: the student-facing course, without anything a student must not see.

The instructor repository holds ``solutions/`` (every solution and hidden test) and ``tests/`` (whose
fixtures hold complete solutions): it must stay private. Students get the published course, and the
notebooks' "Open in Colab" badges point at the repository it is pushed to.

Published: the lecture notebooks, the released assignments (with their data), the ``cvkit`` package,
and what installs and explains them (README, licence, ``pyproject.toml``, ``environment.yml``, ``ci/``).
Never published: ``solutions/``, ``tests/``, ``benchmarks/``, build outputs, virtual environments, git
metadata, gradebooks (``*.db``) and caches.

Every published notebook, Markdown and text file is scanned for the solutions' and hidden tests' lines
(:func:`cvkit.course.assignments.release.protected_lines`) and for nbgrader's markers; when one is
found nothing is published and the error names the file. (The package's Python files are not scanned:
the package is public by design, and the assignments forbid calling its reference implementations.)
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cvkit.course.assignments.model import cell_source, find_assignments, read_json
from cvkit.course.assignments.release import MARKERS, protected_lines

INCLUDE = ("README.md", "LICENSE", "LICENSE.md", "LICENSE.txt", "pyproject.toml", "environment.yml", "CONTRIBUTING.md",
           ".gitignore", "cvkit", "notebooks", "assignments", "ci", "data")
EXCLUDE_NAMES = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".DS_Store", ".git"}
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
        return (f"published {self.files} file(s) into {self.out_dir} ({self.scanned} scanned: no solution or hidden-test line found)\n"
                f"not published: {', '.join(self.skipped) or '-'}; keep the instructor repository private and push {self.out_dir} "
                "to the public one the badges point at")


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


def scan_for_leaks(folder: Path, protected: set[str]) -> list[str]:
    """Files under ``folder`` holding a protected line or an nbgrader marker: ``"path: what"`` per finding."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SCANNED_SUFFIXES):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path.suffix == ".ipynb":
            try:
                nb = read_json(path)
                text = "\n".join(cell_source(c) + "\n" + str(c.get("outputs", "")) for c in nb.get("cells", []))
            except ValueError:
                pass
        rel = path.relative_to(folder)
        for marker in MARKERS:
            if marker in text:
                found.append(f"{rel}: the marker {marker!r}")
        lines = {line.strip() for line in text.splitlines()}
        hits = sorted(lines & protected)
        if hits:
            found.append(f"{rel}: {len(hits)} solution/hidden-test line(s), e.g. {hits[0][:80]!r}")
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
    protected: set[str] = set()
    for a in find_assignments(root):
        protected.update(protected_lines(read_json(a.source_notebook)))
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
        (staging / MARKER_FILE).write_text("written by cvkit publish: the student-facing course; regenerate it, do not edit\n")
        report.files = len(written)
        report.scanned = sum(1 for w in written if w.suffix in SCANNED_SUFFIXES)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return report
