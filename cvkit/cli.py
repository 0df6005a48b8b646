"""The ``cvkit`` command.

cvkit                      run the whole course (the main job) into build/course/
cvkit doctor               versions, device, datasets available offline
cvkit run [PATHS ...]      execute notebooks with papermill, write a report
cvkit release [A ...]      generate assignments/<a>/ from solutions/<a>/ (nbgrader)
cvkit validate [A ...]     reference solution -> full marks, untouched release -> 0
cvkit autograde A SUBS     grade a folder of submissions into grades.csv and feedback
cvkit train [--model M ...]  train a registry model (`torchrun --nproc_per_node N -m cvkit train ...`: N GPUs)
cvkit checkpoints ...      list, retrain or compare the course checkpoints
cvkit site                 build the course website from the executed notebooks into build/site/
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from cvkit import __version__
from cvkit.course.assignments.commands import register as _register_assignment_commands
from cvkit.course.checkpoint_commands import add_checkpoint_commands as _register_checkpoint_commands
from cvkit.site.command import register_site_command as _register_site_command


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
    parser = argparse.ArgumentParser(
        prog="cvkit", description="A runnable course kit for Deep Learning for Computer Vision."
    )
    parser.add_argument("--version", action="version", version=f"cvkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    course = sub.add_parser("course", help="run the whole course: every notebook, then the assignments (default)")
    _add_run_options(course, default_out="build/course")
    course.add_argument("--site", default="build/site", help="where the course website goes (default build/site)")
    course.add_argument("--no-site", action="store_true", help="do not build the course website")
    course.set_defaults(handler=_course)

    doctor = sub.add_parser("doctor", help="versions, device, and which datasets resolve offline")
    doctor.set_defaults(handler=_doctor)

    run = sub.add_parser("run", help="execute notebooks with papermill and write a report")
    run.add_argument(
        "paths",
        nargs="*",
        help="notebooks or folders (default: every lecture notebook in course order, then the project template)",
    )
    _add_run_options(run, default_out="build/run")
    run.add_argument("--timeout", type=float, default=900, help="seconds a single cell may run (default 900)")
    run.set_defaults(handler=_run)

    for register in _EXTENSIONS:
        register(sub)
    return parser


# Further subcommands append a ``register(subparsers)`` function here.
_EXTENSIONS: list = [_register_assignment_commands, _register_checkpoint_commands, _register_site_command]


def _add_run_options(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument(
        "--profile",
        choices=["auto", "fast", "full"],
        default="auto",
        help="fast: CPU-sized; full: GPU-sized; auto: full on a CUDA GPU",
    )
    p.add_argument("-j", "--jobs", type=int, default=1, help="notebooks run in parallel (default 1)")
    p.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")


def _course(args) -> int:
    from cvkit.course.main_job import run_course

    from functools import partial

    from cvkit.site.command import site_stage

    final = None if args.no_site else partial(site_stage, site=args.site)
    return 0 if run_course(args.profile, args.jobs, args.out, final_stage=final) else 1


def _doctor(args) -> int:
    from cvkit.course.doctor import format_checks, run_checks

    checks = run_checks()
    print(f"cvkit {__version__}")
    print(format_checks(checks))
    return 0 if all(c.ok for c in checks if c.name in ("python and torch", "torchvision ops", "device")) else 1


def _run(args) -> int:
    from cvkit.course.lectures.notebooks import run_notebooks
    from cvkit.course.paths import course_notebooks

    paths = args.paths or course_notebooks()
    if not paths:
        raise FileNotFoundError("no notebooks given and none found in notebooks/")
    report = run_notebooks(paths, args.out, profile=args.profile, jobs=args.jobs, cell_timeout=args.timeout)
    print(
        f"\n{sum(r.ok for r in report.results)}/{len(report.results)} notebooks passed in {report.seconds:.1f} s; report: {args.out}/report.md"
    )
    return 0 if report.ok else 1


TRAIN_DATASETS = ("fashion-mnist", "digits", "shapes", "cifar10")

_TRAIN_HELP = """\
Train a classifier from the model registry on one of the kit's datasets, with the progress bar
and epoch lines of cvkit.train.fit, and write into --out: history.json (settings and one row per
epoch), history.csv, history.png and checkpoints/last.pt, best.pt. Running the same command again
resumes from checkpoints/last.pt; --no-resume moves the earlier --out aside and starts over.

On several GPUs (Kaggle's two T4s, a machine with 4 or 8) start one process per GPU:

    torchrun --nproc_per_node 2 -m cvkit train --dataset fashion-mnist --model resnext_mini

--batch-size is the global batch: each of N processes trains on batch-size / N images of every
step, so N processes take the same steps as one (DistributedDataParallel). Process 0 alone prints
and writes files.

Datasets: fashion-mnist (offline from Debian's dataset-fashion-mnist or $CVKIT_DATA, else
downloaded), digits (scikit-learn, 8x8), shapes (generated: one circle, square or triangle per
32x32 image), cifar10 ($CVKIT_DATA or downloaded). Models: `python -c "import cvkit.models as m;
print(m.list_models('classification'))"`; the *_mini ones are sized for 28x28 images."""


def _register_train_command(sub) -> None:
    """Add ``train`` (its code is :mod:`cvkit.course.train_job`, imported when it runs)."""
    p = sub.add_parser(
        "train",
        help="train a registry model on a kit dataset from a terminal (torchrun for several GPUs)",
        description=_TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=TRAIN_DATASETS, default="fashion-mnist", help="default fashion-mnist")
    p.add_argument(
        "--model", default="resnext_mini", help="a classification model of cvkit.models (default resnext_mini)"
    )
    p.add_argument(
        "--profile",
        choices=["auto", "fast", "full"],
        default="auto",
        help="sizes: fast (2 epochs, 6,000 images: CPU), full (15 epochs, every image: GPU); auto: full on CUDA",
    )
    p.add_argument("--epochs", type=int, default=None, help="passes over the training images (default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch, split among the processes (default 256)")
    p.add_argument(
        "--train-images",
        type=int,
        default=None,
        help="class-balanced subset of the training split (default: the profile's)",
    )
    p.add_argument(
        "--val-images", type=int, default=None, help="subset of the validation split (default: the profile's)"
    )
    p.add_argument(
        "--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3; one-cycle schedule, AdamW)"
    )
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="auto: bf16 on Ampere and later, fp16 + GradScaler on a T4, fp32 on CPU",
    )
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto", help="auto: on CUDA")
    p.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile; auto: on CUDA for runs of 2000+ steps",
    )
    p.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="several GPUs: BatchNorm statistics over the global batch (default: per process)",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random flips and translations (fashion-mnist, shapes, cifar10; never digits)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, mps (default: the best available; one GPU per process under torchrun)",
    )
    p.add_argument("--out", default=None, help="output folder (default build/train/<dataset>-<model>)")
    p.add_argument("--checkpoint-dir", default=None, help="where last.pt and best.pt go (default OUT/checkpoints)")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from CHECKPOINT_DIR/last.pt when it exists (default); --no-resume moves OUT aside first",
    )
    p.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar (the epoch lines stay)"
    )
    p.set_defaults(handler=_train)


def _train(args) -> int:
    from cvkit.course.train_job import run

    return run(args)


_EXTENSIONS.append(_register_train_command)
