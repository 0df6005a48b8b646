"""The ``cvkit`` command.

    cvkit                      run the whole course (the main job) into build/course/
    cvkit doctor               versions, device, datasets available offline
    cvkit run [PATHS ...]      execute notebooks with papermill, write a report
    cvkit release [A ...]      generate assignments/<a>/ from solutions/<a>/ (nbgrader)
    cvkit validate [A ...]     reference solution -> full marks, untouched release -> 0
    cvkit autograde A SUBS     grade a folder of submissions into grades.csv and feedback
    cvkit checkpoints ...      list, retrain or compare the course checkpoints
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from cvkit import __version__
from cvkit.course.assignment_commands import register as _register_assignment_commands
from cvkit.course.checkpoint_commands import add_checkpoint_commands as _register_checkpoint_commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cvkit`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["course", *(argv or [])])
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"cvkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands register themselves here)."""
    parser = argparse.ArgumentParser(prog="cvkit", description="A runnable course kit for Deep Learning for Computer Vision.")
    parser.add_argument("--version", action="version", version=f"cvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    course = sub.add_parser("course", help="run the whole course: every notebook, then the assignments (default)")
    _add_run_options(course, default_out="build/course")
    course.set_defaults(handler=_course)

    doctor = sub.add_parser("doctor", help="versions, device, and which datasets resolve offline")
    doctor.set_defaults(handler=_doctor)

    run = sub.add_parser("run", help="execute notebooks with papermill and write a report")
    run.add_argument("paths", nargs="*", help="notebooks or folders (default: every lecture notebook in course order)")
    _add_run_options(run, default_out="build/run")
    run.add_argument("--timeout", type=float, default=900, help="seconds a single cell may run (default 900)")
    run.set_defaults(handler=_run)

    for register in _EXTENSIONS:
        register(sub)
    return parser


# Further subcommands append a ``register(subparsers)`` function here.
_EXTENSIONS: list = [_register_assignment_commands, _register_checkpoint_commands]


def _add_run_options(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--profile", choices=["auto", "fast", "full"], default="auto", help="fast: CPU-sized; full: GPU-sized; auto: full on a CUDA GPU")
    p.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")


def _course(args) -> int:
    from cvkit.course.main_job import run_course

    return 0 if run_course(args.profile, args.jobs, args.out) else 1


def _doctor(args) -> int:
    from cvkit.course.doctor import format_checks, run_checks

    checks = run_checks()
    print(f"cvkit {__version__}")
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks if c.name in ("python and torch", "torchvision ops", "device")) else 1


def _run(args) -> int:
    from cvkit.course.notebooks import run_notebooks
    from cvkit.course.paths import lecture_notebooks

    paths = args.paths or lecture_notebooks()
    if not paths:
        raise FileNotFoundError("no notebooks given and none found in notebooks/")
    report = run_notebooks(paths, args.out, profile=args.profile, jobs=args.jobs, cell_timeout=args.timeout)
    print(f"\n{sum(r.ok for r in report.results)}/{len(report.results)} notebooks passed in {report.seconds:.1f} s; report: {args.out}/report.md")
    return 0 if report.ok else 1
