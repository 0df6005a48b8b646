"""Free-response questions: answers a person grades, the points they enter, and the final totals.

An assignment asks a free-response question in one of nbgrader's *manually graded answer* cells: a
Markdown cell with ``grade: true, solution: true`` and ``points``. In the source its text is the model
answer and the rubric for the grader, between nbgrader's solution markers (BEGIN/END SOLUTION); the release
shows ``YOUR ANSWER HERE``. The question itself is the Markdown cell before it.

1. **Grading** (:func:`read_free_responses`, called by :func:`cvkit.course.assignments.grade.grade_submission`):
   each answer is either *unanswered* (the stub left, or nothing: 0 points, decided by the grader) or
   *awaiting* a person (``None``); never a silent 0. ``grades.csv`` shows one column per answer (blank
   while awaiting) and a ``manual`` column saying what is awaited.
2. ``cvkit autograde`` also writes ``manual.csv`` (:func:`cvkit.course.assignments.outputs.manual_csv`: one row
   per student and question, ``points`` blank where a person must decide, the answer beside it) and ``manual.md``
   (:func:`cvkit.course.assignments.outputs.grading_sheet`: per question, the question, the model answer and
   rubric, then every student's answer).
3. The instructor fills ``points`` (and, if they like, ``comment``) and runs
   ``cvkit grades merge A --manual manual.csv``: :func:`read_manual_csv` checks every row (a known student and
   question, a number between 0 and the question's points) and :func:`cvkit.course.assignments.merge.merge_manual`
   writes ``final.csv``: autograded points plus manual points = total, per student, and the rows still awaiting a person.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from cvkit.course.assignments.model import cell_source, is_answer_cell, nbgrader_meta

UNANSWERED_STUBS = ("YOUR ANSWER HERE", "")
ANSWER_LIMIT = 20_000  # characters of an answer kept in the results and sheets
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class AnswerCell:
    """A free-response question of an assignment.

    Attributes:
        grade_id: the answer cell's ``grade_id`` (a column of ``grades.csv``).
        points: what a complete answer earns.
        question: the Markdown cell before the answer cell in the release (what the student read).
        rubric: the source's text between the solution markers (model answer and rubric; instructor only).
        stub: the answer cell as released (``YOUR ANSWER HERE``).
    """

    grade_id: str
    points: float
    question: str = ""
    rubric: str = ""
    stub: str = "YOUR ANSWER HERE"


def answer_cells(source: dict, release: dict) -> list[AnswerCell]:
    """The free-response questions of an assignment, in notebook order.

    Args:
        source: the source notebook (``solutions/<a>/<a>.ipynb``) as a dict.
        release: the released notebook as a dict.
    """
    rubrics = {
        nbgrader_meta(c).get("grade_id"): "\n".join(m.group(1).strip() for m in _SOLUTION.finditer(cell_source(c)))
        for c in source.get("cells", [])
        if is_answer_cell(c)
    }
    found = []
    cells = release.get("cells", [])
    for i, cell in enumerate(cells):
        if not is_answer_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        question = next(
            (cell_source(c) for c in reversed(cells[:i]) if c.get("cell_type") == "markdown" and not is_answer_cell(c)),
            "",
        )
        found.append(
            AnswerCell(
                meta["grade_id"],
                float(meta.get("points", 0)),
                question.strip(),
                rubrics.get(meta["grade_id"], ""),
                cell_source(cell).strip(),
            )
        )
    return found


def read_free_responses(
    notebook: dict, answers: tuple[AnswerCell, ...] | list[AnswerCell]
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Each free-response answer of a (repaired) submission and what the grader decides about it.

    Returns:
        ``(points, texts)``: per answer ``grade_id``, ``0.0`` when unanswered (the stub, or nothing) and
        ``None`` when a person must grade it (an answer was written, or the answer cell is missing from
        the notebook: the answer may be elsewhere); and the answer's text (at most :data:`ANSWER_LIMIT`
        characters; for a missing cell, a note saying so).
    """
    by_id = {nbgrader_meta(c).get("grade_id"): c for c in notebook.get("cells", []) if is_answer_cell(c)}
    points: dict[str, float | None] = {}
    texts: dict[str, str] = {}
    for answer in answers:
        cell = by_id.get(answer.grade_id)
        if cell is None:
            points[answer.grade_id] = None
            texts[answer.grade_id] = (
                "(the answer cell is missing from the notebook: look for the answer in the instructor's copy)"
            )
            continue
        text = cell_source(cell).strip()
        if text in UNANSWERED_STUBS or text == answer.stub:
            points[answer.grade_id] = 0.0
            texts[answer.grade_id] = ""
        else:
            points[answer.grade_id] = None
            texts[answer.grade_id] = text[:ANSWER_LIMIT] + (
                "\n... (answer cut here)" if len(text) > ANSWER_LIMIT else ""
            )
    return points, texts


def awaiting(manual: dict[str, float | None], answers: tuple[AnswerCell, ...] | list[AnswerCell]) -> tuple[int, float]:
    """How many answers of a row await a person, and their points."""
    todo = [a for a in answers if a.grade_id in manual and manual[a.grade_id] is None]
    return len(todo), sum(a.points for a in todo)


def manual_status(manual: dict[str, float | None], answers: tuple[AnswerCell, ...] | list[AnswerCell]) -> str:
    """The ``manual`` column of ``grades.csv`` and ``final.csv``: ``awaiting N answer(s) (P points)``, ``graded`` or ``unanswered``."""
    if not answers:
        return ""
    count, pts = awaiting(manual, answers)
    if count:
        return f"awaiting {count} answer(s) ({pts:g} points)"
    if all(manual.get(a.grade_id) == 0.0 for a in answers) and manual:
        return "unanswered"
    return "graded"


MANUAL_COLUMNS = (
    "student",
    "name",
    "question",
    "max",
    "points",
    "comment",
    "answer",
)  # manual.csv, written by autograde


# ---------------------------------------------------------------------------------------------
# reading the instructor's points back
# ---------------------------------------------------------------------------------------------
def read_manual_csv(
    path: str | Path, students: set[str], answers: list[AnswerCell]
) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], str]]:
    """The points and comments an instructor entered, every row checked.

    A row with an empty ``points`` cell is skipped (that answer stays awaiting). Columns besides
    ``student``, ``question``, ``points`` and ``comment`` are ignored (``manual.csv`` also has ``name``,
    ``max`` and ``answer``), so a spreadsheet with extra columns works.

    Returns:
        ``(points, comments)`` keyed by ``(student, question)``.

    Raises:
        ValueError: no ``student``/``question``/``points`` column, an unknown student or question, a point
            value that is not a number between 0 and the question's points, or the same answer twice; the
            message lists every such row by its line number.
    """
    maxima = {a.grade_id: a.points for a in answers}
    text = Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet may add a byte-order mark
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = [c for c in ("student", "question", "points") if c not in fields]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(missing)}; the file needs student, question and points "
            f"(cvkit autograde wrote manual.csv with {', '.join(MANUAL_COLUMNS)})"
        )
    points: dict[tuple[str, str], float] = {}
    comments: dict[tuple[str, str], str] = {}
    problems = []
    seen: set[tuple[str, str]] = set()
    for line, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        student, question, value = row.get("student", "").lstrip("'"), row.get("question", ""), row.get("points", "")
        if not any(row.values()):
            continue
        where = f"line {line} ({student or '?'}, {question or '?'})"
        if student not in students:
            problems.append(f"{where}: unknown student {student!r} (not in this assignment's results)")
            continue
        if question not in maxima:
            problems.append(f"{where}: unknown question {question!r}; the questions are {', '.join(maxima) or 'none'}")
            continue
        if (student, question) in seen:
            problems.append(f"{where}: this answer appears twice")
            continue
        seen.add((student, question))
        if row.get("comment"):
            comments[(student, question)] = row["comment"]
        if value == "":
            continue
        try:
            number = float(value.replace(",", ".")) if value.count(",") == 1 and "." not in value else float(value)
        except ValueError:
            problems.append(f"{where}: points {value!r} is not a number")
            continue
        if not math.isfinite(number) or number < 0 or number > maxima[question]:
            problems.append(f"{where}: points {value} outside 0..{maxima[question]:g}")
            continue
        points[(student, question)] = number
    if problems:
        raise ValueError(f"{path}: {len(problems)} problem(s), nothing merged:\n  " + "\n  ".join(problems))
    return points, comments
