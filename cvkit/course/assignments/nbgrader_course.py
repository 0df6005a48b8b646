"""A throwaway nbgrader course folder, so nbgrader runs without a JupyterHub or a config file.

nbgrader wants a course directory (``source/``, ``release/``, ``submitted/``, ...) and a
gradebook. The kit builds one in a scratch folder for every run: the instructor's tree
only ever holds ``solutions/`` and ``assignments/``, and each submission can be graded in
a folder (and SQLite gradebook) of its own. Two of nbgrader's habits are handled here:

* the gradebook is created by shelling out to ``alembic``, which must be on ``PATH``:
  :func:`prepare_environment` puts the running interpreter's ``bin`` folder first;
* generate_assignment copies every file of the source folder into the release:
  :func:`stage_source` copies only the notebook, ``data/`` and ``private/``, and
  :func:`copy_release` keeps ``private/`` out of the release.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from cvkit.course.assignments import DATA_DIR, PRIVATE_DIR, Assignment

COURSE_ID = "cvkit"
# Default nbgrader ignore list, plus our private folder is handled separately.
IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store"]


class NbgraderError(ValueError):
    """nbgrader rejected an assignment or a submission; the message carries the end of its log."""


def prepare_environment() -> None:
    """Make nbgrader work from any shell: ``alembic`` on PATH, no debugger chatter on stderr.

    The gradebook is created by running ``alembic`` as a subprocess; in a virtual environment that
    is not activated it is not on PATH, so the folder of ``sys.executable`` goes first.
    """
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["CVKIT_HEADLESS"] = "1"
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # silences a jupyter_core deprecation warning
    _cache_alembic_version()
    package_parent = str(Path(__file__).resolve().parents[3])
    current = os.environ.get("PYTHONPATH", "")
    if package_parent not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, current) if p)


def _cache_alembic_version() -> None:
    """Ask ``alembic heads`` once per process, not once per new gradebook.

    ``nbgrader.api.Gradebook`` runs ``alembic heads`` in a subprocess (a second or more) every time it
    creates a database; the answer depends only on the installed nbgrader, so it is cached.
    """
    import functools

    import nbgrader.api

    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.lru_cache(maxsize=1)(nbgrader.api.get_alembic_version)


def nbgrader_config(course: Path, **extra):
    """A traitlets ``Config`` for a course folder at ``course`` (gradebook ``course/gradebook.db``).

    ``extra`` entries are ``"Class.trait": value`` pairs added on top.
    """
    from traitlets.config import Config

    course = Path(course).resolve()  # nbgrader opens the gradebook from its own working directory
    c = Config()
    c.CourseDirectory.root = str(course)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    c.CourseDirectory.ignore = list(IGNORE)
    c.CourseDirectory.source_directory = "source"
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.submitted_directory = "submitted"
    c.CourseDirectory.autograded_directory = "autograded"
    c.CourseDirectory.feedback_directory = "feedback"
    for key, value in extra.items():
        cls, trait = key.split(".")
        setattr(getattr(c, cls), trait, value)
    return c


def run_converter(
    converter_class, course: Path, assignment_id: str, student_id: str = ".", log_file: Path | None = None, **extra
) -> None:
    """Run one nbgrader converter (GenerateAssignment, Autograde, GenerateFeedback) in-process.

    Its log goes to ``log_file`` (appended) instead of the terminal.

    Raises:
        NbgraderError: the converter failed; the message ends with its last log lines.
    """
    import traitlets.log
    from nbgrader.coursedir import CourseDirectory

    prepare_environment()
    config = nbgrader_config(course, **extra)
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment_id
    coursedir.student_id = student_id
    app = converter_class(coursedir=coursedir, config=config)
    app.force = True
    logger = app.log
    handler = logging.FileHandler(log_file) if log_file else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    traitlets.log.get_logger()  # make sure the shared logger exists before nbgrader adds to it
    try:
        app.start()
    except Exception as exc:
        tail = ""
        if log_file and Path(log_file).exists():
            tail = "\n".join(Path(log_file).read_text(errors="replace").splitlines()[-15:])
        raise NbgraderError(
            f"nbgrader {converter_class.__name__} failed for {assignment_id}: {type(exc).__name__}: {exc}\n{tail}"
        ) from exc
    finally:
        handler.close()
        logger.handlers, logger.level, logger.propagate = saved


def stage_source(assignment: Assignment, course: Path) -> Path:
    """Copy the source notebook, ``data/`` and ``private/`` into ``course/source/<a>/`` (nothing else)."""
    dest = course / "source" / assignment.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copyfile(assignment.source_notebook, dest / assignment.notebook_file)
    for path in assignment.released_files() + assignment.private_files():
        target = dest / path.relative_to(assignment.source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dest


def generate(assignment: Assignment, course: Path, log_file: Path | None = None) -> Path:
    """Stage the source and run ``nbgrader generate_assignment`` in the scratch ``course`` folder.

    Returns:
        ``course/release/<a>/`` (it may hold ``private/``: use :func:`copy_release` to publish).

    Raises:
        NbgraderError: nbgrader rejected the source (bad metadata, unbalanced markers, ...).
    """
    from nbgrader.converters import GenerateAssignment

    course.mkdir(parents=True, exist_ok=True)
    stage_source(assignment, course)
    run_converter(GenerateAssignment, course, assignment.name, log_file=log_file)
    return course / "release" / assignment.name


def copy_release(generated: Path, dest: Path, assignment: Assignment) -> list[Path]:
    """Copy what students get (the notebook and ``data/``) from ``generated`` into ``dest``, replacing it.

    Returns:
        The files written, relative to ``dest``.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    written = []
    for path in sorted(p for p in generated.rglob("*") if p.is_file()):
        rel = path.relative_to(generated)
        if rel.parts[0] == PRIVATE_DIR:
            continue
        if rel.parts[0] != DATA_DIR and rel.name != assignment.notebook_file:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        written.append(rel)
    return written
