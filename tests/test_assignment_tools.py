"""The pieces of the assignment pipeline that need no kernel: repair, collection, feedback scrubbing, leak checks, verdicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cvkit.course.assignments import AssignmentError, cell_source, load_assignment, nbgrader_meta, read_json
from cvkit.course.autograde import AutogradeReport, GradeResult, _status
from cvkit.course.feedback import scrub_hidden_tests, strip_ansi
from cvkit.course.release import release_leaks
from cvkit.course.repair import UngradableError, parse_notebook, repair_submission, review_flags
from cvkit.course.submissions import collect_submissions, safe_student_id
from cvkit.course.validate import REFERENCE, UNTOUCHED, judge, reference_submission, solution_text
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
    assert ids(fixed) == ids(RELEASE)
    for cell in fixed["cells"]:
        if gid(cell):
            assert nbgrader_meta(cell) == nbgrader_meta(RELEASE["cells"][index(RELEASE, gid(cell))])
    assert "def conv2d_loops" in fixed["cells"][index(fixed, "conv2d_loops")]["source"], "solution recognised by what it defines"
    assert any("metadata restored" in n for n in notes)


def test_deleted_test_cell_goes_back_after_the_students_work_for_that_part(submission):
    del submission["cells"][index(submission, "test_conv2d_loops")]
    helper = {"cell_type": "code", "metadata": {}, "source": "def my_helper():\n    return 1", "outputs": [], "execution_count": None}
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
    submission["cells"][0]["metadata"]["nbgrader"] = {"grade": True, "grade_id": "made_up", "points": 100, "schema_version": 3}
    submission["cells"].append({"cell_type": "widget", "source": "?"})
    submission["cells"].append("not a cell")
    code = submission["cells"][index(submission, "conv2d_loops")]
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x" * 10_000_000}]
    code["execution_count"] = 7
    fixed, notes = repair_submission(submission, RELEASE)
    assert "made_up" not in ids(fixed)
    assert any("made_up" in n for n in notes) and any("2 malformed" in n for n in notes)
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in fixed["cells"] if c["cell_type"] == "code")
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
    cells = [{"cell_type": "code", "metadata": {"nbgrader": {"grade_id": g}}, "source": "", "outputs": [], "execution_count": None} for g in grade_ids]
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


def test_two_entries_for_one_student_are_refused(tmp_path):
    _nb(tmp_path / "ann" / f"{A}.ipynb")
    _nb(tmp_path / f"ann_{A}.ipynb")
    with pytest.raises(ValueError, match="two submissions for student 'ann'"):
        collect_submissions(tmp_path, A)
    with pytest.raises(FileNotFoundError):
        collect_submissions(tmp_path / "missing", A)


def test_student_ids_are_made_safe():
    assert safe_student_id("../../etc passwd") == "etc_passwd"
    assert safe_student_id("  ") == "student"


# ------------------------------------------------------------------------------------------ feedback
def test_feedback_hides_test_sources_and_their_traceback_frames():
    test_src = "check(x)\n### BEGIN HIDDEN TESTS\nsecret_check(y)\n### END HIDDEN TESTS"
    graded = {
        "cells": [
            {"cell_type": "code", "execution_count": 3, "metadata": {"nbgrader": {"grade": False, "solution": True, "grade_id": "f"}}, "source": "def f(): ...", "outputs": []},
            {"cell_type": "code", "execution_count": 4, "metadata": {"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 1}},
             "source": "check(x)\nsecret_check(y)",
             "outputs": [{"output_type": "error", "ename": "GradingError", "evalue": "f(y): expected 1, got 2",
                          "traceback": ["\x1b[31m---\x1b[39m", "GradingError  Traceback",
                                        "\x1b[36mCell\x1b[39m In[4], line 2\n      1 check(x)\n----> 2 secret_check(y)\n",
                                        "Cell In[3], line 1, in f()\n----> 1 def f(): ...\n",
                                        "\x1b[31mGradingError\x1b[39m: f(y): expected 1, got 2"]}]},
        ]
    }
    release = {"cells": [dict(graded["cells"][0], source="def f():\n    raise NotImplementedError()"),
                         {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f", "points": 1}}, "source": "check(x)\n"}]}
    safe = scrub_hidden_tests(graded, release)
    text = json.dumps(safe)
    assert "secret_check" not in text
    assert safe["cells"][1]["source"] == "check(x)\n"
    tb = [strip_ansi(t) for t in safe["cells"][1]["outputs"][0]["traceback"]]
    assert any("In[4], line 2" in t and "not shown" in t for t in tb)
    assert any("def f(): ..." in t for t in tb), "frames in the student's own cells keep their source"
    assert tb[-1].startswith("GradingError: f(y): expected 1, got 2"), "the check's message stays"
    assert "secret_check" in json.dumps(graded), "the instructor's copy is untouched"
    assert test_src  # the source layout this mimics


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
    short = GradeResult(REFERENCE, "graded", {"t1": 1.0, "t2": 0.0}, 1.0, 3.0, failures={"t2": "GradingError: off by one"})
    leaky_test = GradeResult(UNTOUCHED, "graded", {"t1": 1.0, "t2": 0.0}, 1.0, 3.0)
    problems = judge(_report(short, leaky_test))
    assert any("t2 (0/2: GradingError: off by one)" in p for p in problems)
    assert any("pass on the untouched release" in p and "t1" in p for p in problems)
    crashed = GradeResult(REFERENCE, "crashed", {"t1": 1.0, "t2": 2.0}, 3.0, 3.0, message="kernel died")
    assert any("reference solution was crashed" in p for p in judge(_report(crashed, raw)))


def test_status_takes_the_most_severe_event():
    assert _status([], []) == ("graded", [])
    assert _status([], ["a repair"])[0] == "repaired"
    events = [{"kind": "exit", "cell": 3, "grade_id": "f", "message": "called sys.exit()"},
              {"kind": "timeout", "cell": 5, "grade_id": "", "message": "interrupted"},
              {"kind": "output", "cell": 6, "grade_id": "g", "message": "truncated"}]
    status, notes = _status(events, ["a repair"])
    assert status == "timeout"
    assert notes == ["cell 'f': called sys.exit()", "cell 5: interrupted", "cell 'g': truncated"]
    assert _status(events + [{"kind": "memory", "cell": 7, "grade_id": "h", "message": "m"}], [])[0] == "crashed"


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
    def bad():
        raise ValueError("no")

    assert isinstance(check_raises(bad, ValueError), ValueError)
    with pytest.raises(GradingError, match="expected ValueError to be raised, but it returned normally: raise it"):
        check_raises(lambda: 3, ValueError, "f(3)", hint="raise it")
    with pytest.raises(GradingError, match="expected ValueError, got KeyError"):
        check_raises(lambda: {}["x"], ValueError, "f")
    with pytest.raises(GradingError, match="inner"):
        check_raises(lambda: (_ for _ in ()).throw(GradingError("inner")), AssertionError)
    with pytest.raises(TypeError, match="callable"):
        check_raises(3, ValueError)


def test_review_flags_name_cells_that_tamper_with_the_checks(submission):
    assert review_flags(submission) == []
    i = index(submission, "conv2d_loops")
    submission["cells"][i]["source"] += "\nimport cvkit.grading\ncvkit.grading.check_tensor = lambda *a, **k: None"
    submission["cells"].insert(i, {"cell_type": "code", "metadata": {}, "source": "torch.allclose = lambda *a, **k: True", "outputs": [], "execution_count": None})
    flags = review_flags(submission)
    assert len(flags) == 2 and "cell 'conv2d_loops'" in flags[1] and "torch.allclose =" in flags[0]
    harmless = {"cell_type": "code", "metadata": {}, "source": "y = torch.zeros(3)\nif torch.cuda.is_available() == False:\n    pass", "outputs": [], "execution_count": None}
    assert review_flags({"cells": [harmless]}) == []


def test_autograde_never_replaces_a_folder_it_did_not_write(tmp_path):
    from cvkit.course.autograde import _replace_output_folder

    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "ann").mkdir()
    for bad in (subs, tmp_path, subs.parent):
        with pytest.raises(ValueError, match="would replace"):
            _replace_output_folder(bad, subs, tmp_path)
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not the output of an earlier"):
        _replace_output_folder(out, subs, tmp_path / "course")
    (out / "grades.csv").write_text("student\n")
    assert _replace_output_folder(out, subs, tmp_path / "course") == out and not out.exists()
