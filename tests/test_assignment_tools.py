"""The pieces of the assignment pipeline that need no sandbox: repair, collection, the static scan, the test-cell
format, feedback caps and leak checks, outputs (CSV, LMS), statuses and verdicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cvkit.course.assignments import (
    AssignmentError,
    cell_source,
    is_answer_cell,
    load_assignment,
    nbgrader_meta,
    read_json,
)
from cvkit.course.assignments.execute import CellRecord, Execution
from cvkit.course.assignments.feedback import cap_outputs, find_leaks
from cvkit.course.assignments.grade import GradeResult, TestVerdict, decide_status
from cvkit.course.assignments.outputs import AutogradeReport, grades_csv, lms_csv, safe_cell
from cvkit.course.assignments.release import release_leaks
from cvkit.course.assignments.repair import UngradableError, parse_notebook, repair_submission
from cvkit.course.assignments.scan import scan_notebook
from cvkit.course.assignments.submissions import collect_submissions, safe_student_id
from cvkit.course.assignments.testcells import TestCellError, is_hidden, split_test_cell
from cvkit.course.assignments.validate import REFERENCE, UNTOUCHED, judge, reference_submission, solution_text
from cvkit.grading import GradingError, check_raises

ROOT = Path(__file__).resolve().parents[1]
A = "a1_convolution"
RELEASE = read_json(ROOT / "assignments" / A / f"{A}.ipynb")
SOURCE = read_json(ROOT / "solutions" / A / f"{A}.ipynb")


def gid(cell):
    return nbgrader_meta(cell).get("grade_id")


def ids(nb):
    return [gid(c) for c in nb["cells"] if gid(c)]


def index(nb, grade_id):
    return next(i for i, c in enumerate(nb["cells"]) if gid(c) == grade_id)


@pytest.fixture
def submission():
    return reference_submission(SOURCE, RELEASE)


# ------------------------------------------------------------------------------------------ repair
def test_an_intact_submission_needs_no_repair(submission):
    fixed, notes = repair_submission(submission, RELEASE)
    assert notes == []
    assert ids(fixed) == ids(RELEASE)


def test_duplicated_cells_keep_their_metadata_on_the_last_copy_only(submission):
    i = index(submission, "conv2d_loops")
    submission["cells"].insert(i + 1, copy.deepcopy(submission["cells"][i]))
    submission["cells"][i + 1]["source"] += "\n# my second try"
    fixed, notes = repair_submission(submission, RELEASE)
    assert ids(fixed) == ids(RELEASE), "every grade id exactly once (plain nbgrader aborts the batch otherwise)"
    assert "my second try" in fixed["cells"][index(fixed, "conv2d_loops")]["source"]
    assert len(fixed["cells"]) == len(RELEASE["cells"]) + 1, "the other copy still runs, as an ordinary cell"
    assert any("appeared 2 times" in n for n in notes)
    assert len({c["id"] for c in fixed["cells"]}) == len(fixed["cells"]), "cell ids made unique"


def test_stripped_metadata_is_restored_from_the_release(submission):
    for c in submission["cells"]:
        c["metadata"] = {}
    fixed, notes = repair_submission(submission, RELEASE)
    # free-response answers are Markdown a person grades: without metadata nothing identifies them, so they are not
    # guessed; they are missing, and grading marks them awaiting a person (cvkit.course.assignments.manual)
    answers = [gid(c) for c in RELEASE["cells"] if is_answer_cell(c)]
    assert answers and ids(fixed) == [g for g in ids(RELEASE) if g not in answers]
    assert not any("solution cell(s) not found" in n and answers[0] in n for n in notes)
    for cell in fixed["cells"]:
        if gid(cell):
            assert nbgrader_meta(cell) == nbgrader_meta(RELEASE["cells"][index(RELEASE, gid(cell))])
    assert "def conv2d_loops" in fixed["cells"][index(fixed, "conv2d_loops")]["source"], (
        "solution recognised by what it defines"
    )
    assert any("metadata restored" in n for n in notes)


def test_deleted_test_cell_goes_back_after_the_students_work_for_that_part(submission):
    del submission["cells"][index(submission, "test_conv2d_loops")]
    helper = {
        "cell_type": "code",
        "metadata": {},
        "source": "def my_helper():\n    return 1",
        "outputs": [],
        "execution_count": None,
    }
    submission["cells"].insert(index(submission, "conv2d_loops") + 1, helper)
    fixed, notes = repair_submission(submission, RELEASE)
    order = [gid(c) or cell_source(c)[:13] for c in fixed["cells"]]
    i_sol, i_help, i_test = order.index("conv2d_loops"), order.index("def my_helper"), order.index("test_conv2d_loops")
    assert i_sol < i_help < i_test < order.index("test_conv2d_loops_hidden")
    assert cell_source(fixed["cells"][i_test]) == cell_source(RELEASE["cells"][index(RELEASE, "test_conv2d_loops")])
    assert notes == ["deleted test cell(s) restored: test_conv2d_loops"]


def test_edited_test_and_readonly_cells_are_reset(submission):
    submission["cells"][index(submission, "test_pooling")]["source"] = "pass"
    submission["cells"][index(submission, "imports")]["source"] = "import torch"
    fixed, notes = repair_submission(submission, RELEASE)
    for g in ("test_pooling", "imports"):
        assert cell_source(fixed["cells"][index(fixed, g)]) == cell_source(RELEASE["cells"][index(RELEASE, g)])
    assert any("test_pooling" in n and "edited" in n for n in notes)
    assert any("imports" in n and "read-only" in n for n in notes)


def test_deleted_solution_cells_are_not_reinserted(submission):
    del submission["cells"][index(submission, "pooling")]
    fixed, notes = repair_submission(submission, RELEASE)
    assert "pooling" not in ids(fixed), "a stub would overwrite code the student wrote elsewhere"
    assert any("solution cell(s) not found: pooling" in n for n in notes)


def test_unknown_ids_junk_cells_and_outputs(submission):
    submission["cells"][0]["metadata"]["nbgrader"] = {
        "grade": True,
        "grade_id": "made_up",
        "points": 100,
        "schema_version": 3,
    }
    submission["cells"].append({"cell_type": "widget", "source": "?"})
    submission["cells"].append("not a cell")
    code = submission["cells"][index(submission, "conv2d_loops")]
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * 10_000_000}]
    code["execution_count"] = 7
    fixed, notes = repair_submission(submission, RELEASE)
    assert "made_up" not in ids(fixed)
    assert any("made_up" in n for n in notes) and any("2 malformed" in n for n in notes)
    assert all(
        c.get("outputs", []) == [] and c.get("execution_count") is None
        for c in fixed["cells"]
        if c["cell_type"] == "code"
    )
    import nbformat

    nbformat.validate(nbformat.from_dict(fixed))


def test_unreadable_files_are_ungradable():
    with pytest.raises(UngradableError, match="invalid JSON"):
        parse_notebook('{"cells": [')
    with pytest.raises(UngradableError, match="no list of cells"):
        parse_notebook('{"metadata": {}}')
    with pytest.raises(UngradableError, match="not a notebook"):
        parse_notebook("[1, 2]")


# ------------------------------------------------------------------------------------------ collection
def _nb(path: Path, grade_ids=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [
        {
            "cell_type": "code",
            "metadata": {"nbgrader": {"grade_id": g}},
            "source": "",
            "outputs": [],
            "execution_count": None,
        }
        for g in grade_ids
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_collect_folders_flat_files_renames_and_empty_folders(tmp_path):
    _nb(tmp_path / "ann" / f"{A}.ipynb")
    _nb(tmp_path / f"bo b_{A}.ipynb")
    _nb(tmp_path / f"cy-{A} (2).ipynb")
    _nb(tmp_path / "dee" / "Untitled.ipynb")
    _nb(tmp_path / "dee" / f"Copy of {A}.ipynb", ["conv2d_loops", "test_conv2d_loops"])
    (tmp_path / "eve").mkdir()
    _nb(tmp_path / "fay" / ".ipynb_checkpoints" / f"{A}-checkpoint.ipynb")
    _nb(tmp_path / "ollie.ipynb")
    subs = {s.student: s for s in collect_submissions(tmp_path, A, {"conv2d_loops", "test_conv2d_loops"})}
    assert sorted(subs) == ["ann", "bo_b", "cy", "dee", "eve", "fay", "ollie"]
    assert subs["ann"].notes == [] and subs["bo_b"].notes == [] and subs["cy"].notes == []
    assert subs["dee"].notebook.name == f"Copy of {A}.ipynb", "the notebook sharing the most grade ids wins"
    assert any("instead of" in n for n in subs["dee"].notes)
    assert subs["eve"].notebook is None and subs["fay"].notebook is None, "checkpoints are not submissions"
    assert subs["ollie"].notes, "a flat file without the assignment name is graded, with a note"


def test_every_entry_gets_a_unique_id_whatever_the_names(tmp_path):
    _nb(tmp_path / "ann" / f"{A}.ipynb")
    _nb(tmp_path / f"ann_{A}.ipynb")
    _nb(tmp_path / "Иван" / f"{A}.ipynb")
    _nb(tmp_path / "李小龍" / f"{A}.ipynb")
    _nb(tmp_path / "安" / f"{A}.ipynb")
    _nb(tmp_path / "日" / f"{A}.ipynb")
    _nb(tmp_path / "=cmd" / f"{A}.ipynb")
    subs = collect_submissions(tmp_path, A)
    ids = [s.student for s in subs]
    assert len(ids) == len(set(ids)) == 7, ids
    by_name = {s.name: s for s in subs}
    assert by_name["Иван"].student == "Ivan" and by_name["李小龍"].student == "LiXiaoLong"
    assert by_name["=cmd"].student == "cmd", "an id never starts with a spreadsheet formula character"
    anns = [s for s in subs if s.name == "ann"]
    assert len(anns) == 2 and all(
        s.student.startswith("ann-") and any("made unique" in n for n in s.notes) for s in anns
    )
    with pytest.raises(FileNotFoundError):
        collect_submissions(tmp_path / "missing", A)


def test_student_ids_are_made_safe():
    assert safe_student_id("../../etc passwd") == "etc_passwd"
    assert safe_student_id("  ") == ""
    assert safe_student_id("Zoë Ångström") == "Zoe_Angstrom"


# ------------------------------------------------------------------------------------------ feedback
def test_outputs_are_capped_by_type():
    import base64

    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"0" * 100).decode()
    fake = base64.b64encode(b"<svg onload=alert(1)>").decode()
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "x" * 100_000},
        {"output_type": "display_data", "data": {"text/html": "<script>alert(1)</script>", "text/plain": "y" * 50_000}},
        *[{"output_type": "display_data", "data": {"image/png": png}} for _ in range(10)],
        {"output_type": "display_data", "data": {"image/png": fake}},
        {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["frame"] * 100},
    ]
    budget = {"images": 10**9}
    kept = cap_outputs(outputs, budget)
    assert sum(len(o.get("text", "")) for o in kept if o["output_type"] == "stream") < 21_000
    assert all("text/html" not in o.get("data", {}) for o in kept), "HTML never reaches a feedback page"
    assert sum("image/png" in o.get("data", {}) for o in kept) == 4, (
        "at most 4 images per cell; a non-PNG is not an image"
    )
    assert max(len(o["data"].get("text/plain", "")) for o in kept if "data" in o) <= 5_000
    assert len(kept[-1]["traceback"]) == 12
    small = {"images": 150}
    assert sum("image/png" in o.get("data", {}) for o in cap_outputs(outputs, small)) == 1, (
        "the page-wide image budget holds"
    )


def test_leaks_are_lines_of_the_protected_code_the_student_did_not_write():
    protected = ("x, w = torch.randn(2, 3, generator=g), torch.randn(4, generator=g)", "return out.view(N, K, H2, W2)")
    page = (
        "<pre>x, w = torch.randn(2, 3, generator=g), torch.randn(4, generator=g)\nreturn out.view(N, K, H2, W2)</pre>"
    )
    submitted = {"cells": [{"cell_type": "code", "source": "    return out.view(N, K, H2, W2)  \n"}]}
    assert find_leaks(page, protected, submitted) == [protected[0]], (
        "their own line is theirs to see; the hidden one is a leak"
    )
    assert find_leaks("<p>all fine</p>", protected, submitted) == []


# ------------------------------------------------------------------------------------------ release checks
def test_leak_check_finds_solution_lines_hidden_tests_markers_and_private_files(tmp_path):
    a = load_assignment(A, ROOT)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / a.notebook_file).write_text(json.dumps(RELEASE))
    assert release_leaks(a, clean) == []

    leaky = copy.deepcopy(RELEASE)
    sol = leaky["cells"][index(leaky, "conv2d_im2col")]
    sol["source"] = solution_text(SOURCE["cells"][index(SOURCE, "conv2d_im2col")])
    test = leaky["cells"][index(leaky, "test_pooling_hidden")]
    test["source"] = SOURCE["cells"][index(SOURCE, "test_pooling_hidden")]["source"]
    bad = tmp_path / "bad"
    (bad / "private").mkdir(parents=True)
    (bad / "private" / "labels.txt").write_text("1 2 3")
    (bad / a.notebook_file).write_text(json.dumps(leaky))
    found = "\n".join(release_leaks(a, bad))
    assert "F.unfold(x, (FH, FW), padding=padding, stride=stride)" in found
    assert "BEGIN HIDDEN TESTS" in found and "F.max_pool2d(x, k, s)" in found
    assert "private" in found


# ------------------------------------------------------------------------------------------ verdicts
def _report(ref: GradeResult, raw: GradeResult) -> AutogradeReport:
    return AutogradeReport(A, [ref, raw], [("t1", 1.0), ("t2", 2.0)], "", 1, 0.0)


def test_judge_accepts_full_marks_and_zero_and_names_what_is_wrong():
    ref = GradeResult(REFERENCE, "graded", {"t1": 1.0, "t2": 2.0}, 3.0, 3.0)
    raw = GradeResult(UNTOUCHED, "graded", {"t1": 0.0, "t2": 0.0}, 0.0, 3.0)
    assert judge(_report(ref, raw)) == []
    short = GradeResult(
        REFERENCE, "graded", {"t1": 1.0, "t2": 0.0}, 1.0, 3.0, failures={"t2": "GradingError: off by one"}
    )
    leaky_test = GradeResult(UNTOUCHED, "graded", {"t1": 1.0, "t2": 0.0}, 1.0, 3.0)
    problems = judge(_report(short, leaky_test))
    assert any("t2 (0/2: GradingError: off by one)" in p for p in problems)
    assert any("pass on the untouched release" in p and "t1" in p for p in problems)
    crashed = GradeResult(REFERENCE, "crashed", {"t1": 1.0, "t2": 2.0}, 3.0, 3.0, message="kernel died")
    assert any("reference solution was crashed" in p for p in judge(_report(crashed, raw)))


def test_status_takes_the_most_severe_event():
    def run(*records, **stop):
        return Execution(records={r.index: r for r in records}, **stop)

    ok = TestVerdict("t", 1.0, 1.0)
    assert decide_status([], [], run(CellRecord(1, ran=True)), {"t": ok}, []) == ("graded", [])
    assert decide_status(["a repair"], [], run(), {}, [])[0] == "repaired"
    records = (
        CellRecord(3, "f", True, events=["exit"]),
        CellRecord(5, "", True, events=["timeout"]),
        CellRecord(6, "g", True, events=["output"]),
    )
    status, notes = decide_status(["a repair"], [], run(*records), {}, [])
    assert status == "timeout"
    assert notes == [
        "cell 'f': called sys.exit()/exit(); the rest of that cell did not run",
        "cell 5: interrupted after the per-cell limit",
        "cell 'g': printed too much; output truncated",
    ]
    assert decide_status([], [], run(*records, stopped="memory", stopped_at=7, message="m"), {}, [])[0] == "crashed"
    assert decide_status([], [], run(stopped="unresponsive", stopped_at=7, message="m"), {}, [])[0] == "timeout"
    assert (
        decide_status(
            [], ["flagged for review: x"], run(*records, stopped="memory", stopped_at=7, message="m"), {}, []
        )[0]
        == "review"
    )
    status, notes = decide_status([], [], run(), {}, ["a hidden line"])
    assert status == "review" and "feedback withheld" in notes[-1]


def test_test_cells_split_into_a_sandbox_half_and_a_grader_half():
    cell = """# Hidden tests (1 point)
### BEGIN HIDDEN TESTS
import torch
from cvkit.grading import check_tensor, run_test

def inputs():
    return {"x": torch.ones(2)}

def answers(student, x):
    return student.double(x)

@staticmethod
def checks(got, x):
    check_tensor(got, torch.tensor([2.0, 2.0]), "double")

run_test(inputs, answers, checks)
### END HIDDEN TESTS"""
    assert is_hidden(cell) and not is_hidden(cell.replace("# Hidden tests (1 point)", "print(1)"))
    sandbox, grader = split_test_cell(cell)
    assert (
        "def answers" in sandbox
        and "def checks" not in sandbox
        and "[2.0, 2.0]" not in sandbox
        and "staticmethod" not in sandbox
    )
    assert "run_test(" not in sandbox and "run_test(" not in grader and "def checks" in grader
    line = next(i for i, text in enumerate(cell.splitlines()) if text.startswith("def answers"))
    assert sandbox.splitlines()[line].startswith("def answers") and grader.splitlines()[line].startswith(
        "def answers"
    ), "line numbers are kept"
    for broken, why in (
        (cell.replace("def answers", "def answer"), "needs a function answers"),
        (cell.replace("run_test(inputs, answers, checks)", "checks(1)"), "must end with run_test"),
        (cell.replace("def inputs", "def make_inputs"), "defines no inputs"),
        (cell.replace("run_test(inputs", "CHECK = checks\nrun_test(inputs"), "only the final run_test may use checks"),
    ):
        with pytest.raises(TestCellError, match=why):
            split_test_cell(broken)


def test_csv_cells_never_start_a_formula_and_lms_files_have_their_shapes():
    assert [safe_cell(v) for v in ("=1+1", "+cmd", "-x", "@SUM(A1)", "\tx", "ann", 2.5, -0.5)] == [
        "'=1+1",
        "'+cmd",
        "'-x",
        "'@SUM(A1)",
        "'\tx",
        "ann",
        "2.5",
        "-0.5",
    ]
    rows = [
        GradeResult("cmd", "graded", {"t": 2.0}, 2.0, 3.0, "=HYPERLINK(1)", name="=cmd()"),
        GradeResult("bo", "review", {"t": 0.0}, 0.0, 3.0, "", name="Bo"),
    ]
    text = grades_csv(rows, [("t", 3.0)])
    import csv
    import io

    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0][:5] == ["student", "name", "status", "total", "max"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in parsed for cell in row)
    canvas = list(csv.reader(io.StringIO(lms_csv(rows, A, 3.0, "canvas"))))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    assert canvas[1] == ["Points Possible", "", "", "", "", "3"] and canvas[2][0] == "'=cmd()" and canvas[3][-1] == "0"
    moodle = list(csv.reader(io.StringIO(lms_csv(rows, A, 3.0, "moodle"))))
    assert moodle[0] == ["Username", A, f"{A} (feedback)"] and moodle[2][:2] == ["Bo", "0"]
    with pytest.raises(ValueError, match="choose one of canvas, moodle"):
        lms_csv(rows, A, 3.0, "blackboard")


def test_locked_cells_are_recognised_by_their_source_before_their_grade_id(submission):
    a, b = index(submission, "test_conv2d_loops"), index(submission, "test_pooling")
    meta_a, meta_b = submission["cells"][a]["metadata"]["nbgrader"], submission["cells"][b]["metadata"]["nbgrader"]
    submission["cells"][a]["metadata"]["nbgrader"], submission["cells"][b]["metadata"]["nbgrader"] = meta_b, meta_a
    fixed, notes = repair_submission(submission, RELEASE)
    assert ids(fixed) == ids(RELEASE), "swapped grade ids do not move the tests"
    assert cell_source(fixed["cells"][index(fixed, "test_conv2d_loops")]) == cell_source(
        RELEASE["cells"][index(RELEASE, "test_conv2d_loops")]
    )
    assert any("grade ids corrected" in n for n in notes)


def test_load_assignment_rejects_bad_names_and_settings(tmp_path):
    with pytest.raises(AssignmentError, match="aN_topic"):
        load_assignment("Convolution", ROOT)
    with pytest.raises(AssignmentError, match="no source notebook"):
        load_assignment("a9_missing", ROOT)
    nb = copy.deepcopy(SOURCE)
    nb["metadata"]["cvkit"] = {"cell_timout": 3}
    (tmp_path / "solutions" / "a7_x").mkdir(parents=True)
    (tmp_path / "solutions" / "a7_x" / "a7_x.ipynb").write_text(json.dumps(nb))
    with pytest.raises(AssignmentError, match="unknown metadata.cvkit key 'cell_timout'"):
        load_assignment("a7_x", tmp_path)
    a = load_assignment(A, ROOT)
    assert (a.cell_timeout, a.time_limit, a.memory_limit_gb) == (30.0, 240.0, 2.0)
    assert a.max_points == 30


# ------------------------------------------------------------------------------------------ grading
def test_check_raises():
    from cvkit.grading import outcome

    def bad():
        raise ValueError("no")

    assert isinstance(check_raises(bad, ValueError), ValueError)
    assert check_raises(outcome(bad), ValueError).message == "no"
    with pytest.raises(GradingError, match="expected ValueError to be raised, but it returned normally: raise it"):
        check_raises(outcome(lambda: 3), ValueError, "f(3)", hint="raise it")
    with pytest.raises(GradingError, match="expected ValueError, got KeyError"):
        check_raises(outcome(lambda: {}["x"]), ValueError, "f")
    with pytest.raises(GradingError, match="inner"):
        check_raises(lambda: (_ for _ in ()).throw(GradingError("inner")), AssertionError)
    with pytest.raises(TypeError, match="exception classes"):
        check_raises(bad, 3)


def test_static_scan_flags_forbidden_calls_in_graded_code_and_tampering(submission):
    from cvkit.course.assignments.model import Rule
    from cvkit.course.assignments.rules import resolve_rules

    rules = resolve_rules((Rule(("torch.nn.functional.conv2d", "cvkit.conv.ops"), ("*",), "write it yourself"),))
    assert scan_notebook(submission, RELEASE, rules) == [], "the reference solution is clean"
    i = index(submission, "conv2d_loops")
    submission["cells"][i]["source"] += (
        "\n\ndef cheat(x, w):\n    return getattr(F, 'con' + 'v2d')(x, w)\n\ndef lazy(x, w):\n    return F.conv2d(x, w)"
    )
    scratch = {
        "cell_type": "code",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
        "source": "print(torch.allclose(conv2d_loops(x, w), F.conv2d(x, w)))\nimport importlib\ng = importlib.import_module('cvkit.' + 'grading')\ntorch.allclose = lambda *a, **k: True",
    }
    submission["cells"].insert(i + 1, scratch)
    flags = "\n".join(scan_notebook(submission, RELEASE, rules))
    assert "cell 'conv2d_loops' getattr(torch.nn.functional, <computed name>)" in flags
    assert "cell 'conv2d_loops' uses torch.nn.functional.conv2d (forbidden: write it yourself)" in flags
    assert f"cell {i + 1} uses importlib" in flags and f"cell {i + 1} rewrites torch.allclose" in flags
    assert f"cell {i + 1} uses torch.nn.functional.conv2d" not in flags, (
        "comparing with F.conv2d outside a function is fine"
    )


def test_autograde_never_replaces_a_folder_it_did_not_write(tmp_path):
    import json as _json

    from cvkit.course.assignments.autograde import RUN_FILE, _prepare_output_folder

    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "ann").mkdir()
    for bad in (subs, tmp_path, subs.parent, subs / "ann"):
        with pytest.raises(ValueError, match="would replace"):
            _prepare_output_folder(bad, subs, tmp_path, "f1")
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not the output of an earlier"):
        _prepare_output_folder(out, subs, tmp_path / "course", "f1")
    (out / "thesis.tex").unlink()
    (out / ".work").mkdir()  # an interrupted run's scratch space only: removed
    assert _prepare_output_folder(out, subs, tmp_path / "course", "f1") == {} and not out.exists()
    for edited in ("student,total\nann,29 (regraded by hand)\n", "student,total\nann,30\n"):  # two earlier runs
        out.mkdir()
        (out / "grades.csv").write_text(edited)
        assert _prepare_output_folder(out, subs, tmp_path / "course", "f1") == {} and not out.exists()
    kept = sorted(tmp_path.glob("out.previous-*"))
    assert len(kept) == 2, "each earlier run's grades are moved aside, never deleted"
    assert {(k / "grades.csv").read_text() for k in kept} == {
        "student,total\nann,29 (regraded by hand)\n",
        "student,total\nann,30\n",
    }
    # an interrupted run of the same grader is resumed: its rows come back, nothing is moved
    out.mkdir()
    (out / RUN_FILE).write_text(_json.dumps({"complete": False, "fingerprint": "f1"}))
    (out / "results").mkdir()
    (out / "results" / "ann.json").write_text(
        _json.dumps(GradeResult("ann", "graded", {"t": 1.0}, 1.0, 1.0, sha256="abc").to_row())
    )
    rows = _prepare_output_folder(out, subs, tmp_path / "course", "f1")
    assert list(rows) == ["ann"] and rows["ann"].sha256 == "abc" and out.exists()
    assert _prepare_output_folder(out, subs, tmp_path / "course", "f2") == {} and not out.exists(), (
        "another grader version: moved aside"
    )


def test_resolving_a_package_rule_is_silent_and_finds_every_submodule(tmp_path, monkeypatch, capfd):
    """A rule naming a whole package (a6 forbids ``transformers``) imports its submodules: what they print,
    log or warn at import (transformers prints 285 lines) is not the course's output; their code is still found."""
    import logging
    import sys

    from cvkit.course.assignments.model import Rule
    from cvkit.course.assignments.rules import resolve_rules

    pkg = tmp_path / "noisypkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "clip.py").write_text(
        "import logging, sys, warnings\n"
        "print('[ERROR] undocumented argument')\n"
        "print('to stderr', file=sys.stderr)\n"
        "logging.getLogger('noisypkg').error('logged at import')\n"
        "warnings.warn('warned at import')\n"
        "def clip_loss(logits):\n    return logits\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(logging.root.manager, "disable", logging.NOTSET)
    try:
        (rule,) = resolve_rules((Rule(("noisypkg",), ("*",), "no noisypkg"),))
    finally:
        for name in [n for n in sys.modules if n.startswith("noisypkg")]:
            del sys.modules[name]
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "nothing printed, logged or warned while resolving"
    assert [label for _, label in rule.codes] == ["noisypkg.models.clip.clip_loss"]
    assert logging.root.manager.disable == logging.NOTSET, "logging is switched back on"
