"""Grading on Dask: ``cvkit autograde -j N`` (a ``LocalCluster``) and ``--scheduler ADDRESS`` (a Dask cluster).

One code path for one machine and for many: :class:`DaskBackend` is the backend of
:func:`cvkit.course.assignments.autograde.autograde`. Without a scheduler it starts a Dask
``LocalCluster`` of ``N`` single-threaded worker processes on this machine; with one it connects to a
running cluster (``dask scheduler`` + ``dask worker`` on several machines, or dask-jobqueue's
``SLURMCluster`` on a university cluster). Either way:

* every submission is one Dask task, :func:`grade_on_worker`: the picklable
  :class:`~cvkit.course.assignments.grade.GradeJob` goes out (its assignment spec is sent to each worker
  once), a :class:`~cvkit.course.assignments.grade.GradeResult` comes back. The worker grades it with
  :func:`~cvkit.course.assignments.grade.grade_submission`, exactly as on one machine: the submission
  runs in a bubblewrap sandbox of its own with its limits, its tests' checks run in the worker;
* the worker writes only into a scratch folder of its own (a temporary folder on its machine, removed
  afterwards); the calling process alone writes ``grades.csv``, the feedback and the gradebook;
* a worker lost mid-grade (its machine went down, it was killed) makes the scheduler give that
  submission to another worker; a submission whose grading kills workers again and again (Dask's
  ``allowed-failures``, 3 by default) gets an ``ungradable`` row saying so, and the batch goes on.

What a cluster needs: every worker runs the same cvkit (checked: a worker with another version grades
nothing) with bubblewrap working, and sees the course, the submissions and the output folder's
``.work/template`` at the same paths as the calling process (a shared file system, as on a SLURM
cluster). Sources: https://distributed.dask.org/en/stable/ (futures, ``as_completed``, resilience),
https://jobqueue.dask.org/ (SLURM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from cvkit.course.assignments.grade import (
    AssignmentSpec,
    GradeJob,
    GradeResult,
    describe_error,
    empty_result,
    grade_submission,
    warm_up,
)
from cvkit.course.assignments.sandbox import sandbox_status

RETRIES = 1  # a task that raised (not the submission: grading never raises for that) is tried once more


def _source_digest() -> str:
    """A hash of the grading sources as they are on disk now (see :func:`grader_version`)."""
    import cvkit

    digest = hashlib.sha256(cvkit.__version__.encode())
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("*.py")) + [
        here.parents[1] / "grading.py",
        *sorted((here.parents[1] / "grading").glob("*.py")),
    ]:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def grader_version() -> str:
    """The grading code this process runs: a hash of cvkit's version and the ``cvkit.course.assignments`` and
    ``cvkit.grading`` sources, read once, at the first call in this process (the calling process at the
    batch's start, a worker at its first task). The calling process and every worker must agree, or the
    worker grades nothing.

    Read once, not at every task: a worker that already runs the batch's code must not refuse the rest of
    the batch because the files on disk changed under it (a ``git pull`` or an editable install edited
    mid-batch made every later row ``ungradable`` before). :meth:`DaskBackend.__call__` says so when the
    sources changed during a batch."""
    return _source_digest()


_warmed: set[str] = set()


def grade_on_worker(job: GradeJob, spec: AssignmentSpec, version: str, keep_work: bool = False) -> GradeResult:
    """The Dask task: grade one submission on this worker and return its row; never raises for the submission.

    Args:
        job: the job, its ``spec`` left out (``None``: sent once per worker as ``spec``).
        spec: the assignment.
        version: the caller's :func:`grader_version`.
        keep_work: grade in ``job.work`` and keep it (debugging; on this worker's machine) instead of a
            temporary folder that is removed afterwards.

    Returns:
        GradeResult with the feedback page and the instructor's notebook attached; an ``ungradable`` row
        when this worker runs another cvkit, or cannot sandbox a job that must be sandboxed.
    """
    job = dataclasses.replace(job, spec=spec)
    tic = time.perf_counter()
    host = socket.gethostname()
    if version != grader_version():
        return empty_result(
            job,
            "ungradable",
            f"the grading worker on {host} runs another version of cvkit's grader ({grader_version()}, the caller "
            f"{version}); install the same cvkit on every worker, and restart the calling process if cvkit changed since it started",
        )
    if job.mode == "bwrap":
        works, why = sandbox_status()
        if not works:
            return empty_result(job, "ungradable", f"the grading worker on {host} cannot sandbox submissions ({why})")
    if spec.name not in _warmed:  # imports of the tests' checks and the feedback templates, once per worker
        warm_up(spec)
        _warmed.add(spec.name)
    scratch = None if keep_work else tempfile.mkdtemp(prefix="cvkit-grade-")
    work = Path(job.work) if scratch is None else Path(scratch) / "student"
    work.mkdir(parents=True, exist_ok=True)
    job = dataclasses.replace(job, work=str(work))
    try:
        with (
            open(work / "worker.log", "a", buffering=1) as log,
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            try:
                return grade_submission(job)
            except Exception as exc:  # noqa: BLE001 - whatever happens, the student gets a row
                import traceback

                traceback.print_exc()
                result = empty_result(job, "ungradable", describe_error(exc))
                result.seconds = time.perf_counter() - tic
                return result
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


class DaskBackend:
    """Runs a batch's jobs on Dask (the ``backend`` of :func:`~cvkit.course.assignments.autograde.autograde`).

    Args:
        scheduler: a Dask scheduler's address (``tcp://host:8786``) or scheduler file (a path ending in
            ``.json``); ``None``: a ``LocalCluster`` of ``jobs`` single-threaded worker processes here.
        keep_work: keep each job's scratch folder (see :func:`grade_on_worker`).

    Calling it, ``backend(jobs_list, jobs, record)``, grades every job and calls ``record(result)`` in
    this process as each one finishes (in the order they finish).

    Raises:
        ImportError: Dask distributed is not installed (``pip install 'cvkit-course[course]'``).
        OSError, TimeoutError: the scheduler cannot be reached.
    """

    def __init__(self, scheduler: str | None = None, keep_work: bool = False) -> None:
        self.scheduler = scheduler
        self.keep_work = keep_work

    def _client(self, jobs: int, stack: contextlib.ExitStack):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ImportError(
                "cvkit autograde runs its workers on Dask: pip install 'cvkit-course[course]' (or 'dask[distributed]')"
            ) from exc
        if self.scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=jobs,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    # the batch reports every job's fate itself; Dask's own ERROR lines were a benign shutdown
                    # race (a worker's heartbeat to the closing scheduler) printed after 100 graded submissions
                    silence_logs=logging.CRITICAL,
                )
            )
            return stack.enter_context(Client(cluster))
        if self.scheduler.endswith(".json"):
            return stack.enter_context(Client(scheduler_file=self.scheduler, timeout=30))
        return stack.enter_context(Client(self.scheduler, timeout=30))

    def __call__(self, jobs_list: list[GradeJob], jobs: int, record: Callable[[GradeResult], None]) -> None:
        if not jobs_list:
            return
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        with contextlib.ExitStack() as stack:
            client = self._client(jobs, stack)
            spec = client.scatter(jobs_list[0].spec, broadcast=True, hash=False)  # one copy per worker, not one per job
            version = grader_version()
            batch = uuid.uuid4().hex[:8]
            futures = {}
            for job in jobs_list:
                future = client.submit(
                    grade_on_worker,
                    dataclasses.replace(job, spec=None),
                    spec,
                    version,
                    self.keep_work,
                    key=f"cvkit-grade-{batch}-{job.student}",
                    pure=False,
                    retries=RETRIES,
                )
                futures[future] = job
            try:
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        result = future.result()
                    except KilledWorker as exc:
                        result = empty_result(
                            job,
                            "ungradable",
                            f"every Dask worker that graded it was lost ({exc}); grade it alone with -j 1",
                        )
                    except Exception as exc:  # noqa: BLE001 - the grader's failure, never the batch's
                        result = empty_result(job, "ungradable", describe_error(exc))
                    record(result)
            finally:  # interrupted: nothing is left running on the cluster
                client.cancel(list(futures))
        if _source_digest() != version:
            print(
                "note: cvkit's grading code changed on disk during this batch (an edit, a git pull or a reinstall). "
                "Workers kept grading with the code they had loaded, but each submission's sandbox started the "
                "runner from disk: grade again into a new --out folder to be sure every row used one version."
            )


def default_threads(jobs: int, scheduler: str | None) -> int:
    """CPU threads per submission: this machine's cores shared by ``jobs``; 1 on a cluster (one per worker)."""
    return 1 if scheduler else max(1, (os.cpu_count() or 1) // jobs)
