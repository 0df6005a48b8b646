"""Images/s of one process against N torchrun processes (DistributedDataParallel), through ``cvkit train``.

    python benchmarks/ddp_speed.py                          # CPU: gloo, fashion-mnist, lenet5 and resnext_mini
    python benchmarks/ddp_speed.py --nproc 2 --models resnext_mini --device cuda --train-images 60000

Each configuration is a real ``cvkit train`` command (``python -m cvkit train`` for one process,
``python -m torch.distributed.run --nproc_per_node N -m cvkit train`` for N), with the same
global batch, data and seed; the figure is ``images_per_second`` of the last epoch from the
history it writes (the first epoch includes warm-up). Configurations alternate over
``--repeats`` rounds and the median is reported. On the CPU the thread budget is what matters:
"1 process x T threads" against "N processes x T/N threads" uses the same cores.

Prints a Markdown table and the machine (versions, cores, load) for benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cvkit.train.distributed import torchrun_command

ROOT = Path(__file__).resolve().parent.parent


def run(nproc: int, threads: int, model: str, args, out: Path) -> tuple[float, float]:
    """One ``cvkit train`` run; returns (images/s of the last epoch, wall seconds of the command)."""
    train = [
        "train",
        "--dataset",
        args.dataset,
        "--model",
        model,
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--train-images",
        str(args.train_images),
        "--val-images",
        "500",
        "--no-progress",
        "--no-resume",
        "--out",
        str(out),
    ]
    if args.device:
        train += ["--device", args.device]
    if nproc == 1:
        command = [sys.executable, "-m", "cvkit", *train]
    else:
        command = torchrun_command(nproc, "-m", "cvkit", *train)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    tic = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    rows = json.loads((out / "history.json").read_text())["rows"]
    return rows[-1]["images_per_second"], wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["lenet5", "resnext_mini"])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--nproc", type=int, default=2, help="processes of the distributed run (default 2)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads in all (default: the cores)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256, help="global batch")
    p.add_argument("--train-images", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default=None, help="cpu or cuda (default: the best available)")
    args = p.parse_args()

    import torch

    configs = [
        (1, args.threads),
        (1, max(args.threads // args.nproc, 1)),
        (args.nproc, max(args.threads // args.nproc, 1)),
    ]
    results: dict[tuple, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for model in args.models:
                for nproc, threads in configs:
                    results.setdefault((model, nproc, threads), []).append(
                        run(nproc, threads, model, args, Path(tmp) / "out")
                    )

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} after the runs; {args.dataset}, "
        f"{args.train_images} training images, global batch {args.batch_size}, {args.epochs} epochs, "
        f"median of {args.repeats}"
    )
    print(
        "\n| model | processes x threads | images/s, last epoch (runs) | vs 1 process, all threads "
        "| command wall time |"
    )
    print("|---|---|---|---|---|")
    for model in args.models:
        base = statistics.median(r[0] for r in results[(model, 1, args.threads)])
        for nproc, threads in configs:
            runs = results[(model, nproc, threads)]
            speed = statistics.median(r[0] for r in runs)
            each = ", ".join(f"{r[0]:.0f}" for r in runs)
            print(
                f"| {model} | {nproc} x {threads} | {speed:.0f} ({each}) | {speed / base:.2f}x "
                f"| {statistics.median(r[1] for r in runs):.1f} s |"
            )


if __name__ == "__main__":
    main()
