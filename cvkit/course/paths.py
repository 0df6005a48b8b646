"""Where the course lives on disk: the folder holding ``notebooks/``, ``solutions/`` and ``assignments/``."""

from __future__ import annotations

import os
from pathlib import Path


def course_root(start: str | os.PathLike | None = None) -> Path:
    """Find the course folder.

    Order: ``$CVKIT_COURSE_ROOT``; the first of ``start`` (default: the current folder) and its
    parents that holds ``notebooks/`` and a ``pyproject.toml``; the folder above the
    installed ``cvkit`` package when it holds ``notebooks/`` (an editable install).

    Raises:
        FileNotFoundError: no course folder found; the message says how to point at one.
    """
    env = os.environ.get("CVKIT_COURSE_ROOT", "").strip()
    if env:
        root = Path(env).expanduser()
        if not (root / "notebooks").is_dir():
            raise FileNotFoundError(f"$CVKIT_COURSE_ROOT={env} has no notebooks/ folder")
        return root.resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    package_parent = Path(__file__).resolve().parents[2]
    if (package_parent / "notebooks").is_dir():
        return package_parent
    raise FileNotFoundError(
        f"no course folder found from {here}: run cvkit inside a clone of the course (the folder with notebooks/), "
        "or set CVKIT_COURSE_ROOT to it"
    )


def lecture_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """The lecture notebooks in course order (``notebooks/NN_topic.ipynb``, sorted by name)."""
    folder = Path(root) if root is not None else course_root()
    return sorted(p for p in (folder / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def project_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """The project templates students copy (``notebooks/projects/*.ipynb``, sorted by name)."""
    folder = Path(root) if root is not None else course_root()
    return sorted((folder / "notebooks" / "projects").glob("*.ipynb"))


def course_notebooks(root: str | os.PathLike | None = None) -> list[Path]:
    """Every notebook the main job and the tests run: the lectures in course order, then the project templates."""
    return lecture_notebooks(root) + project_notebooks(root)
