"""Grading one submission, step by step: a typed, picklable job in, a result out.

:func:`grade_submission` is the unit of work of ``cvkit autograde``: it takes a :class:`GradeJob`
(plain, picklable data: it can run in a worker process or on a Dask worker) and returns a
:class:`GradeResult`; it writes only into the job's scratch folder, and the caller alone writes the
outputs. Its steps are named functions, in order:

1. :func:`load_submission`: read and repair the notebook (:mod:`cvkit.course.assignments.repair`);
2. :func:`scan_submission`: the static scan for forbidden calls and tampering (:mod:`cvkit.course.assignments.scan`);
3. :func:`run_submission`: run it in its sandbox; every test's ``answers`` hands back plain data
   (:mod:`cvkit.course.assignments.execute`);
4. :func:`score_tests`: each test's ``checks`` runs **here**, in the grader's process, on that data;
   points are awarded here and only here, clamped to each test's points;
5. :func:`build_feedback`: the student's feedback (hidden tests: name, points, message) and the
   instructor's copy, rendered here from the notebook alone, and scanned for solution and
   hidden-test lines (withheld, status ``review``, when one is found);
6. :func:`decide_status`: the row's status and message.

Free-response answers (:mod:`cvkit.course.assignments.manual`) are read from the repaired notebook in
step 1: unanswered ones get 0 here, written ones await a person (``None`` in :attr:`GradeResult.manual`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cvkit.course.assignments.execute import CellRecord, Execution, execute_submission, prepare_box
from cvkit.course.assignments.manual import AnswerCell, read_free_responses
from cvkit.course.assignments.model import cell_source, nbgrader_meta
from cvkit.course.assignments.rules import ResolvedRule
from cvkit.course.assignments.sandbox import Limits, SandboxMode
from cvkit.course.assignments.testcells import TestCell

Status = Literal["graded", "repaired", "exited", "timeout", "crashed", "review", "ungradable"]
STATUSES: dict[str, str] = {
    "graded": "ran to the end; the points are what the tests gave",
    "repaired": "graded after restoring deleted, duplicated, edited or stripped cells, or a renamed file",
    "exited": "the notebook called sys.exit()/exit()/quit(); the rest of that cell did not run, the cells after it did",
    "timeout": "a cell hit the per-cell limit (interrupted), or the notebook hit its time limit (stopped)",
    "crashed": "the notebook's process died or was stopped (os._exit, a segfault, the memory or process limit); tests after it score 0",
    "review": "graded, but a person should look: forbidden or tampering code was found, or the feedback was withheld",
    "ungradable": "no readable notebook, or the grader could not run it; 0 points",
}
SEVERITY: list[str] = ["graded", "repaired", "exited", "timeout", "crashed", "review", "ungradable"]


@dataclass(frozen=True)
class AssignmentSpec:
    """Everything grading needs to know about an assignment, as plain data (one per batch).

    Attributes:
        name: ``aN_topic``.
        release: the released notebook (what students were given), as a dict.
        tests: the test cells, split for grading (:func:`cvkit.course.assignments.testcells.test_cells`).
        rules: the resolved rules (:func:`cvkit.course.assignments.rules.resolve_rules`).
        source: the source notebook (solutions and hidden tests), for the instructor's copy.
        protected: lines of the solutions and hidden tests that must never reach a student.
        data_dir: the released ``data/`` folder (copied into each sandbox), or ``None``.
        limits: what a submission may use (threads are set per job).
        hidden_paths: folders a sandbox must not see (course, submissions, outputs, scratch space).
        private_dir: ``solutions/<a>/private/`` as generated (for ``checks`` only: ``$CVKIT_PRIVATE``), or ``None``.
        answers: the free-response questions a person grades (:func:`cvkit.course.assignments.manual.answer_cells`).
    """

    name: str
    release: dict = field(hash=False, compare=False)
    tests: tuple[TestCell, ...]
    rules: tuple[ResolvedRule, ...]
    source: dict = field(hash=False, compare=False)
    protected: tuple[str, ...] = ()
    data_dir: str | None = None
    limits: Limits = field(default_factory=Limits)
    hidden_paths: tuple[str, ...] = ()
    private_dir: str | None = None
    answers: tuple[AnswerCell, ...] = ()

    @property
    def max_total(self) -> float:
        """Autograded points available (the test cells)."""
        return sum(t.points for t in self.tests)

    @property
    def manual_max(self) -> float:
        """Points of the free-response answers, graded by a person."""
        return sum(a.points for a in self.answers)

    def test(self, grade_id: str) -> TestCell:
        """The test cell ``grade_id``."""
        return next(t for t in self.tests if t.grade_id == grade_id)


@dataclass(frozen=True)
class GradeJob:
    """One submission to grade: what :func:`grade_submission` needs, picklable.

    Attributes:
        spec: the assignment.
        student: the student id (unique in the batch; a folder and CSV key).
        name: the name as submitted (folder or file prefix), for the instructor and the LMS export.
        notebook: the submitted file, or ``None`` when there is none.
        notes: what collecting it found unusual (a renamed file, ...).
        work: a scratch folder of this job's own (the grader's; the sandbox sees only ``work/box``).
        mode: ``"bwrap"`` (isolated) or ``"none"`` (no sandbox available).
        threads: CPU threads the submission may use.
        sha256: the submitted file's hash (a re-run regrades only what changed or is missing).
    """

    spec: AssignmentSpec
    student: str
    name: str
    notebook: str | None
    notes: tuple[str, ...]
    work: str
    mode: SandboxMode = "bwrap"
    threads: int = 1
    sha256: str = ""


@dataclass
class GradeResult:
    """One student's row, and what the caller writes for them.

    Attributes:
        student: the student id; name: as submitted.
        status: one of :data:`STATUSES`.
        scores: points per test (``grade_id`` -> points), each within [0, the test's points].
        total, max_total: autograded points earned and available (free-response points are added by
            ``cvkit grades merge``: :func:`cvkit.course.assignments.manual.merge_manual`).
        message: what happened, for the instructor (repairs, stops, failed tests, review flags).
        failures: per failed test, the message the student sees.
        seconds: wall time of grading this student.
        submitted: the file graded.
        feedback: the feedback file (relative to the output folder), or ``""`` (none, or withheld).
        isolated: whether it ran in a bubblewrap sandbox.
        sha256: the submitted file's hash.
        feedback_html: the feedback page to write (not kept in ``results/``).
        instructor_notebook: the instructor's copy as JSON text (not kept in ``results/``).
        manual: per free-response answer, ``0.0`` when unanswered, ``None`` when it awaits a person.
        answers: per free-response answer, the student's text (for the grading sheet).
        manual_max: the free-response points available.
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
    name: str = ""
    isolated: bool = False
    sha256: str = ""
    feedback_html: str = field(default="", repr=False)
    instructor_notebook: str = field(default="", repr=False)
    manual: dict[str, float | None] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict, repr=False)
    manual_max: float = 0.0

    def to_row(self) -> dict:
        """The row as JSON-able data, without the files (``results/<student>.json``)."""
        row = asdict(self)
        row.pop("feedback_html")
        row.pop("instructor_notebook")
        return row


@dataclass
class TestVerdict:
    """A test's outcome, decided in the grader's process."""

    __test__ = False  # not a pytest test class

    grade_id: str
    points: float
    earned: float
    message: str = ""
    review: str = ""

    @property
    def passed(self) -> bool:
        """True when it earned its points."""
        return self.earned >= self.points > 0 or (self.points == 0 and not self.message)


def empty_result(job: GradeJob, status: Status, message: str) -> GradeResult:
    """A row with 0 in every test (and every free-response answer), for a submission that could not be graded."""
    return GradeResult(
        job.student,
        status,
        {t.grade_id: 0.0 for t in job.spec.tests},
        0.0,
        job.spec.max_total,
        "; ".join([*job.notes, message]),
        submitted=job.notebook or "",
        name=job.name,
        sha256=job.sha256,
        manual={a.grade_id: 0.0 for a in job.spec.answers},
        manual_max=job.spec.manual_max,
    )


# ---------------------------------------------------------------------------------------------
# the steps
# ---------------------------------------------------------------------------------------------
def load_submission(job: GradeJob) -> tuple[dict, list[str], dict]:
    """Step 1: the submitted notebook, parsed and repaired against the release.

    Returns:
        ``(notebook, repairs, original)``: the notebook to run, one sentence per repair, and the notebook
        as submitted (its own lines may be shown back to the student).

    Raises:
        cvkit.course.assignments.repair.UngradableError: no notebook, or not a readable one.
    """
    from cvkit.course.assignments.repair import UngradableError, parse_notebook, repair_submission

    if job.notebook is None:
        raise UngradableError("no notebook submitted")
    path = Path(job.notebook)
    if path.stat().st_size > 100 * 2**20:
        raise UngradableError(
            f"the notebook is {path.stat().st_size / 2**20:.0f} MiB: larger than any honest submission (100 MiB)"
        )
    original = parse_notebook(path.read_text(encoding="utf-8", errors="replace"))
    repaired, repairs = repair_submission(original, job.spec.release)
    return repaired, repairs, original


def scan_submission(notebook: dict, spec: AssignmentSpec) -> list[str]:
    """Step 2: review flags for the student's own code (forbidden calls, tampering with the machinery)."""
    from cvkit.course.assignments.scan import scan_notebook

    return scan_notebook(notebook, spec.release, spec.rules, {t.grade_id: t.rules for t in spec.tests})


def run_submission(notebook: dict, job: GradeJob) -> Execution:
    """Step 3: run the notebook in its sandbox; every test's sandbox half hands back plain data."""
    spec = job.spec
    box = Path(job.work) / "box"
    prepare_box(box, _student_copy(notebook, spec), Path(spec.data_dir) if spec.data_dir else None)
    tests = {t.grade_id: t for t in spec.tests}
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        if cell.get("cell_type") != "code":
            continue
        gid = nbgrader_meta(cell).get("grade_id", "")
        cells.append((index, gid if gid in tests else "", cell_source(cell)))
    limits = Limits(**{**asdict(spec.limits), "threads": job.threads})
    sandbox_tests = {t.grade_id: {"source": t.sandbox_source, "rules": list(t.rules)} for t in spec.tests}
    return execute_submission(
        cells,
        sandbox_tests,
        [r.to_json() for r in spec.rules],
        box,
        limits,
        job.mode,
        [Path(p) for p in spec.hidden_paths] + [Path(job.work).parent],
        Path(job.work) / "runner.log",
    )


def _student_copy(notebook: dict, spec: AssignmentSpec) -> dict:
    """The notebook as the sandbox may see it: test cells as released (no hidden code)."""
    import copy

    released = {t.grade_id: t.released for t in spec.tests}
    nb = copy.deepcopy(notebook)
    for cell in nb["cells"]:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in released:
            cell["source"] = released[gid]
    return nb


_compiled: dict[str, object] = {}


def warm_up(spec: AssignmentSpec) -> None:
    """Import what the tests' grader halves import and load the feedback templates, once, in this process.

    A batch calls it before it starts its worker processes, which then inherit all of it. Only the
    top-level statements of the instructor's test cells run (imports, definitions); no test runs.
    """
    from cvkit.course.assignments.feedback import load_templates

    for test in spec.tests:
        try:
            exec(compile(test.grader_source, f"<checks {test.grade_id}>", "exec"), {"__name__": "cvkit_warm_up"})  # noqa: S102 - the instructor's code
        except Exception:  # noqa: BLE001, S110 - a failing import shows up in that test's verdict, not here
            pass
    load_templates()


def check_answers(test: TestCell, got) -> None:
    """Run a test's grader half on the answers ``got``, in this process.

    Raises:
        cvkit.grading.GradingError: a check failed; any other exception: the answer could not be checked.
    """
    key = test.grade_id + "\0" + test.grader_source
    code = _compiled.get(key)
    if code is None:
        code = compile(test.grader_source, f"<checks {test.grade_id}>", "exec")
        _compiled[key] = code
    namespace: dict = {"__name__": f"cvkit_checks_{test.grade_id}"}
    exec(code, namespace)  # noqa: S102 - the instructor's own test code (from solutions/), never the student's
    make_inputs = namespace.get("inputs")
    data = make_inputs() if callable(make_inputs) else {}
    namespace["checks"](got, **data)


def score_tests(notebook: dict, execution: Execution, spec: AssignmentSpec) -> dict[str, TestVerdict]:
    """Step 4: each test's verdict, decided here from the plain data its sandbox half handed back.

    A test earns its points only when its answers came back, no forbidden call ran during it, the
    tracing was not switched off, and every check passed; points are clamped to the test's points.
    """
    from cvkit.grading import GradingError

    by_gid = {r.grade_id: r for r in execution.records.values() if r.grade_id}
    verdicts = {}
    for test in spec.tests:
        record: CellRecord | None = by_gid.get(test.grade_id)
        verdict = TestVerdict(test.grade_id, test.points, 0.0)
        verdicts[test.grade_id] = verdict
        if record is None or not record.ran:
            verdict.message = "NotRun: " + (
                f"the notebook was stopped before this test ({execution.message})"
                if execution.stopped
                else "the test cell is missing from the notebook"
            )
            continue
        if record.violations:
            calls = sorted({what for _, what in record.violations})
            texts = [spec.rules[i].text for i in sorted({i for i, _ in record.violations}) if i < len(spec.rules)]
            verdict.message = f"RuleViolation: your code called {', '.join(calls[:4])}, which this test forbids" + (
                f" ({'; '.join(t for t in texts if t)})" if any(texts) else ""
            )
            continue
        if record.tampered:
            verdict.message = "TracingDisabled: " + record.tampered + " (the test cannot be trusted)"
            verdict.review = record.tampered
            continue
        if record.error is not None:
            where = f" ({record.error.get('where')})" if record.error.get("where") else ""
            what = "timed out" if "timeout" in record.events else "raised"
            verdict.message = f"{record.error.get('ename')}: {record.error.get('evalue')}".strip() + where
            if what == "timed out":
                verdict.message = f"CellTimeout: the test ran past the per-cell limit of {spec.limits.cell_timeout:g} s"
            continue
        if not record.has_answers:
            verdict.message = (
                f"AnswerError: the answers could not be read ({record.answer_error or 'none were written'})"
            )
            continue
        try:
            check_answers(test, record.answers)
        except GradingError as exc:
            verdict.message = f"GradingError: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - an answer of the wrong kind makes a check fail, never the batch
            verdict.message = f"GradingError: the answer could not be checked ({type(exc).__name__}: {str(exc)[:300]})"
            continue
        verdict.earned = min(max(test.points, 0.0), test.points)
    return verdicts


def build_feedback(
    notebook: dict,
    original: dict,
    execution: Execution,
    verdicts: dict[str, TestVerdict],
    job: GradeJob,
    title: str,
    manual: dict[str, float | None] | None = None,
) -> tuple[str, str, list[str]]:
    """Step 5: the student's feedback page and the instructor's notebook; the leaks found in the page.

    ``manual`` (free-response answers: 0 unanswered, ``None`` awaiting a person) adds their rows to the summary.

    Returns:
        ``(feedback_html, instructor_notebook_json, leaks)``; when ``leaks`` is not empty the caller
        withholds the page.
    """
    from cvkit.course.assignments.feedback import feedback_notebook, find_leaks, instructor_notebook, render_html

    spec = job.spec
    student_nb = feedback_notebook(notebook, execution, verdicts, spec, title, manual or {})
    html = render_html(student_nb)
    leaks = find_leaks(html, spec.protected, original)
    teacher = instructor_notebook(notebook, execution, verdicts, spec)
    import json

    return html, json.dumps(teacher, indent=1), leaks


def decide_status(
    repairs: list[str], flags: list[str], execution: Execution, verdicts: dict[str, TestVerdict], leaks: list[str]
) -> tuple[Status, list[str]]:
    """Step 6: the row's status (the most severe that applies) and the notes explaining it.

    Args:
        repairs: what repairing the notebook (or finding it under another name) changed.
        flags: the static scan's review flags.
        execution: the run in the sandbox.
        verdicts: the tests' verdicts.
        leaks: solution or hidden-test lines found in the feedback page.
    """
    status: Status = "repaired" if repairs else "graded"
    notes: list[str] = []

    def raise_to(new: Status) -> None:
        nonlocal status
        if SEVERITY.index(new) > SEVERITY.index(status):
            status = new

    for record in sorted(execution.records.values(), key=lambda r: r.index):
        where = f"cell {record.grade_id!r}" if record.grade_id else f"cell {record.index}"
        if "exit" in record.events:
            notes.append(f"{where}: called sys.exit()/exit(); the rest of that cell did not run")
            raise_to("exited")
        if "timeout" in record.events:
            notes.append(f"{where}: interrupted after the per-cell limit")
            raise_to("timeout")
        if "output" in record.events:
            notes.append(f"{where}: printed too much; output truncated")
    if execution.stopped:
        where = f" in cell {execution.stopped_at}" if execution.stopped_at is not None else ""
        notes.append(f"stopped{where}: {execution.message}")
        raise_to(
            "timeout"
            if execution.stopped in ("unresponsive", "time_limit")
            else "ungradable"
            if execution.stopped == "startup"
            else "crashed"
        )
    reviews = list(flags)
    reviews += [f"flagged for review: test {v.grade_id!r}: {v.review}" for v in verdicts.values() if v.review]
    reviews += [
        f"flagged for review: during test {a['test']!r} the code triggered {a['event']}" for a in execution.audits[:5]
    ]
    if leaks:
        reviews.append(
            f"feedback withheld: it showed {len(leaks)} line(s) of the solutions or hidden tests (e.g. {leaks[0][:80]!r})"
        )
    if reviews:
        notes += reviews
        if status != "ungradable":
            raise_to("review")
    return status, notes


# ---------------------------------------------------------------------------------------------
# the whole job
# ---------------------------------------------------------------------------------------------
def grade_submission(job: GradeJob) -> GradeResult:
    """Grade one submission (see the module docstring); never raises for anything the submission does.

    Returns:
        GradeResult with the feedback page and the instructor's notebook attached (the caller writes them).
    """
    from cvkit.course.assignments.repair import UngradableError

    tic = time.perf_counter()
    spec = job.spec
    Path(job.work).mkdir(parents=True, exist_ok=True)
    if spec.private_dir:
        os.environ["CVKIT_PRIVATE"] = spec.private_dir  # for the tests' checks (never for the sandbox)
    try:
        notebook, repairs, original = load_submission(job)
    except (UngradableError, OSError) as exc:
        result = empty_result(job, "ungradable", str(exc))
        result.seconds = time.perf_counter() - tic
        return result
    manual, answer_texts = read_free_responses(notebook, spec.answers)
    flags = scan_submission(notebook, spec)
    execution = run_submission(notebook, job)
    verdicts = score_tests(notebook, execution, spec)
    title = f"{spec.name}: feedback for {job.name or job.student}"
    html, teacher, leaks = build_feedback(notebook, original, execution, verdicts, job, title, manual)
    renamed = [n for n in job.notes if "instead of" in n]  # graded from a renamed file: a repair too
    status, notes = decide_status(repairs + renamed, flags, execution, verdicts, leaks)
    failures = {gid: v.message for gid, v in verdicts.items() if not v.passed}
    message = [*job.notes, *repairs, *[n for n in notes if n not in renamed]]
    missing = [
        a.grade_id
        for a in spec.answers
        if a.grade_id not in {nbgrader_meta(c).get("grade_id") for c in notebook["cells"]}
    ]
    if missing:
        message.append(
            f"free-response answer cell(s) missing, awaiting a person (the answer may be elsewhere in the notebook): {', '.join(missing)}"
        )
    if failures:
        message.append("failed: " + "; ".join(f"{gid} ({why[:120]})" for gid, why in failures.items()))
    if not execution.isolated:
        message.append("not isolated (no sandbox)")
    scores = {gid: v.earned for gid, v in verdicts.items()}
    return GradeResult(
        job.student,
        status,
        scores,
        sum(scores.values()),
        spec.max_total,
        "; ".join(message),
        failures,
        time.perf_counter() - tic,
        job.notebook or "",
        "",
        job.name,
        execution.isolated,
        job.sha256,
        feedback_html="" if leaks else html,
        instructor_notebook=teacher,
        manual=manual,
        answers=answer_texts,
        manual_max=spec.manual_max,
    )


def describe_error(exc: BaseException) -> str:
    """One line for a grader failure (not the student's)."""
    return f"grader error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def scratch_folder(out_dir: Path, student: str) -> str:
    """The job's scratch folder inside the output's hidden work area."""
    return os.fspath(out_dir / ".work" / "students" / student)
