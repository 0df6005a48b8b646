"""Time ``cvkit autograde`` on a1's fixture submissions: the 18 original careless students, or all of them.

    python benchmarks/autograde_fixtures.py                       # the 18 originals, -j 1 and -j 2, sandboxed
    python benchmarks/autograde_fixtures.py --jobs 2 --sandbox none --set all

Each run copies the submissions into a temporary folder (renaming ``*.ipynb.corrupt``), grades them
with ``cvkit.course.assignments.autograde.autograde`` (the assignment prepared once, outside the timing),
and prints the wall time, the statuses and whether every row matches ``tests/fixtures/a1_convolution/expected.csv``.
Run it under the machine's CPU lock; the figures in benchmarks/README.md say how they were measured.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "a1_convolution"
ORIGINAL_18 = [
    "alice_warning",
    "bob_raises",
    "carol_infinite_loop",
    "dave_sys_exit",
    "erin_kernel_dies",
    "frank_out_of_memory",
    "grace_deleted_test",
    "heidi_duplicated_cells",
    "ivan_edited_tests",
    "judy_stripped_metadata",
    "ken_renamed",
    "liam_huge_output",
    "mallory_missing_import",
    "niaj_always_equal",
    "olivia_untouched",
    "peggy_not_a_notebook",
    "quinn",
    "rupert_no_notebook",
]


def copy_submissions(dest: Path, which: str) -> dict[str, dict]:
    """Copy the chosen fixtures to ``dest``; returns their expected rows."""
    with open(FIXTURES / "expected.csv", newline="") as fh:
        expected = {row["student"]: row for row in csv.DictReader(fh)}
    keep = set(ORIGINAL_18) if which == "original" else set(expected)
    for entry in sorted((FIXTURES / "submissions").iterdir()):
        student = entry.name.split("_a1_convolution")[0] if entry.is_file() else entry.name
        if which == "original" and student not in keep:
            continue
        target = dest / entry.name
        shutil.copytree(entry, target) if entry.is_dir() else shutil.copyfile(entry, target)
    for corrupt in dest.rglob("*.ipynb.corrupt"):
        corrupt.rename(corrupt.with_name(corrupt.name.removesuffix(".corrupt")))
    return {s: e for s, e in expected.items() if which != "original" or s in keep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "none"], default="auto")
    parser.add_argument(
        "--set", choices=["original", "all"], default="original", help="the 18 original fixtures, or every fixture"
    )
    parser.add_argument("--rows", action="store_true", help="print every row (student, status, total, seconds)")
    args = parser.parse_args()

    from cvkit.course.assignments.autograde import autograde, prepare
    from cvkit.course.assignments.model import load_assignment
    from cvkit.course.assignments.sandbox import sandbox_status

    a = load_assignment("a1_convolution", ROOT)
    print(
        f"cvkit autograde a1_convolution, {args.set} fixtures; sandbox {args.sandbox} ({sandbox_status()[1]}); "
        f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}"
        if hasattr(os, "getloadavg")
        else ""
    )
    with tempfile.TemporaryDirectory(prefix="cvkit-bench-") as tmp:
        prepared = prepare(a, Path(tmp) / "course")
        for jobs in args.jobs:
            subs = Path(tmp) / f"subs-{jobs}"
            expected = copy_submissions(subs, args.set)
            tic = time.perf_counter()
            report = autograde(
                a, subs, Path(tmp) / f"out-{jobs}", jobs=jobs, progress=False, prepared=prepared, sandbox=args.sandbox
            )
            seconds = time.perf_counter() - tic
            wrong = [
                f"{r.student}: {r.status} {r.total:g} (expected {expected[r.student]['status']} {expected[r.student]['total']})"
                for r in report.results
                if r.student in expected
                and (r.status != expected[r.student]["status"] or r.total != float(expected[r.student]["total"]))
            ]
            counts: dict[str, int] = {}
            for r in report.results:
                counts[r.status] = counts.get(r.status, 0) + 1
            print(
                f"-j {jobs}: {len(report.results)} submissions in {seconds:.1f} s, isolated={report.isolated}, "
                f"{', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}; rows as expected: {not wrong}"
            )
            for line in wrong:
                print("   ", line)
            if args.rows:
                for r in report.results:
                    print(
                        f"    {r.student:24s} {r.status:10s} {r.total:g}/{r.max_total:g}  {r.seconds:5.1f} s  feedback={'yes' if r.feedback else 'withheld/none'}"
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
