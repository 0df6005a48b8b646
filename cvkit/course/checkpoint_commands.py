"""``cvkit checkpoints``: list, retrain and compare the course checkpoints (:mod:`cvkit.lessons.checkpoints`)::

    cvkit checkpoints list                          name, lesson, size, how and when trained, metrics
    cvkit checkpoints retrain NAME [NAME ...]       train with the lesson's own code; write NAME.pt and NAME.json
          [--device cpu|cuda|mps] [--out DIR] [--max-minutes M]
    cvkit checkpoints compare NAME DIR              does the retrain in DIR reproduce the shipped metrics?

Registered in :mod:`cvkit.cli` through its ``_EXTENSIONS`` hook; torch is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import shlex

_RETRAIN_HELP = """\
Train course checkpoints from scratch with the lesson's own training function and its stored
settings and seed, then write NAME.pt (float16 state dict) and NAME.json (the manifest: this
command, seed, device, time, versions, loss per epoch, metrics on held-out data, size, sha256)
into --out (default: the shipped folder cvkit/lessons/weights, to commit). With --max-minutes
the training stops after the epoch that passes the budget and keeps its progress in
build/checkpoints/NAME: run the same command again to resume (exit code 3 means "paused")."""


def add_checkpoint_commands(sub) -> None:
    """Add ``checkpoints`` (with ``list``, ``retrain``, ``compare``) to the ``cvkit`` subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    ck = sub.add_parser("checkpoints", help="list, retrain or compare the course checkpoints")
    ck_sub = ck.add_subparsers(dest="action", metavar="ACTION", required=True)

    ls = ck_sub.add_parser("list", help="every course checkpoint: lesson, size, training, metrics")
    ls.set_defaults(handler=_list)

    rt = ck_sub.add_parser(
        "retrain",
        help="train checkpoints with their lesson's code; write weights and manifest",
        description=_RETRAIN_HELP,
        formatter_class=fmt,
    )
    rt.add_argument("names", nargs="+", metavar="NAME", help="checkpoint names (see `cvkit checkpoints list`)")
    rt.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)")
    rt.add_argument("--out", default=None, help="folder for NAME.pt and NAME.json (default: the shipped folder)")
    rt.add_argument("--work-dir", default=None, help="resumable training state (default build/checkpoints/NAME)")
    rt.add_argument("--max-minutes", type=float, default=None, help="pause after the epoch that passes this budget")
    rt.add_argument("--progress", action="store_true", help="show progress bars")
    rt.set_defaults(handler=_retrain)

    cp = ck_sub.add_parser("compare", help="compare a retrain's metrics with the shipped ones, within tolerances")
    cp.add_argument("name", metavar="NAME")
    cp.add_argument("folder", metavar="DIR", help="the --out folder of the retrain")
    cp.set_defaults(handler=_compare)


def _list(args) -> int:
    from cvkit.lessons import get_checkpoint, list_checkpoints, read_manifest, total_size_mb
    from cvkit.lessons.checkpoints import SIZE_BUDGET_MB, TOTAL_BUDGET_MB

    for name in list_checkpoints():
        entry = get_checkpoint(name)
        try:
            m = read_manifest(name)
        except FileNotFoundError:
            print(f"{name:18s} {entry.lesson:34s} not trained yet: cvkit checkpoints retrain {name}")
            continue
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in m["metrics"].items())
        print(
            f"{name:18s} {entry.lesson:34s} {m['bytes'] / 2**20:5.2f} MB  {m['train_seconds'] / 60:5.1f} min on "
            f"{m['device']}  {metrics}"
        )
    print(f"total {total_size_mb():.2f} MB (budget {SIZE_BUDGET_MB:g} MB each, {TOTAL_BUDGET_MB:g} MB together)")
    return 0


def _retrain(args) -> int:
    from cvkit.lessons import TrainingPaused, retrain

    for name in args.names:
        options = [("--device", args.device), ("--max-minutes", args.max_minutes), ("--out", args.out)]
        command = shlex.join(
            ["cvkit", "checkpoints", "retrain", name] + [str(x) for o, v in options if v is not None for x in (o, v)]
        )
        try:
            manifest = retrain(
                name,
                device=args.device,
                out=args.out,
                work_dir=args.work_dir if len(args.names) == 1 else None,
                max_minutes=args.max_minutes,
                progress=args.progress,
                command=command,
            )
        except TrainingPaused as exc:
            print(f"{name}: {exc}; run the same command again to resume")
            return 3
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in manifest["metrics"].items())
        print(
            f"{name}: {manifest['bytes'] / 2**20:.2f} MB, trained {manifest['train_seconds'] / 60:.1f} min on "
            f"{manifest['device']}; {metrics}"
        )
    return 0


def _compare(args) -> int:
    from cvkit.lessons import compare_manifests

    ok, lines = compare_manifests(args.name, args.folder)
    print("\n".join(lines))
    print(f"{args.name}: {'reproduced' if ok else 'NOT reproduced'} within the stated tolerances")
    return 0 if ok else 1
