"""The assignment subcommands of ``cvkit``: ``release``, ``validate``, ``autograde`` and ``publish``.

Registered in :mod:`cvkit.cli` through its ``_EXTENSIONS`` hook; the heavy imports
(nbgrader, torch) happen only when a command runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

_RELEASE_HELP = """\
Generate the student version of assignments: nbgrader generate_assignment on
solutions/<a>/<a>.ipynb, publishing only the notebook and solutions/<a>/data/ into
assignments/<a>/ (commit it). With --check nothing is written: exit 1 when the committed
release differs from a fresh one, or when any released file contains solution code,
hidden tests or nbgrader markers."""

_VALIDATE_HELP = """\
Check assignments the way students will meet them: the reference solution, submitted as a
student would (the release with the solution cells filled in), must earn every point, and
the untouched release must earn 0 in every test cell, both without crashing. Exit 1 when
either fails (unlike nbgrader validate, which exits 0)."""

_AUTOGRADE_HELP = """\
Grade a folder of submissions: SUBMISSIONS/<student>/<a>.ipynb, or an LMS export of
<student>_<a>.ipynb files. Each submission is repaired (duplicated, deleted, edited or
stripped cells; renamed files) and run in a bubblewrap sandbox of its own (no network, no view
of the course, the solutions or other students; memory, time, file-size and process limits);
its tests hand back plain data and the grader's own process checks it and awards the points.
One bad notebook never stops the batch, and an interrupted run resumes where it stopped.
Writes into --out, as each student is graded: grades.csv (status, points per test, total,
max, message), feedback/<student>/<a>.html (hidden tests: name, points, message only),
autograded/<student>/<a>.ipynb (for the instructor), results/<student>.json, report.md,
canvas.csv / moodle.csv (--format), and at the end gradebook.db (nbgrader's).
Statuses: graded, repaired, exited, timeout, crashed, review, ungradable."""

_PUBLISH_HELP = """\
Write the student-facing course into DIR: the lecture notebooks, the released assignments,
the cvkit package, the data and what installs them; never solutions/, tests (their fixtures
hold solutions), gradebooks or build outputs. Every file written is scanned for solution and
hidden-test lines; any found fails the command and nothing is left in DIR. Push DIR to the
public repository the notebooks' badges point at, and keep the instructor repository private."""


def register(sub) -> None:
    """Add ``release``, ``validate``, ``autograde`` and ``publish`` to the ``cvkit`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    rel = sub.add_parser("release", help="generate assignments/<a>/ from solutions/<a>/ (nbgrader)", description=_RELEASE_HELP, formatter_class=fmt)
    rel.add_argument("assignments", nargs="*", metavar="A", help="assignment names, e.g. a1_convolution (default: every folder in solutions/)")
    rel.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift or leaks (CI)")
    rel.set_defaults(handler=_release)

    val = sub.add_parser("validate", help="reference solution -> full marks, untouched release -> 0; exit 1 otherwise", description=_VALIDATE_HELP, formatter_class=fmt)
    val.add_argument("assignments", nargs="*", metavar="A", help="assignment names (default: all)")
    val.add_argument("-j", "--jobs", type=int, default=2, help="processes (default 2: the two submissions at once)")
    val.add_argument("--out", default=None, help="keep the grading outputs here (default: a temporary folder)")
    _sandbox_option(val)
    val.set_defaults(handler=_validate)

    ag = sub.add_parser("autograde", help="grade a folder of submissions into grades.csv and feedback", description=_AUTOGRADE_HELP, formatter_class=fmt)
    ag.add_argument("assignment", metavar="A", help="assignment name, e.g. a1_convolution")
    ag.add_argument("submissions", metavar="SUBMISSIONS", help="folder of <student>/<a>.ipynb or <student>_<a>.ipynb")
    ag.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once (default 1; use the number of CPU cores)")
    ag.add_argument("--out", default=None, help="output folder (default build/autograde/<a>); a finished run there is moved to <out>.previous-<time>, an interrupted one resumed")
    ag.add_argument("--timeout", type=float, default=None, help="seconds a single cell may run (default: the assignment's cell_timeout, else 120)")
    ag.add_argument("--format", action="append", choices=["canvas", "moodle"], default=[], help="also write canvas.csv or moodle.csv for an LMS grade import (repeatable)")
    ag.add_argument("--keep-work", action="store_true", help="keep the per-student scratch folders in OUT/.work for debugging")
    _sandbox_option(ag)
    ag.set_defaults(handler=_autograde)

    pub = sub.add_parser("publish", help="write the student-facing course (no solutions) into DIR", description=_PUBLISH_HELP, formatter_class=fmt)
    pub.add_argument("dir", metavar="DIR", help="an empty or new folder, or an earlier publish output (replaced)")
    pub.set_defaults(handler=_publish)


def _sandbox_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto",
                   help="auto (default): a bubblewrap sandbox per submission when it works here, else none with a warning; bwrap: required; none: no isolation")


def _release(args) -> int:
    from cvkit.course.assignments.model import find_assignments
    from cvkit.course.assignments.release import format_reports, release
    from cvkit.course.paths import course_root

    root = course_root()
    assignments = find_assignments(root, args.assignments)
    if not assignments:
        raise FileNotFoundError(f"no assignments in {root / 'solutions'} (expected solutions/<a>/<a>.ipynb)")
    reports = [release(a, check=args.check) for a in assignments]
    print(format_reports(reports, args.check, root))
    return 0 if all(r.ok for r in reports) else 1


def _validate(args) -> int:
    from cvkit.course.assignments.model import find_assignments
    from cvkit.course.assignments.validate import validate
    from cvkit.course.paths import course_root

    root = course_root()
    assignments = find_assignments(root, args.assignments)
    if not assignments:
        raise FileNotFoundError(f"no assignments in {root / 'solutions'} (expected solutions/<a>/<a>.ipynb)")
    ok = True
    for a in assignments:
        out = Path(args.out) / a.name if args.out else None
        report = validate(a, out, jobs=args.jobs, progress=True, sandbox=args.sandbox)
        print(report.summary())
        ok = ok and report.ok
    return 0 if ok else 1


def _autograde(args) -> int:
    from cvkit.course.assignments.autograde import autograde
    from cvkit.course.assignments.model import load_assignment
    from cvkit.course.paths import course_root

    if args.jobs < 1:
        raise ValueError(f"-j/--jobs must be >= 1, got {args.jobs}")
    if args.timeout is not None and args.timeout <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    tic = time.perf_counter()
    assignment = load_assignment(args.assignment, course_root())
    report = autograde(assignment, args.submissions, args.out, jobs=args.jobs, cell_timeout=args.timeout, keep_work=args.keep_work,
                       lms=tuple(dict.fromkeys(args.format)), sandbox=args.sandbox)
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no submissions"
    print(f"\n{len(report.results)} submission(s) of {assignment.name} graded with -j {args.jobs} in {time.perf_counter() - tic:.1f} s ({summary})")
    for w in report.warnings:
        print(f"warning: {w}")
    out = Path(report.out_dir)
    print(f"grades: {out / 'grades.csv'}   feedback: {out / 'feedback'}   report: {out / 'report.md'}")
    return 0 if report.results else 1


def _publish(args) -> int:
    from cvkit.course.assignments.publish import publish
    from cvkit.course.paths import course_root

    report = publish(course_root(), args.dir)
    print(report.summary())
    return 0
