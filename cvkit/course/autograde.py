"""``cvkit autograde``: grade a folder of submissions with nbgrader, one isolated process per student.

Plain ``nbgrader autograde`` grades a batch serially in one process against one SQLite
gradebook; one broken notebook can abort the batch, a dead kernel leaves a grade that
exports as 0.0, and parallel runs would corrupt the gradebook. Here:

1. the assignment is generated afresh from ``solutions/`` in a scratch course folder
   (:mod:`cvkit.course.nbgrader_course`): that gradebook holds the hidden tests;
2. every submission is repaired (:mod:`cvkit.course.repair`) and graded by nbgrader in a
   process of its own, with its own copy of the gradebook, under
   :class:`cvkit.course.execute.GuardedExecute` (per-cell timeout, time and memory limits,
   stderr harmless, dead kernels recorded); ``-j N`` runs N such processes at once;
3. the parent process alone writes the results: ``grades.csv``, nbgrader's ``gradebook.db``,
   ``feedback/<student>/<a>.html`` without hidden tests, ``autograded/<student>/<a>.ipynb``
   and ``report.md``.

Every student gets a row whose ``status`` says what happened (:data:`STATUSES`), so a crash
is never mistaken for an honest 0.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cvkit.course.assignments import Assignment, graded_cells, is_test_cell, nbgrader_meta, read_json
from cvkit.course.kernel_sockets import private_kernel_sockets
from cvkit.course.nbgrader_course import COURSE_ID, NbgraderError, copy_release, generate, prepare_environment, run_converter
from cvkit.course.release import release_drift
from cvkit.course.submissions import Submission, collect_submissions

Status = Literal["graded", "repaired", "exited", "timeout", "crashed", "ungradable"]
STATUSES: dict[str, str] = {
    "graded": "ran to the end; the points are what the tests gave",
    "repaired": "graded after restoring deleted, duplicated, edited or stripped cells, or a renamed file",
    "exited": "the notebook called sys.exit()/exit(); the cells after it still ran",
    "timeout": "a cell hit the per-cell limit (interrupted), or the notebook hit its time limit (stopped)",
    "crashed": "the kernel died (os._exit, a segfault, out of memory); tests after it score 0",
    "ungradable": "no readable notebook, or nbgrader could not grade it; 0 points",
}
_SEVERITY = ["graded", "repaired", "exited", "timeout", "crashed", "ungradable"]


@dataclass
class GradeResult:
    """One student's row of the grades table.

    Attributes:
        student: student id.
        status: one of :data:`STATUSES`.
        scores: points per test cell (``grade_id`` -> points).
        total, max_total: points earned and available.
        message: what happened, for the instructor (repairs, crashes, failed tests).
        failures: per failed test cell, the error the student saw (``"GradingError: ..."``).
        seconds: wall time of grading this student.
        submitted: the file that was graded.
        feedback: the student's feedback HTML (relative to the output folder), or ``""``.
    """

    student: str
    status: Status
    scores: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    max_total: float = 0.0
    message: str = ""
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    submitted: str = ""
    feedback: str = ""


@dataclass
class AutogradeReport:
    """The results of one ``cvkit autograde`` run."""

    assignment: str
    results: list[GradeResult]
    test_cells: list[tuple[str, float]]
    out_dir: str
    jobs: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def max_total(self) -> float:
        """Points available."""
        return sum(p for _, p in self.test_cells)

    def to_markdown(self) -> str:
        """``report.md``: one row per student, then the status legend."""
        cols = [gid for gid, _ in self.test_cells]
        lines = [
            f"# Autograde {self.assignment}: {len(self.results)} submission(s), {self.jobs} job(s), {self.seconds:.1f} s",
            "",
            *[f"> warning: {w}" for w in self.warnings],
            "",
            "| student | status | total | " + " | ".join(cols) + " | seconds | message |",
            "|---|---|---:|" + "---:|" * len(cols) + "---:|---|",
        ]
        for r in self.results:
            msg = r.message.replace("|", "\\|").replace("\n", " ")
            cells = " | ".join(_fmt(r.scores.get(c, 0.0)) for c in cols)
            lines.append(f"| {r.student} | {r.status} | {_fmt(r.total)}/{_fmt(r.max_total)} | {cells} | {r.seconds:.1f} | {msg} |")
        lines += ["", "Statuses: " + "; ".join(f"**{k}**: {v}" for k, v in STATUSES.items()), ""]
        return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:g}"


# ---------------------------------------------------------------------------------------------
# the batch (parent process)
# ---------------------------------------------------------------------------------------------
def autograde(
    assignment: Assignment,
    submissions: str | os.PathLike,
    out: str | os.PathLike | None = None,
    jobs: int = 1,
    cell_timeout: float | None = None,
    progress: bool = True,
    keep_work: bool = False,
    prepared: str | os.PathLike | None = None,
) -> AutogradeReport:
    """Grade every submission of ``assignment`` found in ``submissions``.

    Args:
        assignment: from :func:`cvkit.course.assignments.load_assignment`.
        submissions: folder of ``<student>/<a>.ipynb`` or ``<student>_<a>.ipynb`` files.
        out: output folder (default ``build/autograde/<a>`` under the course root); an earlier run's
            output there is moved aside to ``<out>.previous-<time>``, never deleted.
        jobs: submissions graded at once (each in its own process and kernel).
        cell_timeout: seconds per cell (default: the assignment's ``cell_timeout``).
        progress: print one line per graded student.
        keep_work: keep the scratch folders (``out/.work``) for debugging.
        prepared: a folder made by :func:`prepare` to reuse (saves generating the assignment again).

    Returns:
        AutogradeReport; ``grades.csv``, ``report.md``, ``gradebook.db``, ``feedback/`` and
        ``autograded/`` are written into ``out``.

    Raises:
        ValueError: ``jobs`` < 1, or two submissions map to one student.
        FileNotFoundError: the submissions folder does not exist.
        cvkit.course.nbgrader_course.NbgraderError: the source notebook cannot be generated.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    tic = time.perf_counter()
    prepare_environment()
    out_dir = Path(out) if out is not None else assignment.root / "build" / "autograde" / assignment.name
    out_dir = _replace_output_folder(out_dir.resolve(), Path(submissions).resolve(), assignment.root.resolve())
    work = out_dir / ".work"
    template = Path(prepared) if prepared is not None else prepare(assignment, work / "template")
    release_nb = template / "published" / assignment.notebook_file
    notices = []
    drift = release_drift(template / "published", assignment.release_dir)
    if drift:
        notices.append(f"the committed release differs from solutions/ ({drift[0]}); students may have a different version")
    tests = [(c.grade_id, c.points) for c in graded_cells(read_json(release_nb))]
    found = collect_submissions(submissions, assignment.name, {nbgrader_meta(c).get("grade_id") for c in read_json(release_nb)["cells"] if nbgrader_meta(c)})
    if not found:
        notices.append(f"no submissions found in {submissions}")

    jobs_spec = [
        _job(assignment, s, template, release_nb, work, out_dir, cell_timeout or assignment.cell_timeout, max(1, (os.cpu_count() or 1) // jobs))
        for s in found
    ]
    results = _run_all(jobs_spec, jobs, assignment.time_limit, progress)
    _write_gradebook(template / "gradebook.db", out_dir / "gradebook.db", assignment, results)
    report = AutogradeReport(assignment.name, results, tests, str(out_dir), jobs, time.perf_counter() - tic, notices)
    write_csv(report, out_dir / "grades.csv")
    (out_dir / "report.md").write_text(report.to_markdown())
    (out_dir / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return report


def _replace_output_folder(out_dir: Path, submissions: Path, root: Path) -> Path:
    """Make ``out_dir`` ready for a new run without losing an earlier run's grades.

    An earlier run's output (it has ``grades.csv``) is moved aside to
    ``<out_dir>.previous-<YYYYmmdd-HHMMSS>``, never deleted: an instructor may have edited its grades.
    A folder holding only an interrupted run's scratch space (``.work``) is removed.

    Raises:
        ValueError: ``out_dir`` holds the submissions or the course, or is a non-empty folder without
            ``grades.csv`` (the message suggests a fresh folder).
    """
    if out_dir == submissions or out_dir in submissions.parents or out_dir == root or out_dir in root.parents:
        raise ValueError(f"--out {out_dir} would replace the submissions or the course; choose a new folder such as build/autograde/<a>")
    if out_dir.exists():
        entries = {p.name for p in out_dir.iterdir()}
        if "grades.csv" in entries:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            kept = out_dir.with_name(f"{out_dir.name}.previous-{stamp}")
            suffix = 1
            while kept.exists():
                kept = out_dir.with_name(f"{out_dir.name}.previous-{stamp}-{suffix}")
                suffix += 1
            out_dir.rename(kept)
            print(f"the earlier grades in {out_dir} were moved to {kept}")
        elif entries <= {".work"}:
            shutil.rmtree(out_dir)
        else:
            raise ValueError(f"--out {out_dir} exists and is not the output of an earlier cvkit autograde; choose an empty or new folder")
    return out_dir


def prepare(assignment: Assignment, folder: Path) -> Path:
    """Generate the assignment in a scratch nbgrader course at ``folder`` (gradebook with the hidden tests).

    Returns:
        ``folder``, holding ``source/``, ``release/``, ``gradebook.db`` and ``published/`` (what
        ``cvkit release`` would publish).
    """
    generated = generate(assignment, folder, log_file=folder.parent / f"{folder.name}-generate.log")
    copy_release(generated, folder / "published", assignment)
    return folder


def _job(assignment: Assignment, sub: Submission, template: Path, release_nb: Path, work: Path, out_dir: Path, cell_timeout: float, threads: int) -> dict:
    return {
        "assignment": assignment.name,
        "student": sub.student,
        "notebook": str(sub.notebook) if sub.notebook else None,
        "notes": list(sub.notes),
        "template": str(template),
        "release": str(release_nb),
        "work": str(work / "students" / sub.student),
        "out": str(out_dir),
        "cell_timeout": float(cell_timeout),
        "time_limit": float(assignment.time_limit),
        "memory_limit_gb": float(assignment.memory_limit_gb),
        "threads": int(threads),
    }


def _run_all(specs: list[dict], jobs: int, time_limit: float, progress: bool) -> list[GradeResult]:
    """Run the workers, at most ``jobs`` at once; a worker that overstays is killed with its kernel."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = multiprocessing.get_context(method)
    pending = list(specs)
    running: dict[str, tuple] = {}
    results: dict[str, GradeResult] = {}
    deadline_extra = 120.0  # kernel start, nbgrader, feedback
    while pending or running:
        while pending and len(running) < jobs:
            spec = pending.pop(0)
            Path(spec["work"]).mkdir(parents=True, exist_ok=True)
            proc = ctx.Process(target=_worker_main, args=(spec,), name=f"cvkit-grade-{spec['student']}")
            proc.start()
            running[spec["student"]] = (proc, spec, time.monotonic())
        time.sleep(0.05)
        for student, (proc, spec, started) in list(running.items()):
            overdue = time.monotonic() - started > time_limit + deadline_extra
            if proc.is_alive() and not overdue:
                continue
            if proc.is_alive():
                _kill_worker(proc, spec)
            proc.join(5)
            result = _read_result(spec, time.monotonic() - started, overdue, proc.exitcode)
            results[student] = result
            del running[student]
            if progress:
                print(f"[{result.status:>10}] {student}: {_fmt(result.total)}/{_fmt(result.max_total)} ({result.seconds:.1f} s)"
                      + (f"  {result.message[:140]}" if result.message else ""), flush=True)
    return [results[s["student"]] for s in specs]


def _kill_worker(proc, spec: dict) -> None:
    pid_file = Path(spec["work"]) / "kernel.pid"
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().strip()), kill)
        except (OSError, ValueError):
            pass
    try:
        os.killpg(proc.pid, kill) if hasattr(os, "killpg") else proc.kill()
    except OSError:
        proc.kill()


def _read_result(spec: dict, seconds: float, overdue: bool, exitcode) -> GradeResult:
    path = Path(spec["work"]) / "result.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            return GradeResult(**data)
        except (ValueError, TypeError):
            pass
    if overdue:
        status, message = "timeout", f"grading did not finish within the time limit plus {120:.0f} s and was stopped"
    else:
        status, message = "crashed", f"the grading process ended without a result (exit code {exitcode}); see {Path(spec['work']) / 'worker.log'}"
    result = _empty_result(spec, status, message)
    result.seconds = seconds
    return result


def _empty_result(spec: dict, status: Status, message: str) -> GradeResult:
    """A row with 0 in every test cell, for a submission the grader could not finish."""
    tests = graded_cells(read_json(spec["release"]))
    return GradeResult(spec["student"], status, {c.grade_id: 0.0 for c in tests}, 0.0, sum(c.points for c in tests),
                       message="; ".join(spec["notes"] + [message]), submitted=spec["notebook"] or "")


# ---------------------------------------------------------------------------------------------
# one student (worker process)
# ---------------------------------------------------------------------------------------------
def _worker_main(spec: dict) -> None:
    """Entry point of a worker process: grade one submission, write ``result.json``, never raise."""
    work = Path(spec["work"])
    if hasattr(os, "setsid"):
        try:
            os.setsid()
        except OSError:
            pass
    log = open(work / "worker.log", "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    _fresh_event_loop()
    tic = time.perf_counter()
    try:
        result = grade_submission(spec)
    except Exception as exc:  # noqa: BLE001 - whatever happens, the student gets a row
        traceback.print_exc()
        result = _empty_result(spec, "ungradable", f"grader error: {type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - tic
    (work / "result.json").write_text(json.dumps(asdict(result)))
    log.flush()
    os._exit(0)  # skip atexit handlers inherited from the parent


def _fresh_event_loop() -> None:
    """A forked worker must not reuse the parent's asyncio loop (its epoll descriptor is shared)."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        import jupyter_core.utils

        jupyter_core.utils._loop.set(loop)
        jupyter_core.utils._runner_map.clear()
    except (ImportError, AttributeError):  # other jupyter_core versions keep no such state
        pass


def grade_submission(spec: dict) -> GradeResult:
    """Grade one submission in ``spec["work"]`` (called in a worker process; see :func:`autograde`)."""
    from nbgrader.api import Gradebook
    from nbgrader.converters import Autograde, GenerateFeedback

    from cvkit.course import execute
    from cvkit.course.feedback import scrub_hidden_tests
    from cvkit.course.repair import UngradableError, parse_notebook, repair_submission, review_flags

    a, student = spec["assignment"], spec["student"]
    work, out = Path(spec["work"]), Path(spec["out"])
    release = read_json(spec["release"])
    tests = graded_cells(release)
    max_total = sum(c.points for c in tests)
    notes = list(spec["notes"])
    base = GradeResult(student, "ungradable", {c.grade_id: 0.0 for c in tests}, 0.0, max_total, submitted=spec["notebook"] or "")
    if spec["notebook"] is None:
        base.message = "; ".join(notes) or "no notebook submitted"
        return base
    try:
        submission = parse_notebook(Path(spec["notebook"]).read_text(encoding="utf-8", errors="replace"))
        repaired, repairs = repair_submission(submission, release)
        notes += review_flags(repaired)
    except UngradableError as exc:
        base.message = "; ".join(notes + [str(exc)])
        return base

    # a private course folder: the generated source (shared, read-only) and a copy of the gradebook
    course = work / "course"
    course.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(spec["template"]) / "gradebook.db", course / "gradebook.db")
    try:
        (course / "source").symlink_to(Path(spec["template"]) / "source", target_is_directory=True)
    except OSError:  # no symlinks (Windows without developer mode): copy
        shutil.copytree(Path(spec["template"]) / "source", course / "source")
    sub_dir = course / "submitted" / student / a
    sub_dir.mkdir(parents=True)
    (sub_dir / f"{a}.ipynb").write_text(json.dumps(repaired, indent=1))

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(spec["threads"])
    startup = work / "kernel_startup.py"
    startup.write_text(execute.KERNEL_STARTUP)
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    pipeline = [execute.GuardedExecute if getattr(p, "__name__", "") == "Execute" else p for p in default]
    execute.EVENTS.clear()
    extra = {
        "Autograde.autograde_preprocessors": pipeline,
        "GuardedExecute.timeout": int(round(spec["cell_timeout"])),
        "GuardedExecute.time_limit": spec["time_limit"],
        "GuardedExecute.memory_limit_gb": spec["memory_limit_gb"],
        "GuardedExecute.pid_file": str(work / "kernel.pid"),
        "GuardedExecute.extra_arguments": ["--HistoryManager.hist_file=:memory:", f"--IPKernelApp.exec_files={startup}"],
    }
    with private_kernel_sockets() as sockets:  # no TCP port race between parallel workers
        extra.update({f"KernelManager.{trait}": value for trait, value in sockets.items()})
        for attempt in (1, 2):  # a failure of nbgrader itself (not of the student's code) is retried once
            try:
                run_converter(Autograde, course, a, student, log_file=work / "nbgrader.log", **extra)
                break
            except NbgraderError as exc:
                if attempt == 2:
                    base.message = "; ".join(notes + repairs + [f"nbgrader could not grade it (tried twice): {str(exc).splitlines()[0]}"])
                    return base
                execute.EVENTS.clear()
                shutil.copyfile(Path(spec["template"]) / "gradebook.db", course / "gradebook.db")
                shutil.rmtree(course / "autograded", ignore_errors=True)

    # scores from the private gradebook (nbgrader's own verdict)
    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        for grade in gb.find_submission_notebook(a, a, student).grades:
            if grade.name in base.scores:
                scores[grade.name] = float(grade.score or 0.0)
    graded_path = course / "autograded" / student / a / f"{a}.ipynb"
    graded = read_json(graded_path)
    failures = {}
    for cell in graded["cells"]:
        if is_test_cell(cell):
            gid = nbgrader_meta(cell)["grade_id"]
            for o in cell.get("outputs", []):
                if o.get("output_type") == "error":
                    failures[gid] = f"{o.get('ename')}: {str(o.get('evalue', '')).strip().splitlines()[0] if str(o.get('evalue', '')).strip() else ''}".strip()
                    break

    # instructor copy (hidden tests included), then student feedback without them
    dest = out / "autograded" / student
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(graded_path, dest / f"{a}.ipynb")
    os.chmod(dest / f"{a}.ipynb", 0o644)
    os.chmod(graded_path, 0o644)
    graded_path.write_text(json.dumps(scrub_hidden_tests(graded, release), indent=1))
    feedback = ""
    try:
        run_converter(GenerateFeedback, course, a, student, log_file=work / "nbgrader.log", **{"HTMLExporter.template_name": "feedback"})
        html = course / "feedback" / student / a / f"{a}.html"
        target = out / "feedback" / student / f"{a}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(html, target)
        os.chmod(target, 0o644)
        feedback = str(target.relative_to(out))
    except (NbgraderError, OSError) as exc:
        notes.append(f"feedback not generated: {str(exc).splitlines()[0]}")

    status, event_notes = _status(execute.EVENTS, repairs + [n for n in notes if "instead of" in n])
    message = notes + repairs + event_notes
    failed = [f"{gid} ({why[:120]})" for gid, why in failures.items() if scores.get(gid, 0.0) < dict((c.grade_id, c.points) for c in tests)[gid]]
    if failed:
        message.append("failed: " + "; ".join(failed))
    return GradeResult(student, status, {c.grade_id: scores.get(c.grade_id, 0.0) for c in tests}, sum(scores.values()), max_total,
                       "; ".join(message), failures, 0.0, spec["notebook"], feedback)


def _status(events: list[dict], repairs: list[str]) -> tuple[Status, list[str]]:
    """The status of a graded submission from the execution events and the repairs made."""
    status: Status = "repaired" if repairs else "graded"
    notes = []
    for ev in events:
        kind = ev["kind"]
        where = f"cell {ev['grade_id']!r}" if ev.get("grade_id") else f"cell {ev['cell']}"
        notes.append(f"{where}: {ev['message']}")
        new: Status = {"exit": "exited", "timeout": "timeout", "time_limit": "timeout", "unresponsive": "timeout", "memory": "crashed", "died": "crashed"}.get(kind, "graded")
        if _SEVERITY.index(new) > _SEVERITY.index(status):
            status = new
    return status, notes


# ---------------------------------------------------------------------------------------------
# outputs (parent process only)
# ---------------------------------------------------------------------------------------------
def write_csv(report: AutogradeReport, path: Path) -> None:
    """``grades.csv``: student, status, total, max, one column per test cell, seconds, message, file."""
    cols = [gid for gid, _ in report.test_cells]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "status", "total", "max", *cols, "seconds", "message", "submitted"])
        for r in report.results:
            writer.writerow([r.student, r.status, _fmt(r.total), _fmt(r.max_total), *(_fmt(r.scores.get(c, 0.0)) for c in cols), f"{r.seconds:.1f}", r.message, r.submitted])


def _write_gradebook(template: Path, dest: Path, assignment: Assignment, results: list[GradeResult]) -> None:
    """nbgrader's gradebook for the batch, written by this (one) process: every student, every grade."""
    from nbgrader.api import Gradebook

    shutil.copyfile(template, dest)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{dest}", COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarnings about nbgrader's session use
        for r in results:
            gb.update_or_create_student(r.student)
            gb.update_or_create_submission(assignment.name, r.student)
            notebook = gb.find_submission_notebook(assignment.name, assignment.name, r.student)
            for grade in notebook.grades:
                if grade.name in r.scores:
                    grade.auto_score = r.scores[grade.name]
                    grade.needs_manual_grade = False
            gb.db.commit()
