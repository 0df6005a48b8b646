"""Free-response questions end to end: autograde reports them as awaiting a person, an instructor enters points
in a CSV, ``cvkit grades merge`` gives the final totals. On a tiny course (one autograded test, two questions)
graded through the real commands, in a sandbox when bubblewrap works here.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from cvkit.cli import main

pytestmark = pytest.mark.assignment

NAME = "a0_essay"
WHY = "Why does a 3x3 kernel see a 5x5 region after two layers?"


def _cell(kind, source, **nbgrader):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if nbgrader:
        cell.metadata.nbgrader = {"schema_version": 3, "grade": False, "solution": False, "locked": False, **nbgrader}
    return cell


def _write_assignment(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.cvkit = {"cell_timeout": 30, "time_limit": 120}
    test = (
        "from cvkit.grading import check_int, run_test\n\n"
        "def answers(student):\n    return student.double(3)\n\n"
        "def checks(got):\n    check_int(got, 6, 'double(3)')\n\n"
        "run_test(None, answers, checks)"
    )
    nb.cells = [
        _cell("markdown", f"# {NAME}", grade_id="intro", locked=True),
        _cell(
            "code",
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            grade_id="double",
            solution=True,
        ),
        _cell("code", f"# visible test\n{test}", grade_id="test_double", grade=True, locked=True, points=1),
        _cell("markdown", f"**Question 1 (3 points).** {WHY}"),
        _cell(
            "markdown",
            "### BEGIN SOLUTION\nEach output of layer 2 reads 3x3 outputs of layer 1, each reading 3x3 pixels: 3 + 2 = 5.\n\n"
            "**Rubric (3 points).** 1: the growth by k - 1 per layer; 2: the sum 3 + 2; 3: both, explained.\n### END SOLUTION",
            grade_id="fr_receptive_field",
            grade=True,
            solution=True,
            points=3,
        ),
        _cell("markdown", "**Question 2 (2 points).** When would you use a dilated convolution instead?"),
        _cell(
            "markdown",
            "### BEGIN SOLUTION\nTo grow the receptive field without more parameters or pooling.\n\n"
            "**Rubric (2 points).** 1 for the receptive field, 1 for no parameters or resolution lost.\n### END SOLUTION",
            grade_id="fr_dilation",
            grade=True,
            solution=True,
            points=2,
        ),
    ]
    folder = root / "solutions" / NAME
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{NAME}.ipynb")


def _submission(release: dict, code: str | None, answers: dict[str, str | None]) -> dict:
    nb = json.loads(json.dumps(release))
    kept = []
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid == "double" and code is not None:
            cell["source"] = code
        if gid in answers:
            if answers[gid] is None:
                continue  # the student deleted the answer cell
            cell["source"] = answers[gid]
        kept.append(cell)
    nb["cells"] = kept
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The course, its release, and one autograde run of five students (through the CLI)."""
    root = tmp_path_factory.mktemp("essay-course")
    (root / "notebooks").mkdir()
    (root / "pyproject.toml").write_text("")
    _write_assignment(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("CVKIT_COURSE_ROOT", str(root))
    assert main(["release", NAME]) == 0
    release = json.loads((root / "assignments" / NAME / f"{NAME}.ipynb").read_text())
    subs = root / "submissions"
    people = {
        "ann": (
            "def double(x):\n    return 2 * x",
            {"fr_receptive_field": "Two 3x3 layers: 3 + 2 = 5 pixels.", "fr_dilation": "More context, same weights."},
        ),
        "bo": (
            "def double(x):\n    return x + 1",
            {"fr_receptive_field": '=HYPERLINK("http://x") because layers stack'},
        ),
        "cy": (None, {}),  # the untouched release
        "dee": (
            "def double(x):\n    return 2 * x",
            {"fr_receptive_field": None, "fr_dilation": "   "},
        ),  # deleted one, blank other
    }
    for student, (code, answers) in people.items():
        (subs / student).mkdir(parents=True)
        (subs / student / f"{NAME}.ipynb").write_text(json.dumps(_submission(release, code, answers)))
    out = root / "graded"
    assert main(["autograde", NAME, str(subs), "--out", str(out), "-j", "2"]) == 0
    yield root, out
    mp.undo()


def _csv(path: Path) -> dict[str, dict]:
    with open(path, newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def test_validate_counts_model_answers_as_awaiting_and_the_release_as_unanswered(graded, capsys):
    root, _ = graded
    capsys.readouterr()
    assert main(["validate", NAME]) == 0
    out = capsys.readouterr().out
    assert "reference solution: 1/1 autograded points; free response: 5 points, 2 answer(s) awaiting a person" in out, (
        out
    )
    assert "untouched release: 0/1 autograded points; free response: 5 points, all unanswered (0)" in out, out


def test_autograde_reports_answers_awaiting_manual_grading(graded):
    root, out = graded
    rows = _csv(out / "grades.csv")
    assert list(rows["ann"])[:9] == [
        "student",
        "name",
        "status",
        "total",
        "max",
        "test_double",
        "fr_receptive_field",
        "fr_dilation",
        "manual",
    ]
    # written answers are blank (a person decides), never 0; unanswered ones are 0; totals are the autograded points
    assert (rows["ann"]["total"], rows["ann"]["fr_receptive_field"], rows["ann"]["fr_dilation"]) == ("1", "", "")
    assert rows["ann"]["manual"] == "awaiting 2 answer(s) (5 points)" and rows["ann"]["manual_max"] == "5"
    assert (rows["bo"]["total"], rows["bo"]["fr_receptive_field"], rows["bo"]["fr_dilation"]) == ("0", "", "0")
    assert rows["bo"]["manual"] == "awaiting 1 answer(s) (3 points)"
    assert (rows["cy"]["fr_receptive_field"], rows["cy"]["fr_dilation"], rows["cy"]["manual"]) == (
        "0",
        "0",
        "unanswered",
    )
    # a deleted answer cell is not a silent 0: the answer may be elsewhere, a person looks; a blank one is unanswered
    assert (rows["dee"]["fr_receptive_field"], rows["dee"]["fr_dilation"]) == ("", "0")
    assert "fr_receptive_field" in rows["dee"]["message"]  # "solution cell(s) not found"

    sheet = list(csv.DictReader(open(out / "manual.csv", newline="")))
    assert [(r["question"], r["student"], r["points"]) for r in sheet] == [
        ("fr_receptive_field", "ann", ""),
        ("fr_receptive_field", "bo", ""),
        ("fr_receptive_field", "cy", "0"),
        ("fr_receptive_field", "dee", ""),
        ("fr_dilation", "ann", ""),
        ("fr_dilation", "bo", "0"),
        ("fr_dilation", "cy", "0"),
        ("fr_dilation", "dee", "0"),
    ]
    assert sheet[0]["answer"] == "Two 3x3 layers: 3 + 2 = 5 pixels." and sheet[0]["max"] == "3"
    assert sheet[1]["answer"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    text = (out / "manual.md").read_text()
    assert WHY in text and "**Rubric (3 points).**" in text and "### ann (awaiting your points)" in text
    report = (out / "report.md").read_text()
    assert "free-response answers awaiting a person: 4" in report
    page = (out / "feedback" / "ann" / f"{NAME}.html").read_text()
    assert "awaiting grading by your instructor" in page and "Rubric" not in page

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "cvkit") as gb:
        assert gb.find_grade("fr_receptive_field", NAME, NAME, "ann").needs_manual_grade
        unanswered = gb.find_grade("fr_dilation", NAME, NAME, "cy")
        assert not unanswered.needs_manual_grade and unanswered.score == 0


def test_manual_points_from_a_csv_give_the_final_totals(graded, capsys, tmp_path):
    root, out = graded
    sheet = list(csv.DictReader(open(out / "manual.csv", newline="")))
    entered = {
        ("ann", "fr_receptive_field"): "3",
        ("ann", "fr_dilation"): "1.5",
        ("bo", "fr_receptive_field"): "1",
        ("cy", "fr_dilation"): "0.5",
    }  # an instructor may also overrule the automatic 0
    for row in sheet:
        row["points"] = entered.get((row["student"], row["question"]), row["points"])
        if (row["student"], row["question"]) == ("bo", "fr_receptive_field"):
            row["comment"] = "the stacking is right; 3 + 2 is missing"
    filled = tmp_path / "grades_manual.csv"
    with open(filled, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(sheet[0]))
        writer.writeheader()
        writer.writerows(sheet)
    capsys.readouterr()
    assert main(["grades", "merge", NAME, "--manual", str(filled), "--out", str(out), "--format", "canvas"]) == 0
    printed = capsys.readouterr().out
    final = _csv(out / "final.csv")
    # autograded + free response, by hand: ann 1 + 3 + 1.5, bo 0 + 1 + 0, cy 0 + 0 + 0.5, dee 1 + (awaiting) + 0
    assert {s: (r["total"], r["max"]) for s, r in final.items()} == {
        "ann": ("5.5", "6"),
        "bo": ("1", "6"),
        "cy": ("0.5", "6"),
        "dee": ("1", "6"),
    }
    assert (final["ann"]["auto"], final["ann"]["manual_points"], final["ann"]["manual"]) == ("1", "4.5", "graded")
    assert final["dee"]["manual"] == "awaiting 1 answer(s) (3 points)" and final["dee"]["fr_receptive_field"] == ""
    # comments in question order; the sheet's own "unanswered" notes count as comments too
    assert (
        final["bo"]["comments"]
        == "fr_receptive_field: the stacking is right; 3 + 2 is missing; fr_dilation: unanswered"
    )
    assert "1 answer(s) still await a person" in printed
    canvas = list(csv.reader(open(out / "final-canvas.csv", newline="")))
    assert canvas[1][-1] == "6" and ["ann", "", "", "ann", "", "5.5"] in canvas
    assert _csv(out / "grades.csv")["ann"]["total"] == "1"  # the autograde table is left as it was

    # a second sheet with only the answer graded since: the earlier points stay, the new one is added
    later = tmp_path / "later.csv"
    later.write_text("student,question,points,comment\ndee,fr_receptive_field,2,late but right\n")
    assert main(["grades", "merge", NAME, "--manual", str(later), "--out", str(out)]) == 0
    final = _csv(out / "final.csv")
    assert {s: r["total"] for s, r in final.items()} == {"ann": "5.5", "bo": "1", "cy": "0.5", "dee": "3"}
    assert final["dee"]["manual"] == "graded" and final["bo"]["comments"].startswith("fr_receptive_field: the stacking")
    assert final["dee"]["comments"] == "fr_receptive_field: late but right; fr_dilation: unanswered"
    entered = json.loads((out / "manual_entered.json").read_text())
    assert {(e["student"], e["question"]): e["points"] for e in entered} == {
        ("ann", "fr_receptive_field"): 3,
        ("ann", "fr_dilation"): 1.5,
        ("bo", "fr_receptive_field"): 1,
        ("bo", "fr_dilation"): 0,
        ("cy", "fr_receptive_field"): 0,
        ("cy", "fr_dilation"): 0.5,
        ("dee", "fr_receptive_field"): 2,
        ("dee", "fr_dilation"): 0,
    }


def test_points_typed_into_manual_csv_survive_the_sheet_being_rewritten(graded, tmp_path):
    """A resumed autograde rewrites manual.csv: what a person typed there stays while the answer is unchanged."""
    from cvkit.course.assignments.manual import AnswerCell
    from cvkit.course.assignments.outputs import manual_csv, read_manual_sheet, read_results

    root, out = graded
    answers = [AnswerCell(**a) for a in json.loads((out / "answers.json").read_text())]
    results = sorted(read_results(out).values(), key=lambda r: r.student)
    sheet = list(csv.DictReader(open(out / "manual.csv", newline="")))
    for row in sheet:
        if (row["student"], row["question"]) == ("ann", "fr_receptive_field"):
            row["points"], row["comment"] = "2", "good"
    edited = tmp_path / "manual.csv"
    with open(edited, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(sheet[0]))
        writer.writeheader()
        writer.writerows(sheet)
    rewritten = {
        (r["student"], r["question"]): r
        for r in csv.DictReader(io.StringIO(manual_csv(results, answers, read_manual_sheet(edited))))
    }
    assert (
        rewritten[("ann", "fr_receptive_field")]["points"],
        rewritten[("ann", "fr_receptive_field")]["comment"],
    ) == ("2", "good")
    assert rewritten[("ann", "fr_dilation")]["points"] == "" and rewritten[("cy", "fr_dilation")]["points"] == "0"
    ann = next(r for r in results if r.student == "ann")
    ann.answers = {
        **ann.answers,
        "fr_receptive_field": "a new answer, resubmitted",
    }  # a changed answer is graded afresh
    rewritten = {
        (r["student"], r["question"]): r
        for r in csv.DictReader(io.StringIO(manual_csv(results, answers, read_manual_sheet(edited))))
    }
    assert rewritten[("ann", "fr_receptive_field")]["points"] == ""


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"student": "ann", "question": "fr_dilation", "points": "2.5"},
            "line 2 (ann, fr_dilation): points 2.5 outside 0..2",
        ),
        ({"student": "zed", "question": "fr_dilation", "points": "1"}, "unknown student 'zed'"),
        ({"student": "ann", "question": "fr_essay", "points": "1"}, "unknown question 'fr_essay'"),
        ({"student": "ann", "question": "fr_dilation", "points": "a lot"}, "is not a number"),
    ],
)
def test_a_bad_manual_csv_is_refused_and_changes_nothing(graded, tmp_path, capsys, row, message):
    root, out = graded
    before = (out / "final.csv").read_bytes() if (out / "final.csv").exists() else None
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["student", "question", "points"])
        writer.writeheader()
        writer.writerow(row)
    capsys.readouterr()
    assert main(["grades", "merge", NAME, "--manual", str(bad), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    after = (out / "final.csv").read_bytes() if (out / "final.csv").exists() else None
    assert after == before


def test_merge_needs_an_autograde_output(graded, tmp_path, capsys):
    empty = tmp_path / "nothing"
    empty.mkdir()
    shutil.copy(graded[1] / "manual.csv", tmp_path / "manual.csv")
    assert main(["grades", "merge", NAME, "--manual", str(tmp_path / "manual.csv"), "--out", str(empty)]) == 2
    assert "no graded rows" in capsys.readouterr().err
