"""The ``cvkit release`` / ``validate`` commands and the main job's assignment stage, on a tiny two-assignment course.

``a0_good`` is a valid assignment; ``a0_bad`` has a test cell that passes on the untouched release
(it tests nothing the student writes), which validation must catch.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from cvkit.cli import main
from cvkit.course.main_job import STAGES

pytestmark = pytest.mark.assignment


def _cell(kind, source, **nbgrader):
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    if nbgrader:
        cell.metadata.nbgrader = {"schema_version": 3, "grade": False, "solution": False, "locked": False, **nbgrader}
    return cell


def _assignment(root: Path, name: str, bad: bool) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.cvkit = {"cell_timeout": 30, "time_limit": 120}
    call = ("1 + {x}", "{x} + {x}") if bad else ("student.double({x})", "2 * {x}")
    test = (
        "from cvkit.grading import check_int, run_test\n\n"
        "def answers(student):\n    return {answer}\n\n"
        "def checks(got):\n    check_int(got, {expected}, 'double')\n\n"
        "run_test(None, answers, checks)"
    )
    visible = test.format(answer=call[0].format(x=2), expected=4 if not bad else 3)
    hidden = test.format(answer=call[0].format(x=21), expected=42 if not bad else 22)
    nb.cells = [
        _cell("markdown", f"# {name}", grade_id="intro", locked=True),
        _cell(
            "code",
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
            grade_id="double",
            solution=True,
        ),
        _cell("code", f"# visible test\n{visible}", grade_id="test_double", grade=True, locked=True, points=1),
        _cell(
            "code",
            f"# hidden test\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS",
            grade_id="test_double_hidden",
            grade=True,
            locked=True,
            points=1,
        ),
    ]
    folder = root / "solutions" / name
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "numbers.txt").write_text("1 2 3\n")
    (folder / "notes_for_instructors.md").write_text("never released\n")
    nbformat.write(nb, folder / f"{name}.ipynb")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini-course")
    (root / "notebooks").mkdir()
    (root / "pyproject.toml").write_text("")
    _assignment(root, "a0_good", bad=False)
    _assignment(root, "a0_bad", bad=True)
    return root


def test_release_publishes_notebook_and_data_only_and_check_finds_drift(course, monkeypatch, capsys):
    monkeypatch.setenv("CVKIT_COURSE_ROOT", str(course))
    assert main(["release"]) == 0
    released = sorted(
        str(p.relative_to(course / "assignments")) for p in (course / "assignments").rglob("*") if p.is_file()
    )
    assert released == [
        "a0_bad/a0_bad.ipynb",
        "a0_bad/data/numbers.txt",
        "a0_good/a0_good.ipynb",
        "a0_good/data/numbers.txt",
    ]
    text = (course / "assignments" / "a0_good" / "a0_good.ipynb").read_text()
    assert "return 2 * x" not in text and "double(21)" not in text and "BEGIN" not in text
    assert main(["release", "--check", "a0_good"]) == 0

    nb = json.loads(text)
    nb["cells"][0]["source"] = "# edited by hand"
    (course / "assignments" / "a0_good" / "a0_good.ipynb").write_text(json.dumps(nb))
    capsys.readouterr()
    assert main(["release", "--check", "a0_good"]) == 1
    assert "drift: a0_good.ipynb: differs (cell 0 'intro')" in capsys.readouterr().out
    assert main(["release", "a0_good"]) == 0  # restored for the next test


def test_cli_rejects_unknown_assignments(course, monkeypatch, capsys):
    monkeypatch.setenv("CVKIT_COURSE_ROOT", str(course))
    assert main(["validate", "a3_nothing"]) == 2
    assert "no source notebook" in capsys.readouterr().err
    assert main(["autograde", "a0_good", str(course / "nowhere")]) == 2


def test_main_job_stage_validates_every_assignment(course, tmp_path, monkeypatch):
    assert "assignments" in STAGES
    monkeypatch.setenv("CVKIT_COURSE_ROOT", str(course))
    if not (course / "assignments" / "a0_good").is_dir():
        assert main(["release"]) == 0
    monkeypatch.chdir(tmp_path)  # a relative output folder, as `cvkit` (build/course) passes it
    ok, markdown, data = STAGES["assignments"](course, Path("out"), "fast", 2)
    rows = {a["name"]: a for a in data["assignments"]}
    assert not ok and not rows["a0_bad"]["ok"]
    assert rows["a0_good"]["ok"], rows["a0_good"]["problems"]
    assert rows["a0_good"]["reference"] == {
        "points": 2.0,
        "max": 2.0,
        "status": "graded",
        "seconds": rows["a0_good"]["reference"]["seconds"],
    }
    assert rows["a0_good"]["untouched"]["points"] == 0.0
    assert any(
        "pass on the untouched release" in p and p.endswith(": test_double, test_double_hidden")
        for p in rows["a0_bad"]["problems"]
    )
    assert "| a0_bad | FAILED |" in markdown and "| a0_good |" in markdown
    assert (tmp_path / "out" / "a0_good" / "release" / "a0_good.ipynb").is_file()


def test_a_stuck_kernel_and_a_slow_notebook_are_stopped(tmp_path):
    """A cell that swallows the timeout's interrupt gets its kernel stopped; a notebook whose cells are each
    under the per-cell limit but together over time_limit is stopped by the watchdog. Both are `timeout`."""
    from cvkit.course.assignments import load_assignment
    from cvkit.course.assignments.autograde import autograde
    from cvkit.course.assignments.release import release
    from cvkit.course.assignments.validate import reference_submission

    (tmp_path / "notebooks").mkdir()
    _assignment(tmp_path, "a0_good", bad=False)
    nb_path = tmp_path / "solutions" / "a0_good" / "a0_good.ipynb"
    nb = json.loads(nb_path.read_text())
    nb["metadata"]["cvkit"] = {"cell_timeout": 3, "time_limit": 8}
    nb_path.write_text(json.dumps(nb))
    a = load_assignment("a0_good", tmp_path)
    release(a)
    good = reference_submission(nb, json.loads((tmp_path / "assignments" / "a0_good" / "a0_good.ipynb").read_text()))
    stuck = json.loads(json.dumps(good))
    stuck["cells"][1]["source"] = (
        "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass  # swallows the grader's interrupt\n\n"
        + stuck["cells"][1]["source"]
    )
    slow = json.loads(json.dumps(good))
    nap = {
        "cell_type": "code",
        "metadata": {},
        "source": "import time\ntime.sleep(2.5)",
        "outputs": [],
        "execution_count": None,
    }
    slow["cells"][1:1] = [dict(nap) for _ in range(5)]
    for student, nb_ in (("sam_stuck", stuck), ("tim_slow", slow)):
        (tmp_path / "subs" / student).mkdir(parents=True)
        (tmp_path / "subs" / student / "a0_good.ipynb").write_text(json.dumps(nb_))
    report = autograde(a, tmp_path / "subs", tmp_path / "out", jobs=2, progress=False)
    rows = {r.student: r for r in report.results}
    assert rows["sam_stuck"].status == "timeout" and "ignored the interrupt" in rows["sam_stuck"].message, rows[
        "sam_stuck"
    ].message
    assert rows["tim_slow"].status == "timeout" and "time limit of 8 s" in rows["tim_slow"].message, rows[
        "tim_slow"
    ].message
    assert rows["sam_stuck"].total == rows["tim_slow"].total == 0


def test_publish_writes_the_student_course_and_refuses_to_leak(course, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CVKIT_COURSE_ROOT", str(course))
    if not (course / "assignments" / "a0_good").is_dir():
        assert main(["release"]) == 0
    lecture = nbformat.v4.new_notebook()
    lecture.cells = [nbformat.v4.new_code_cell("x = 1\nloss = 2 * x")]
    nbformat.write(lecture, course / "notebooks" / "01_intro.ipynb")
    (course / "tests" / "fixtures").mkdir(parents=True, exist_ok=True)
    (course / "tests" / "fixtures" / "full_solution.ipynb").write_text("{}")
    out = tmp_path / "public"
    assert main(["publish", str(out)]) == 0
    published = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert (
        "notebooks/01_intro.ipynb" in published
        and "assignments/a0_good/a0_good.ipynb" in published
        and "pyproject.toml" in published
    )
    assert not [p for p in published if p.startswith(("solutions", "tests")) or p.endswith(".db")], published
    assert "keep the instructor repository private" in capsys.readouterr().out

    # a release that shows a solution line is refused, and the earlier publish is left as it was
    released = course / "assignments" / "a0_good" / "a0_good.ipynb"
    good = released.read_text()
    nb = json.loads(good)
    nb["cells"][1]["source"] = "def double(x):\n    return 2 * x"
    released.write_text(json.dumps(nb))
    try:
        assert main(["publish", str(out)]) == 2
        assert (
            "not published: assignments/a0_good/a0_good.ipynb: 1 solution/hidden-test line(s)"
            in capsys.readouterr().err
        )
        assert "return 2 * x" not in (out / "assignments" / "a0_good" / "a0_good.ipynb").read_text()
    finally:
        released.write_text(good)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    assert main(["publish", str(tmp_path / "mine")]) == 2, "a folder that is not a publish output is never replaced"
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_an_interrupted_batch_resumes_with_only_the_missing_rows(course, tmp_path):
    """Rows are written as students are graded; running the command again after an interruption grades
    only who is missing (or whose notebook changed) and keeps the rest; CSV cells never start a formula."""
    from cvkit.course.assignments import load_assignment
    from cvkit.course.assignments.autograde import RUN_FILE, autograde
    from cvkit.course.assignments.release import release
    from cvkit.course.assignments.validate import reference_submission

    a = load_assignment("a0_good", course)
    release(a)
    good = reference_submission(json.loads(a.source_notebook.read_text()), json.loads(a.release_notebook.read_text()))
    for student in ("ann", "bo", "=cy"):
        (tmp_path / "subs" / student).mkdir(parents=True)
        (tmp_path / "subs" / student / "a0_good.ipynb").write_text(json.dumps(good))
    out = tmp_path / "out"
    first = autograde(a, tmp_path / "subs", out, jobs=2, progress=False, lms=("canvas",))
    assert [(r.student, r.total) for r in first.results] == [("ann", 2.0), ("bo", 2.0), ("cy", 2.0)]
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[3].startswith("cy,'=cy,graded,2,2,"), rows[3]
    assert (out / "canvas.csv").read_text().splitlines()[1] == "Points Possible,,,,,2"

    # an interruption: run.json says incomplete, bo's row never got written, cy's notebook was replaced
    run = json.loads((out / RUN_FILE).read_text())
    (out / RUN_FILE).write_text(json.dumps({**run, "complete": False}))
    (out / "results" / "bo.json").unlink()
    changed = json.loads(json.dumps(good))
    changed["cells"][1]["source"] = "def double(x):\n    return 3 * x"
    (tmp_path / "subs" / "=cy" / "a0_good.ipynb").write_text(json.dumps(changed))
    kept = (out / "results" / "ann.json").read_text()
    second = autograde(a, tmp_path / "subs", out, jobs=1, progress=False)
    assert second.resumed == ["ann"]
    assert (out / "results" / "ann.json").read_text() == kept, "a kept row is not regraded"
    assert [(r.student, r.total) for r in second.results] == [("ann", 2.0), ("bo", 2.0), ("cy", 0.0)]
    assert json.loads((out / RUN_FILE).read_text())["complete"] is True
    assert not list(tmp_path.glob("out.previous-*")), "resuming moves nothing aside"
