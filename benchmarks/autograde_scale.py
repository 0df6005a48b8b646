"""Submissions per minute of ``cvkit autograde`` on Dask: N copies of a1 fixtures, ``-j`` locally and ``--scheduler``.

    python benchmarks/autograde_scale.py -n 100 --jobs 1 2            # LocalCluster with 1, then 2 workers
    python benchmarks/autograde_scale.py -n 100 --cluster 2           # + a dask scheduler and 2 dask workers on 127.0.0.1
    python benchmarks/autograde_scale.py -n 100 --scheduler tcp://host:8786   # a running cluster (shared file system)

The submissions are ``-n`` copies of four a1 fixtures (full marks with a warning, one part raising,
a kernel dying mid-notebook, the untouched release), each under its own student name. The assignment
is prepared once, outside the timing; the timing includes starting the ``LocalCluster`` (or connecting
to the scheduler). Prints, per run: wall seconds, submissions per minute, seconds per submission per
worker, whether every row equals its fixture's ``expected.csv`` row, and a projection of 1,000 and
10,000 submissions on 1, 2, 8, 32 and 128 workers from the measured per-submission cost (linear: it
leaves out the scheduler's own limits and a shared file system's). Run it under the machine's CPU lock.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "a1_convolution"
CASES = ["alice_warning", "bob_raises", "erin_kernel_dies", "olivia_untouched"]


def copy_submissions(dest: Path, n: int) -> dict[str, tuple[str, float]]:
    """``n`` submissions cycling through :data:`CASES` (``<case>-<i>/a1_convolution.ipynb``); their expected rows."""
    with open(FIXTURES / "expected.csv", newline="") as fh:
        expected = {row["student"]: (row["status"], float(row["total"])) for row in csv.DictReader(fh)}
    out = {}
    for i in range(n):
        case = CASES[i % len(CASES)]
        student = f"{case}-{i:05d}"
        shutil.copytree(FIXTURES / "submissions" / case, dest / student)
        out[student] = expected[case]
    return out


def start_cluster(folder: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A ``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes on 127.0.0.1."""
    from distributed import Client

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    file = folder / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(file),
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    while not file.exists():
        time.sleep(0.2)
    for i in range(workers):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(file),
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"w{i}",
                ],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    with Client(scheduler_file=str(file), timeout=30) as client:
        client.wait_for_workers(workers, timeout=120)
        return client.scheduler.address, procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="submissions (copies of the four fixtures)")
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2], help="LocalCluster sizes to time")
    parser.add_argument(
        "--cluster", type=int, default=0, help="also start a dask scheduler and this many dask workers here and time it"
    )
    parser.add_argument("--scheduler", default=None, help="also time a running cluster at this address")
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto")
    args = parser.parse_args()

    from cvkit.course.assignments.autograde import autograde, prepare
    from cvkit.course.assignments.model import load_assignment
    from cvkit.course.assignments.sandbox import sandbox_status

    a = load_assignment("a1_convolution", ROOT)
    load = f"load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(
        f"cvkit autograde a1_convolution, {args.n} submissions; sandbox {args.sandbox} ({sandbox_status()[1]}); {os.cpu_count()} CPUs; {load}"
    )
    runs = [(f"-j {j}", j, None) for j in args.jobs]
    with tempfile.TemporaryDirectory(prefix="cvkit-scale-") as tmp:
        procs: list[subprocess.Popen] = []
        try:
            if args.cluster:
                address, procs = start_cluster(Path(tmp), args.cluster)
                runs.append(
                    (f"--scheduler (dask scheduler + {args.cluster} dask workers on 127.0.0.1)", args.cluster, address)
                )
            if args.scheduler:
                from distributed import Client

                with Client(args.scheduler, timeout=30) as client:
                    workers = len(client.scheduler_info()["workers"])
                runs.append((f"--scheduler {args.scheduler} ({workers} workers)", workers, args.scheduler))
            prepared = prepare(a, Path(tmp) / "course")
            print("| run | submissions | wall s | submissions/min | s per submission per worker | rows as expected |")
            print("|---|---|---|---|---|---|")
            costs = []
            for i, (label, workers, scheduler) in enumerate(runs):
                subs = Path(tmp) / f"subs-{i}"
                expected = copy_submissions(subs, args.n)
                tic = time.perf_counter()
                report = autograde(
                    a,
                    subs,
                    Path(tmp) / f"out-{i}",
                    jobs=workers,
                    progress=False,
                    prepared=prepared,
                    sandbox=args.sandbox,
                    scheduler=scheduler,
                )
                wall = time.perf_counter() - tic
                wrong = [r for r in report.results if (r.status, r.total) != expected[r.student]]
                ok = not wrong and len(report.results) == args.n
                if len(report.results) != args.n:
                    print(f"  {args.n - len(report.results)} submission(s) have no row")
                for r in wrong[:10]:  # a row that differs is a grading fault, not noise: say which and why
                    print(
                        f"  {r.student}: expected {expected[r.student]}, got ({r.status}, {r.total}): {r.message[:300]}"
                    )
                cost = wall * workers / args.n
                costs.append((label, cost))
                print(f"| {label} | {args.n} | {wall:.1f} | {60 * args.n / wall:.1f} | {cost:.2f} | {ok} |", flush=True)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
    print("\nprojection (linear in submissions / workers, from each run's cost per submission per worker):")
    print("| from | submissions | 1 worker | 2 | 8 | 32 | 128 |")
    print("|---|---|---|---|---|---|---|")
    for label, cost in costs:
        for m in (1000, 10000):
            print(
                f"| {label} | {m:,} | " + " | ".join(f"{cost * m / w / 60:.0f} min" for w in (1, 2, 8, 32, 128)) + " |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
