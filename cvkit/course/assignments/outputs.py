"""The files ``cvkit autograde`` writes, each written whole and atomically, by the batch's parent alone.

* ``results/<student>.json``: one row per student as soon as they are graded (the record a re-run resumes from);
* ``grades.csv``: every row so far (rewritten after each student), cells safe for spreadsheets;
* ``canvas.csv`` / ``moodle.csv`` (``--format``): the shapes those systems import;
* with free-response questions: ``manual.csv`` (points for a person to fill), ``manual.md`` (the answers with
  the rubric) and ``answers.json`` (the questions, read back by ``cvkit grades merge``);
* ``report.md``, ``gradebook.db`` (nbgrader's), ``feedback/<student>/<a>.html``, ``autograded/<student>/<a>.ipynb``.

Every file is written to a temporary name next to it and moved into place (:func:`write_atomic`), so an
interrupted run leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cvkit.course.assignments.grade import STATUSES, GradeResult
from cvkit.course.assignments.manual import MANUAL_COLUMNS, AnswerCell, manual_status

LmsFormat = Literal["canvas", "moodle"]
LMS_FORMATS = ("canvas", "moodle")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole: to a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula: text starting with ``= + - @`` (or a tab/CR) gets a leading ``'``.

    Numbers are written as numbers (``-0.5`` stays a number).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass
class AutogradeReport:
    """The results of one ``cvkit autograde`` run.

    Attributes:
        assignment: its name.
        results: one row per student, sorted by student id.
        test_cells: ``(grade_id, points)`` per test.
        out_dir: the output folder.
        jobs: submissions graded at once.
        seconds: wall time of this run.
        warnings: one line each (drift, no submissions, not isolated, ...).
        isolated: whether the submissions ran in bubblewrap sandboxes.
        resumed: students whose earlier rows were kept (an interrupted run resumed).
        answers: the free-response questions (graded by a person; :mod:`cvkit.course.assignments.manual`).
    """

    assignment: str
    results: list[GradeResult]
    test_cells: list[tuple[str, float]]
    out_dir: str
    jobs: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    isolated: bool = True
    resumed: list[str] = field(default_factory=list)
    answers: list[AnswerCell] = field(default_factory=list)

    @property
    def max_total(self) -> float:
        """Autograded points available."""
        return sum(p for _, p in self.test_cells)

    @property
    def awaiting(self) -> list[tuple[str, str]]:
        """``(student, question)`` of every free-response answer awaiting a person."""
        return [
            (r.student, a.grade_id)
            for a in self.answers
            for r in self.results
            if (r.manual or {}).get(a.grade_id, 0.0) is None
        ]

    def to_markdown(self) -> str:
        """``report.md``: one row per student, then the status legend."""
        cols = [gid for gid, _ in self.test_cells]
        lines = [
            f"# Autograde {self.assignment}: {len(self.results)} submission(s), {self.jobs} job(s), {self.seconds:.1f} s",
            "",
            *[f"> warning: {w}" for w in self.warnings],
            *([f"> resumed an interrupted run: {len(self.resumed)} earlier row(s) kept"] if self.resumed else []),
            *(
                [
                    f"> free-response answers awaiting a person: {len(self.awaiting)} (fill manual.csv, then `cvkit grades merge "
                    f"{self.assignment} --manual manual.csv`); the totals below are the autograded points"
                ]
                if self.answers
                else []
            ),
            "",
            "| student | status | total | "
            + " | ".join(cols)
            + (" | manual" if self.answers else "")
            + " | seconds | message |",
            "|---|---|---:|" + "---:|" * len(cols) + ("---|" if self.answers else "") + "---:|---|",
        ]
        for r in self.results:
            msg = _md(r.message)
            cells = " | ".join(_fmt(r.scores.get(c, 0.0)) for c in cols) + (
                f" | {manual_status(r.manual or {}, self.answers)}" if self.answers else ""
            )
            lines.append(
                f"| {_md(r.student)} | {r.status} | {_fmt(r.total)}/{_fmt(r.max_total)} | {cells} | {r.seconds:.1f} | {msg} |"
            )
        lines += ["", "Statuses: " + "; ".join(f"**{k}**: {v}" for k, v in STATUSES.items()), ""]
        return "\n".join(lines)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def grades_csv(
    results: list[GradeResult], test_cells: list[tuple[str, float]], answers: list[AnswerCell] | tuple = ()
) -> str:
    """``grades.csv``: student, name, status, total, max, one column per test, seconds, message, file.

    ``total`` and ``max`` are the autograded points. With free-response questions, one column per answer
    follows the tests (``0`` when unanswered, **blank while it awaits a person**), then ``manual``
    (``awaiting 2 answer(s) (5 points)``, ``unanswered`` or ``graded``) and ``manual_max``.
    """
    cols = [gid for gid, _ in test_cells]
    extra = [a.grade_id for a in answers] + (["manual", "manual_max"] if answers else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "name", "status", "total", "max", *cols, *extra, "seconds", "message", "submitted"])
    for r in results:
        manual = r.manual or {}
        free = [("" if manual.get(a.grade_id, 0.0) is None else _fmt(manual.get(a.grade_id, 0.0))) for a in answers]
        free += [manual_status(manual, answers), _fmt(sum(a.points for a in answers))] if answers else []
        writer.writerow(
            [
                safe_cell(r.student),
                safe_cell(r.name),
                r.status,
                _fmt(r.total),
                _fmt(r.max_total),
                *(_fmt(r.scores.get(c, 0.0)) for c in cols),
                *free,
                f"{r.seconds:.1f}",
                safe_cell(r.message),
                safe_cell(r.submitted),
            ]
        )
    return buffer.getvalue()


def manual_csv(
    results: list,
    answers: tuple[AnswerCell, ...] | list[AnswerCell],
    entered: dict[tuple[str, str], tuple[str, str, str]] | None = None,
) -> str:
    """``manual.csv``: one row per question and student (grouped by question), ``points`` blank where a person decides.

    Unanswered questions are pre-filled with 0 and the comment ``unanswered`` (an instructor may change them).
    ``entered``: what a person already typed into an earlier ``manual.csv`` (:func:`read_manual_sheet`); an
    awaiting answer keeps those points and comment while its text is unchanged, so re-writing the sheet (a resumed
    run) loses nothing. Every cell is safe for a spreadsheet (:func:`safe_cell`).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MANUAL_COLUMNS)
    for answer in answers:
        for r in results:
            value = r.manual.get(answer.grade_id) if r.manual else 0.0
            points, comment = ("", "") if value is None else (f"{value:g}", "unanswered" if value == 0 else "")
            kept = (entered or {}).get((r.student, answer.grade_id))
            if value is None and kept is not None and kept[2] == safe_cell((r.answers or {}).get(answer.grade_id, "")):
                points, comment = kept[0], kept[1]
            if r.status == "ungradable":
                points, comment = "0", "ungradable submission"
            writer.writerow(
                [
                    safe_cell(r.student),
                    safe_cell(r.name),
                    answer.grade_id,
                    f"{answer.points:g}",
                    points,
                    comment,
                    safe_cell((r.answers or {}).get(answer.grade_id, "")),
                ]
            )
    return buffer.getvalue()


def read_manual_sheet(path: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    """What a person typed into an existing ``manual.csv``: ``(student, question) -> (points, comment, answer)``.

    Only rows with points or a comment count; an unreadable or foreign file gives ``{}`` (it is then replaced).
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    kept = {}
    for row in rows:
        if row.get("student") is None or row.get("question") is None:
            return {}
        if (row.get("points") or "").strip() or (row.get("comment") or "").strip():
            student = row["student"][1:] if row["student"].startswith("'") else row["student"]
            kept[(student, row["question"])] = (
                (row.get("points") or "").strip(),
                (row.get("comment") or "").strip(),
                row.get("answer") or "",
            )
    return kept


def grading_sheet(assignment: str, results: list, answers: tuple[AnswerCell, ...] | list[AnswerCell]) -> str:
    """``manual.md``: for each question, the question, the model answer and rubric, then every student's answer."""
    lines = [
        f"# {assignment}: free-response answers to grade",
        "",
        "Enter points in `manual.csv` (column `points`, optionally `comment`), then run",
        f"`cvkit grades merge {assignment} --manual manual.csv` for the final totals (`final.csv`).",
        "",
    ]
    for answer in answers:
        lines += [
            f"## {answer.grade_id} ({answer.points:g} points)",
            "",
            "**Question**",
            "",
            _quote(answer.question),
            "",
            "**Model answer and rubric** (instructor only)",
            "",
            _quote(answer.rubric or "(none in the source)"),
            "",
        ]
        for r in results:
            value = (r.manual or {}).get(answer.grade_id, 0.0)
            state = (
                "awaiting your points"
                if value is None
                else f"{value:g} points (unanswered)"
                if value == 0
                else f"{value:g} points"
            )
            lines += [
                f"### {r.student} ({state})",
                "",
                _quote((r.answers or {}).get(answer.grade_id) or "(no answer)"),
                "",
            ]
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines()) or "> "


def lms_csv(results: list[GradeResult], assignment: str, max_total: float, fmt: LmsFormat) -> str:
    """A grade import file for an LMS.

    * ``canvas``: Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section, <assignment>``,
      a ``Points Possible`` row, then one row per student (the name as submitted in ``Student`` and
      ``SIS Login ID``; Canvas matches on them; fill ``ID`` from a Canvas export to match on ids).
    * ``moodle``: Moodle's CSV grade import: ``Username, <assignment>, <assignment> (feedback)``; map
      ``Username`` to the user field the names come from when importing.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if fmt == "canvas":
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
        writer.writerow(["Points Possible", "", "", "", "", _fmt(max_total)])
        for r in results:
            name = r.name or r.student
            writer.writerow([safe_cell(name), "", "", safe_cell(name), "", _fmt(r.total)])
    elif fmt == "moodle":
        writer.writerow(["Username", assignment, f"{assignment} (feedback)"])
        for r in results:
            note = f"{_fmt(r.total)}/{_fmt(r.max_total)} points ({r.status}); see your feedback file"
            writer.writerow([safe_cell(r.name or r.student), _fmt(r.total), safe_cell(note)])
    else:
        raise ValueError(f"unknown LMS format {fmt!r}; choose one of {', '.join(LMS_FORMATS)}")
    return buffer.getvalue()


def write_result_files(out_dir: Path, assignment: str, result: GradeResult) -> GradeResult:
    """Write one student's feedback page, instructor notebook and ``results/<student>.json``; returns the row.

    The feedback goes to ``feedback/<student>/<assignment>.html`` (not written when it was withheld).
    """
    if result.feedback_html:
        write_atomic(out_dir / "feedback" / result.student / f"{assignment}.html", result.feedback_html)
        result.feedback = f"feedback/{result.student}/{assignment}.html"
    if result.instructor_notebook:
        write_atomic(out_dir / "autograded" / result.student / f"{assignment}.ipynb", result.instructor_notebook)
    result.feedback_html = result.instructor_notebook = ""
    write_atomic(out_dir / "results" / f"{result.student}.json", json.dumps(result.to_row(), indent=1) + "\n")
    return result


def read_results(out_dir: Path) -> dict[str, GradeResult]:
    """The rows an earlier (interrupted) run wrote into ``results/``; unreadable ones are skipped."""
    rows = {}
    folder = out_dir / "results"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            rows[data["student"]] = GradeResult(**data)
        except (ValueError, TypeError, KeyError):
            continue
    return rows


def write_summary(report: AutogradeReport, out_dir: Path, lms: tuple[str, ...] = ()) -> None:
    """``grades.csv``, ``report.md`` and the LMS files for the rows so far (each written atomically)."""
    write_atomic(out_dir / "grades.csv", grades_csv(report.results, report.test_cells, report.answers))
    write_atomic(out_dir / "report.md", report.to_markdown())
    if report.answers:
        import dataclasses

        write_atomic(
            out_dir / "manual.csv",
            manual_csv(report.results, report.answers, read_manual_sheet(out_dir / "manual.csv")),
        )
        write_atomic(out_dir / "manual.md", grading_sheet(report.assignment, report.results, report.answers))
        write_atomic(
            out_dir / "answers.json", json.dumps([dataclasses.asdict(a) for a in report.answers], indent=1) + "\n"
        )
    for fmt in lms:
        write_atomic(out_dir / f"{fmt}.csv", lms_csv(report.results, report.assignment, report.max_total, fmt))  # type: ignore[arg-type]


def write_gradebook(template: Path, dest: Path, assignment: str, results: list[GradeResult]) -> None:
    """nbgrader's gradebook for the batch, written by this one process: every student, every grade."""
    import shutil

    from nbgrader.api import Gradebook

    from cvkit.course.assignments.nbgrader_course import COURSE_ID

    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(template, tmp)
    os.chmod(tmp, 0o644)
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{tmp}", COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarnings about nbgrader's session use
        for r in results:
            gb.update_or_create_student(r.student)
            gb.update_or_create_submission(assignment, r.student)
            notebook = gb.find_submission_notebook(assignment, assignment, r.student)
            manual = r.manual or {}
            for grade in notebook.grades:
                if grade.name in r.scores:
                    grade.auto_score = r.scores[grade.name]
                    grade.needs_manual_grade = False
                elif grade.name in manual:  # a free-response answer: 0 when unanswered, else a person grades it
                    grade.auto_score = manual[grade.name] if manual[grade.name] is not None else None
                    grade.needs_manual_grade = manual[grade.name] is None
            gb.db.commit()
    os.replace(tmp, dest)
