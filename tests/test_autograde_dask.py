"""``cvkit autograde`` on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1.

Four a1 fixture submissions (full marks but a warning, one part raising, a kernel that dies mid-notebook,
the untouched release) are graded with ``-j 1`` (a one-worker ``LocalCluster``) and through the cluster
(``--scheduler``); the rows must be equal and match ``expected.csv``. Then one worker is killed (its whole
process group, SIGKILL) while it grades a submission: the scheduler gives that submission to the other
worker, and no grade is lost.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.test_assignments import FIXTURES, ROOT, _assignment, _bwrap_works, fixture_submissions, prepared

pytest.importorskip("distributed")
pytestmark = pytest.mark.assignment

NAME = "a1_convolution"
STUDENTS = frozenset({"alice_warning", "bob_raises", "erin_kernel_dies", "olivia_untouched"})
_baseline: dict = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("dask-grading")


def _dask(*args: str) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]]


@contextmanager
def dask_cluster(folder: Path, workers: int = 2):
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1 (real ports); yields
    ``(address, worker processes)``; every process group is killed at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    scheduler_file = folder / "scheduler.json"
    procs = []

    def start(cmd, log):
        procs.append(
            subprocess.Popen(
                cmd,
                env=env,
                cwd=folder,
                stdout=open(folder / log, "w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        return procs[-1]

    try:
        start(
            _dask(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ),
            "scheduler.log",
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), (folder / "scheduler.log").read_text()
        workers_procs = [
            start(
                _dask(
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"w{i}",
                ),
                f"worker{i}.log",
            )
            for i in range(workers)
        ]
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(workers, timeout=90)
            address = client.scheduler.address
        yield address, workers_procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _rows(report) -> dict[str, tuple]:
    return {r.student: (r.status, r.total, tuple(sorted(r.scores.items())), r.isolated) for r in report.results}


def _grade(workdir: Path, tag: str, **kwargs):
    from cvkit.course.assignments.autograde import autograde

    subs = workdir / f"subs-{tag}"
    if not subs.exists():
        fixture_submissions(NAME, subs, STUDENTS)
    return autograde(
        _assignment(NAME), subs, workdir / f"out-{tag}", progress=False, prepared=prepared(NAME, workdir), **kwargs
    )


def baseline(workdir: Path) -> dict[str, tuple]:
    """The rows of ``-j 1`` (once per module), checked against expected.csv."""
    if not _baseline:
        report = _grade(workdir, "j1", jobs=1)
        with open(FIXTURES / NAME / "expected.csv", newline="") as fh:
            expected = {
                row["student"]: (row["status"], float(row["total"]))
                for row in csv.DictReader(fh)
                if row["student"] in STUDENTS
            }
        assert {s: row[:2] for s, row in _rows(report).items()} == expected
        assert report.isolated == _bwrap_works(), "sandboxed wherever bubblewrap works"
        _baseline.update(_rows(report))
    return _baseline


def test_grades_on_a_dask_cluster_equal_those_of_one_local_worker(workdir):
    reference = baseline(workdir)
    with dask_cluster(workdir / "cluster") as (address, _):
        report = _grade(workdir, "cluster", scheduler=address)
    assert _rows(report) == reference
    out = workdir / "out-cluster"
    assert sorted(p.name for p in (out / "feedback").iterdir()) == sorted(STUDENTS), (
        "the parent wrote every student's feedback"
    )
    assert (out / "gradebook.db").is_file() and not (out / ".work").exists()


def test_a_worker_killed_mid_grade_loses_no_grade(workdir):
    """SIGKILL to one worker's process group while it grades: its submission is regraded by the other worker."""
    import threading

    from distributed import Client

    reference = baseline(workdir)
    with dask_cluster(workdir / "cluster-kill") as (address, workers):
        outcome = {}

        def grade():
            try:
                outcome["report"] = _grade(workdir, "kill", scheduler=address)
            except BaseException as exc:  # noqa: BLE001 - shown by the assertion below
                outcome["error"] = exc

        batch = threading.Thread(target=grade, daemon=True)
        batch.start()
        killed: list[str] = []
        with Client(address, timeout=30) as watcher:
            w0 = next(a for a, w in watcher.scheduler_info()["workers"].items() if w["name"] == "w0")
            deadline = time.monotonic() + 300
            while not killed and time.monotonic() < deadline and batch.is_alive():
                first = set(watcher.processing().get(w0, ()))
                time.sleep(3.0)  # a submission takes seconds: one still there 3 s later is being graded
                killed = sorted(first & set(watcher.processing().get(w0, ())))
                if killed:
                    os.killpg(workers[0].pid, signal.SIGKILL)
        batch.join(600)
    assert killed, "worker w0 never got a submission to grade"
    assert "report" in outcome, f"the batch failed: {outcome.get('error')!r}"
    report = outcome["report"]
    assert _rows(report) == reference, f"killed while grading {killed}"
    assert workers[0].poll() is not None


def test_a_worker_keeps_the_grader_version_it_loaded_when_the_files_change(tmp_path):
    """The version a process grades under is read once, at its first call: grading files edited mid-batch (a
    ``git pull``, an editable install) made every later task of a running batch ``ungradable`` ("another
    version"), although each worker still ran the code it had loaded. A process started after the edit sees
    the new version, and ``_source_digest`` sees the change on disk (the batch's closing note)."""
    import shutil
    import textwrap

    shutil.copytree(ROOT / "cvkit", tmp_path / "cvkit", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    edit = textwrap.dedent(
        """
        from pathlib import Path
        from cvkit.course.assignments import cluster
        before = cluster.grader_version()
        path = Path(cluster.__file__)
        path.write_text(path.read_text() + "\\n# edited mid-batch\\n")
        print(cluster.__file__, before, cluster.grader_version(), cluster._source_digest())
        """
    )
    run = lambda code: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    where, before, after, on_disk = run(edit)
    (fresh,) = run("from cvkit.course.assignments import cluster; print(cluster.grader_version())")
    assert Path(where).is_relative_to(tmp_path), f"imported {where}, not the copy"
    assert after == before, "a process keeps the version of the code it loaded"
    assert on_disk != before, "the edit changed the sources on disk"
    assert fresh == on_disk, "a process started after the edit grades under the new version"
