"""``cvkit grades merge``: the points a person gave the free-response answers, added to the autograded rows.

Reads a ``cvkit autograde`` output folder (``results/*.json``, ``answers.json``) and the instructor's filled
``manual.csv`` (checked by :func:`cvkit.course.assignments.manual.read_manual_csv`), and writes ``final.csv``
(and ``final-canvas.csv`` / ``final-moodle.csv``), each atomically. The points accepted so far are kept in
``manual_entered.json`` (:data:`ENTERED_FILE`): a later merge with a CSV that holds only some answers adds to the
earlier ones (a new value for the same answer replaces the old one), so no grade entered earlier is lost. Nothing
else in the folder changes, and a CSV with any problem writes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

from cvkit.course.assignments.manual import AnswerCell, manual_status, read_manual_csv
from cvkit.course.assignments.outputs import LMS_FORMATS, lms_csv, read_results, safe_cell, write_atomic

ENTERED_FILE = "manual_entered.json"  # every point and comment a person entered and a merge accepted


@dataclass
class FinalRow:
    """One student's final grade: autograded points plus the points a person gave."""

    student: str
    name: str
    status: str
    auto: float
    auto_max: float
    manual: dict[str, float | None]
    manual_max: float
    comments: dict[str, str]
    message: str

    @property
    def manual_total(self) -> float:
        """Manual points given so far."""
        return sum(v for v in self.manual.values() if v is not None)

    @property
    def total(self) -> float:
        """Autograded plus manual points given so far."""
        return self.auto + self.manual_total

    @property
    def max_total(self) -> float:
        """Every point of the assignment."""
        return self.auto_max + self.manual_max


@dataclass
class FinalReport:
    """What :func:`merge_manual` decided and wrote."""

    assignment: str
    rows: list[FinalRow]
    answers: list[AnswerCell]
    out_dir: str
    entered: int  # points read from this CSV
    files: list[str]

    @property
    def awaiting(self) -> list[tuple[str, str]]:
        """``(student, question)`` pairs still awaiting a person."""
        return [(r.student, gid) for r in self.rows for gid, v in r.manual.items() if v is None]


def merge_manual(
    out_dir: str | Path,
    manual: str | Path,
    assignment: str,
    answers: list[AnswerCell] | None = None,
    lms: tuple[str, ...] = (),
) -> FinalReport:
    """Add the points of ``manual`` (a filled ``manual.csv``) to the autograded rows of ``out_dir``; write ``final.csv``.

    Args:
        out_dir: a ``cvkit autograde`` output folder (its ``results/`` are read; nothing there is changed but
            ``final.csv`` and the ``final-<lms>.csv`` files, each written atomically).
        manual: the CSV with the instructor's points (``student, question, points[, comment]``).
        assignment: the assignment's name.
        answers: its free-response questions (default: read from ``out_dir/answers.json``, written by autograde).
        lms: also write ``final-canvas.csv`` / ``final-moodle.csv`` with the final totals.

    Points accepted by earlier merges into ``out_dir`` (``manual_entered.json``) are kept unless this CSV gives
    the same answer a new value; the union is written back to ``manual_entered.json`` (atomically).

    Returns:
        FinalReport (``awaiting`` lists the answers no points were entered for).

    Raises:
        FileNotFoundError: ``out_dir`` holds no graded rows, or ``manual`` does not exist.
        ValueError: see :func:`cvkit.course.assignments.manual.read_manual_csv`; an unknown LMS format.
    """
    out = Path(out_dir)
    bad = [f for f in lms if f not in LMS_FORMATS]
    if bad:
        raise ValueError(f"unknown LMS format {bad[0]!r}; choose one of {', '.join(LMS_FORMATS)}")
    results = sorted(read_results(out).values(), key=lambda r: r.student)
    if not results:
        raise FileNotFoundError(
            f"{out}: no graded rows (results/*.json); run cvkit autograde {assignment} SUBMISSIONS --out {out} first"
        )
    if not Path(manual).is_file():
        raise FileNotFoundError(f"{manual}: no such file (cvkit autograde wrote {out / 'manual.csv'} for you to fill)")
    if answers is None:
        stored = out / "answers.json"
        answers = [AnswerCell(**a) for a in json.loads(stored.read_text())] if stored.is_file() else []
    points, comments = read_manual_csv(manual, {r.student for r in results}, answers)
    entered = len(points)
    earlier_points, earlier_comments = _read_entered(out / ENTERED_FILE, {r.student for r in results}, answers)
    points, comments = {**earlier_points, **points}, {**earlier_comments, **comments}
    rows = []
    for r in results:
        given = {}
        for a in answers:
            auto_decided = (r.manual or {}).get(a.grade_id, 0.0 if r.status == "ungradable" else None)
            given[a.grade_id] = points.get((r.student, a.grade_id), auto_decided)
        rows.append(
            FinalRow(
                r.student,
                r.name,
                r.status,
                r.total,
                r.max_total,
                given,
                sum(a.points for a in answers),
                {a.grade_id: comments[(r.student, a.grade_id)] for a in answers if (r.student, a.grade_id) in comments},
                r.message,
            )
        )
    ids = [a.grade_id for a in answers]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "student",
            "name",
            "status",
            "total",
            "max",
            "auto",
            "auto_max",
            "manual_points",
            "manual_max",
            "manual",
            *ids,
            "comments",
            "message",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                safe_cell(row.student),
                safe_cell(row.name),
                row.status,
                f"{row.total:g}",
                f"{row.max_total:g}",
                f"{row.auto:g}",
                f"{row.auto_max:g}",
                f"{row.manual_total:g}",
                f"{row.manual_max:g}",
                manual_status(row.manual, answers),
                *("" if row.manual[g] is None else f"{row.manual[g]:g}" for g in ids),
                safe_cell("; ".join(f"{g}: {c}" for g, c in row.comments.items())),
                safe_cell(row.message),
            ]
        )
    files = [out / "final.csv"]
    keys = sorted(set(points) | set(comments))
    write_atomic(
        out / ENTERED_FILE,
        json.dumps(
            [
                {"student": st, "question": q, "points": points.get((st, q)), "comment": comments.get((st, q), "")}
                for st, q in keys
            ],
            indent=1,
        )
        + "\n",
    )
    write_atomic(files[0], buffer.getvalue())
    for fmt in lms:
        final = [replace(r, total=row.total, max_total=row.max_total) for r, row in zip(results, rows)]
        files.append(out / f"final-{fmt}.csv")
        write_atomic(files[-1], lms_csv(final, assignment, rows[0].max_total, fmt))  # type: ignore[arg-type]
    return FinalReport(assignment, rows, list(answers), str(out), entered, [str(f) for f in files])


def _read_entered(path: Path, students: set[str], answers: list[AnswerCell]) -> tuple[dict, dict]:
    """The points and comments earlier merges accepted (``manual_entered.json``), for known students and questions."""
    if not path.is_file():
        return {}, {}
    maxima = {a.grade_id: a.points for a in answers}
    points, comments = {}, {}
    for entry in json.loads(path.read_text()):
        key = (entry["student"], entry["question"])
        if key[0] not in students or key[1] not in maxima:
            continue
        if entry.get("points") is not None and 0 <= float(entry["points"]) <= maxima[key[1]]:
            points[key] = float(entry["points"])
        if entry.get("comment"):
            comments[key] = entry["comment"]
    return points, comments
