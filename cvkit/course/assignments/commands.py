"""The assignment subcommands of ``cvkit``: ``release``, ``validate``, ``autograde``, ``grades merge`` and ``publish``.

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
-j N grades on a Dask LocalCluster of N worker processes here; --scheduler ADDRESS on a Dask
cluster (dask scheduler + dask worker, or dask-jobqueue on SLURM): the same code, and a
submission whose worker is lost is graded by another.
Writes into --out, as each student is graded: grades.csv (status, points per test, total,
max, message), feedback/<student>/<a>.html (hidden tests: name, points, message only),
autograded/<student>/<a>.ipynb (for the instructor), results/<student>.json, report.md,
canvas.csv / moodle.csv (--format), and at the end gradebook.db (nbgrader's).
Statuses: graded, repaired, exited, timeout, crashed, review, ungradable.
Free-response answers are not graded here: grades.csv shows each one blank while it awaits a
person (0 when unanswered) and a manual column; manual.csv and manual.md are for grading them,
and cvkit grades merge adds the points you enter (final.csv)."""

_GRADES_MERGE_HELP = """\
Add the points a person gave the free-response answers to the autograded rows of a
cvkit autograde output folder, and write the final totals. autograde wrote OUT/manual.csv
(one row per student and question; points is blank where an answer awaits you, 0 where
it was left unanswered) and OUT/manual.md (each question with its model answer and rubric,
then every student's answer). Fill points (and comment) in manual.csv, or in a copy, then:

    cvkit grades merge a1_convolution --manual manual.csv

Every row is checked first (a known student and question, points between 0 and the
question's points, no answer twice); on any problem nothing is written and the command
exits 2 listing them. Writes OUT/final.csv: total and max (autograded + free response),
auto, manual_points, one column per answer (blank: still awaiting), comments; with
--format also final-canvas.csv / final-moodle.csv. Run it again after entering more points:
points accepted earlier are kept (OUT/manual_entered.json), so a sheet with only the answers
graded since is enough; a new value for an answer replaces the old one."""

_PUBLISH_HELP = """\
Write the student-facing course into DIR: the lecture notebooks, the released assignments,
the cvkit package, the data and what installs them; never solutions/, tests (their fixtures
hold solutions), gradebooks or build outputs. Every file written is scanned for solution and
hidden-test lines; any found fails the command and nothing is left in DIR. Push DIR to the
public repository the notebooks' badges point at, and keep the instructor repository private."""


def register(sub) -> None:
    """Add ``release``, ``validate``, ``autograde``, ``grades merge`` and ``publish`` to the ``cvkit`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    rel = sub.add_parser(
        "release",
        help="generate assignments/<a>/ from solutions/<a>/ (nbgrader)",
        description=_RELEASE_HELP,
        formatter_class=fmt,
    )
    rel.add_argument(
        "assignments",
        nargs="*",
        metavar="A",
        help="assignment names, e.g. a1_convolution (default: every folder in solutions/)",
    )
    rel.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift or leaks (CI)")
    rel.set_defaults(handler=_release)

    val = sub.add_parser(
        "validate",
        help="reference solution -> full marks, untouched release -> 0; exit 1 otherwise",
        description=_VALIDATE_HELP,
        formatter_class=fmt,
    )
    val.add_argument("assignments", nargs="*", metavar="A", help="assignment names (default: all)")
    val.add_argument("-j", "--jobs", type=int, default=2, help="processes (default 2: the two submissions at once)")
    val.add_argument("--out", default=None, help="keep the grading outputs here (default: a temporary folder)")
    _sandbox_option(val)
    val.set_defaults(handler=_validate)

    ag = sub.add_parser(
        "autograde",
        help="grade a folder of submissions into grades.csv and feedback",
        description=_AUTOGRADE_HELP,
        formatter_class=fmt,
    )
    ag.add_argument("assignment", metavar="A", help="assignment name, e.g. a1_convolution")
    ag.add_argument("submissions", metavar="SUBMISSIONS", help="folder of <student>/<a>.ipynb or <student>_<a>.ipynb")
    ag.add_argument(
        "-j", "--jobs", type=int, default=1, help="submissions graded at once (default 1; use the number of CPU cores)"
    )
    ag.add_argument(
        "--out",
        default=None,
        help="output folder (default build/autograde/<a>); a finished run there is moved to <out>.previous-<time>, an interrupted one resumed",
    )
    ag.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds a single cell may run (default: the assignment's cell_timeout, else 120)",
    )
    ag.add_argument(
        "--format",
        action="append",
        choices=["canvas", "moodle"],
        default=[],
        help="also write canvas.csv or moodle.csv for an LMS grade import (repeatable)",
    )
    ag.add_argument(
        "--keep-work", action="store_true", help="keep the per-student scratch folders in OUT/.work for debugging"
    )
    ag.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="grade on a running Dask cluster (tcp://host:8786, or a scheduler file *.json) instead of -j N local worker processes; "
        "every worker needs the same cvkit, bubblewrap, and the course and submissions at the same paths",
    )
    _sandbox_option(ag)
    ag.set_defaults(handler=_autograde)

    grades = sub.add_parser("grades", help="free-response points entered by a person -> final totals (grades merge)")
    grades_sub = grades.add_subparsers(dest="grades_command", metavar="SUBCOMMAND", required=True)
    merge = grades_sub.add_parser(
        "merge",
        help="add the points of a filled manual.csv to the autograded rows; write final.csv",
        description=_GRADES_MERGE_HELP,
        formatter_class=fmt,
    )
    merge.add_argument("assignment", metavar="A", help="assignment name, e.g. a1_convolution")
    merge.add_argument(
        "--manual",
        required=True,
        metavar="CSV",
        help="the filled manual.csv (columns student, question, points[, comment])",
    )
    merge.add_argument("--out", default=None, help="the cvkit autograde output folder (default build/autograde/<a>)")
    merge.add_argument(
        "--format",
        action="append",
        choices=["canvas", "moodle"],
        default=[],
        help="also write final-canvas.csv or final-moodle.csv (repeatable)",
    )
    merge.set_defaults(handler=_grades_merge)

    pub = sub.add_parser(
        "publish",
        help="write the student-facing course (no solutions) into DIR",
        description=_PUBLISH_HELP,
        formatter_class=fmt,
    )
    pub.add_argument("dir", metavar="DIR", help="an empty or new folder, or an earlier publish output (replaced)")
    pub.set_defaults(handler=_publish)


def _sandbox_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sandbox",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="auto (default): a bubblewrap sandbox per submission when it works here, else none with a warning; bwrap: required; none: no isolation",
    )


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
    report = autograde(
        assignment,
        args.submissions,
        args.out,
        jobs=args.jobs,
        cell_timeout=args.timeout,
        keep_work=args.keep_work,
        lms=tuple(dict.fromkeys(args.format)),
        sandbox=args.sandbox,
        scheduler=args.scheduler,
    )
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no submissions"
    where = f"on {args.scheduler}" if args.scheduler else f"with -j {args.jobs}"
    print(
        f"\n{len(report.results)} submission(s) of {assignment.name} graded {where} in {time.perf_counter() - tic:.1f} s ({summary})"
    )
    for w in report.warnings:
        print(f"warning: {w}")
    out = Path(report.out_dir)
    print(f"grades: {out / 'grades.csv'}   feedback: {out / 'feedback'}   report: {out / 'report.md'}")
    if report.answers:
        print(
            f"free-response answers awaiting a person: {len(report.awaiting)} (grades.csv leaves them blank; the totals are autograded points).\n"
            f"Grade them with {out / 'manual.md'}, enter points in {out / 'manual.csv'}, then run: "
            f"cvkit grades merge {assignment.name} --manual {out / 'manual.csv'}"
            + (f" --out {out}" if args.out else "")
        )
    return 0 if report.results else 1


def _grades_merge(args) -> int:
    from cvkit.course.assignments.merge import merge_manual
    from cvkit.course.paths import course_root

    name = args.assignment.strip().rstrip("/").split("/")[-1]
    out = Path(args.out) if args.out else course_root() / "build" / "autograde" / name
    report = merge_manual(out, args.manual, name, lms=tuple(dict.fromkeys(args.format)))
    print(f"{name}: {report.entered} free-response grade(s) entered for {len(report.rows)} student(s)")
    for row in report.rows:
        print(
            f"  {row.student}: {row.total:g}/{row.max_total:g} ({row.auto:g} autograded + {row.manual_total:g} free response)"
            + (
                f", {sum(v is None for v in row.manual.values())} answer(s) still awaiting"
                if any(v is None for v in row.manual.values())
                else ""
            )
        )
    if report.awaiting:
        print(
            f"{len(report.awaiting)} answer(s) still await a person: their points are blank in final.csv and not in the totals"
        )
    print("final grades: " + "   ".join(report.files))
    return 0


def _publish(args) -> int:
    from cvkit.course.assignments.publish import publish
    from cvkit.course.paths import course_root

    report = publish(course_root(), args.dir)
    print(report.summary())
    return 0
