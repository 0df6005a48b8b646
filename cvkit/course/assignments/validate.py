"""``cvkit validate``: the reference solution earns full marks and the untouched release earns 0.

nbgrader's own ``validate`` exits 0 even when validation fails (nbgrader issue 1908) and
checks the source notebook rather than what a student hands in. Here two submissions are
built and graded by the same path as real ones (:func:`cvkit.course.assignments.autograde.autograde`):

* ``reference-solution``: the release with every solution cell filled in from the source
  (the code between the markers), i.e. the reference solution submitted as a student would;
* ``untouched-release``: the release as students receive it.

The assignment is valid when the first gets every point of every test cell, the second
gets 0 in every test cell, and neither crashed, timed out or needed repairs. Free-response
answers (:mod:`cvkit.course.assignments.manual`) cannot be graded here: the reference's answers
(the model answers) must all await a person, and the untouched release's must all be unanswered (0).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cvkit.course.assignments import Assignment, cell_source, nbgrader_meta, read_json
from cvkit.course.assignments.autograde import SandboxChoice, autograde, prepare
from cvkit.course.assignments.grade import GradeResult
from cvkit.course.assignments.outputs import AutogradeReport

REFERENCE = "reference-solution"
UNTOUCHED = "untouched-release"
_SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass
class ValidateReport:
    """The verdict of ``cvkit validate`` for one assignment."""

    assignment: str
    problems: list[str] = field(default_factory=list)
    reference: GradeResult | None = None
    untouched: GradeResult | None = None
    seconds: float = 0.0
    out_dir: str = ""

    @property
    def ok(self) -> bool:
        """True when the reference gets full marks and the untouched release gets 0, cleanly."""
        return not self.problems

    def summary(self) -> str:
        """One line per submission and one per problem."""
        lines = [f"{self.assignment}: {'valid' if self.ok else 'INVALID'} ({self.seconds:.1f} s)"]
        for label, r in (("reference solution", self.reference), ("untouched release", self.untouched)):
            if r is not None:
                todo = [v for v in (r.manual or {}).values() if v is None]
                manual = (
                    f"; free response: {r.manual_max:g} points, "
                    + (f"{len(todo)} answer(s) awaiting a person" if todo else "all unanswered (0)")
                    if r.manual
                    else ""
                )
                lines.append(
                    f"  {label}: {r.total:g}/{r.max_total:g} autograded points{manual}, status {r.status}, {r.seconds:.1f} s"
                )
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def solution_text(source_cell: dict) -> str:
    """A source solution cell as a student would hand it in: the code between the markers, without them."""
    return "\n".join(line for line in cell_source(source_cell).splitlines() if line.strip() not in _SOLUTION_MARKERS)


def reference_submission(source: dict, release: dict) -> dict:
    """The release notebook with each solution cell's stub replaced by the source's solution."""
    solutions = {
        nbgrader_meta(c)["grade_id"]: solution_text(c) for c in source["cells"] if nbgrader_meta(c).get("solution")
    }
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        gid = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and gid in solutions:
            cell["source"] = solutions[gid]
    return nb


def write_validation_submissions(assignment: Assignment, folder: Path, release_nb: Path) -> None:
    """Write ``folder/reference-solution/<a>.ipynb`` and ``folder/untouched-release/<a>.ipynb``."""
    release = read_json(release_nb)
    for student, nb in (
        (REFERENCE, reference_submission(read_json(assignment.source_notebook), release)),
        (UNTOUCHED, release),
    ):
        (folder / student).mkdir(parents=True, exist_ok=True)
        (folder / student / assignment.notebook_file).write_text(json.dumps(nb, indent=1))


def judge(report: AutogradeReport) -> list[str]:
    """Problems with the grades of the two validation submissions (empty when valid)."""
    by_student = {r.student: r for r in report.results}
    problems = []
    ref, raw = by_student.get(REFERENCE), by_student.get(UNTOUCHED)
    if ref is None or raw is None:
        return ["the validation submissions were not graded"]
    if not report.test_cells:
        problems.append("the assignment has no test cells (grade: true, solution: false)")
    if ref.status != "graded":
        problems.append(f"the reference solution was {ref.status}: {ref.message}")
    short = [
        f"{gid} ({ref.scores.get(gid, 0):g}/{pts:g}: {ref.failures.get(gid, 'no error shown')})"
        for gid, pts in report.test_cells
        if ref.scores.get(gid, 0) < pts
    ]
    if short:
        problems.append("the reference solution loses points in: " + "; ".join(short))
    if raw.status != "graded":
        problems.append(f"the untouched release was {raw.status}: {raw.message}")
    passing = [gid for gid, _ in report.test_cells if raw.scores.get(gid, 0) > 0]
    if passing:
        problems.append(
            "test cells that pass on the untouched release (they test nothing the student writes): "
            + ", ".join(passing)
        )
    unread = [a.grade_id for a in report.answers if (ref.manual or {}).get(a.grade_id, 0.0) is not None]
    if unread:
        problems.append(
            "free-response answers of the reference solution not read as answered (is the model answer between the solution markers?): "
            + ", ".join(unread)
        )
    answered = [a.grade_id for a in report.answers if (raw.manual or {}).get(a.grade_id) != 0.0]
    if answered:
        problems.append("free-response answers of the untouched release not read as unanswered: " + ", ".join(answered))
    return problems


def validate(
    assignment: Assignment,
    out: str | os.PathLike | None = None,
    jobs: int = 2,
    progress: bool = False,
    prepared: str | os.PathLike | None = None,
    sandbox: SandboxChoice = "auto",
) -> ValidateReport:
    """Autograde the reference solution and the untouched release; judge the grades.

    Args:
        assignment: from :func:`cvkit.course.assignments.load_assignment`.
        out: where the autograde outputs go (default: a temporary folder, removed).
        jobs: processes (at most 2 are useful: there are two submissions).
        progress: print one line per graded submission.
        prepared: a folder from :func:`cvkit.course.assignments.autograde.prepare` to reuse.
        sandbox: as for :func:`cvkit.course.assignments.autograde.autograde`.

    Returns:
        ValidateReport (``ok`` False with the problems listed when either condition fails).

    Raises:
        cvkit.course.nbgrader_course.NbgraderError: the source notebook cannot be generated.
    """
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"cvkit-validate-{assignment.name}-") as tmp:
        scratch = Path(tmp)
        prepared = Path(prepared) if prepared is not None else prepare(assignment, scratch / "course")
        write_validation_submissions(
            assignment, scratch / "submissions", prepared / "published" / assignment.notebook_file
        )
        out_dir = Path(out) if out is not None else scratch / "autograde"
        report = autograde(
            assignment,
            scratch / "submissions",
            out_dir,
            jobs=max(1, min(jobs, 2)),
            progress=progress,
            prepared=prepared,
            sandbox=sandbox,
        )
        by_student = {r.student: r for r in report.results}
        return ValidateReport(
            assignment.name,
            judge(report),
            by_student.get(REFERENCE),
            by_student.get(UNTOUCHED),
            time.perf_counter() - tic,
            str(out_dir) if out is not None else "",
        )
