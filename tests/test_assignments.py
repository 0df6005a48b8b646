"""CI checks for every assignment in solutions/, plus the adversarial submissions of the ones that have them.

For each ``solutions/<a>/`` (parametrized, so a new assignment is checked as soon as it lands):

* the source follows the authoring format (CONTRIBUTING.md, "Assignments");
* the committed ``assignments/<a>/`` equals a fresh ``cvkit release`` (no drift), holds only the
  notebook and ``data/``, and contains no solution code, hidden test or marker;
* the reference solution, submitted as a student would, autogrades to full marks; the untouched
  release autogrades to 0 in every test cell, with no crash; the feedback of both shows no hidden test;
* it asks free-response questions (manually graded answer cells, each with points and a rubric for the
  grader between the solution markers): the reference's model answers await a person, the untouched
  release's are unanswered (0), never a silent 0 for an answer that was written.

For an assignment with ``tests/fixtures/<a>/expected.csv``, the submissions in
``tests/fixtures/<a>/submissions/`` are autograded in one batch (``-j 2``, sandboxed when bubblewrap
works here) and each must get its expected status and total; for a1 the batch also runs with ``-j 1``
and, separately, without the sandbox for the submissions whose grade does not depend on isolation.

One generation and one autograde batch per assignment serve all the assertions (module-scoped caches).
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from cvkit.course.assignments import find_assignments, is_answer_cell, is_test_cell, nbgrader_meta, read_json
from cvkit.course.assignments.autograde import autograde, prepare
from cvkit.course.assignments.feedback import distinctive
from cvkit.course.assignments.release import MARKERS, protected_lines, release_drift, release_leaks
from cvkit.course.assignments.testcells import is_hidden, split_test_cell
from cvkit.course.assignments.testcells import test_cells as split_test_cells
from cvkit.course.assignments.validate import REFERENCE, UNTOUCHED, write_validation_submissions

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
ASSIGNMENTS = [a.name for a in find_assignments(ROOT)]
WITH_FIXTURES = [a for a in ASSIGNMENTS if (FIXTURES / a / "expected.csv").is_file()]

pytestmark = pytest.mark.assignment

_prepared: dict[str, Path] = {}
_batches: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("assignments")


def _assignment(name):
    return next(a for a in find_assignments(ROOT, [name]))


def prepared(name: str, workdir: Path) -> Path:
    """The assignment generated afresh (once per test module)."""
    if name not in _prepared:
        _prepared[name] = prepare(_assignment(name), workdir / name / "course")
    return _prepared[name]


def fixture_submissions(name: str, dest: Path, only: frozenset[str] | None = None) -> Path:
    """A copy of ``tests/fixtures/<name>/submissions`` at ``dest``, with every ``*.ipynb.corrupt`` renamed to ``*.ipynb``.

    A deliberately broken notebook is committed as ``.ipynb.corrupt`` so that the repository's
    notebooks all stay valid JSON; the grader sees it under its real name. ``only`` keeps those
    folder or file entries alone (``quinn`` for ``quinn_a1_convolution.ipynb``).
    """
    top = FIXTURES / name / "submissions"
    shutil.copytree(
        top,
        dest,
        ignore=lambda folder, names: [
            n for n in names if only is not None and Path(folder) == top and _entry_student(n) not in only
        ],
    )
    for corrupt in dest.rglob("*.ipynb.corrupt"):
        corrupt.rename(corrupt.with_name(corrupt.name.removesuffix(".corrupt")))
    return dest


def _entry_student(entry: str) -> str:
    """The expected.csv student of a submissions folder entry (a folder, or a flat LMS-style file)."""
    return entry.split(".ipynb")[0].rsplit("_a", 1)[0] if entry.endswith((".ipynb", ".ipynb.corrupt")) else entry


# the a1 fixtures graded again one at a time: the attacks on other students and the grader, their victims,
# and the exits whose grade once depended on a race between two submissions
ONE_AT_A_TIME = frozenset(
    {
        "uma_gradebook",
        "victor_solution_thief",
        "walt_vandal",
        "xena_daemon",
        "yuri_killer",
        "zack_network",
        "olivia_untouched",
        "alice_warning",
        "cleo_quit",
        "dave_sys_exit",
        "erin_kernel_dies",
    }
)
# ... and without a sandbox: the cheats that the comparison in the grader's process defeats on its own
WITHOUT_SANDBOX = frozenset(
    {
        "pat_transformer_hook",
        "quentin_displayhook",
        "rita_frame_reader",
        "tom_grading_patch",
        "sam_oracle_rebind",
        "abel_leaker",
        "bea_rule_evasion",
        "cleo_quit",
        "olivia_untouched",
        "alice_warning",
    }
)


def batch(
    name: str, kind: str, workdir: Path, jobs: int = 2, sandbox: str = "auto", only: frozenset[str] | None = None
):
    """One autograde run per assignment, kind ("validation" or "fixtures"), jobs, sandbox and subset, shared by the tests."""
    key = (name, kind, jobs, sandbox, only)
    if key not in _batches:
        a = _assignment(name)
        course = prepared(name, workdir)
        if kind == "validation":
            subs = workdir / name / "validation-submissions"
            if not subs.exists():
                write_validation_submissions(a, subs, course / "published" / a.notebook_file)
        else:
            subs = fixture_submissions(name, workdir / name / f"fixture-submissions-{jobs}-{sandbox}", only)
        _batches[key] = autograde(
            a,
            subs,
            workdir / name / f"{kind}-{jobs}-{sandbox}",
            jobs=jobs,
            progress=False,
            prepared=course,
            sandbox=sandbox,
        )
    return _batches[key]


def test_there_are_assignments():
    assert "a1_convolution" in ASSIGNMENTS, f"solutions/a1_convolution is missing; found {ASSIGNMENTS}"


# --------------------------------------------------------------------------------------- format
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_follows_the_authoring_format(name):
    a = _assignment(name)
    nb = read_json(a.source_notebook)
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3"
    problems = []
    ids = [nbgrader_meta(c)["grade_id"] for c in nb["cells"] if nbgrader_meta(c)]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        problems.append(f"duplicate grade ids {sorted(dupes)}")
    for i, cell in enumerate(nb["cells"]):
        meta = nbgrader_meta(cell)
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            problems.append(f"cell {i} has outputs (python ci/notebooks.py clean)")
        if not meta:
            for marker in MARKERS:
                if marker in text:
                    problems.append(f"cell {i} has the marker {marker!r} but no nbgrader metadata")
            continue
        where = f"cell {i} ({meta.get('grade_id')})"
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: schema_version must be 3")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(meta.get("grade_id", ""))):
            problems.append(f"{where}: grade_id must be lowercase snake_case")
        if is_test_cell(cell):
            if not meta.get("locked"):
                problems.append(f"{where}: test cells must be locked")
            if not (isinstance(meta.get("points"), (int, float)) and meta["points"] > 0):
                problems.append(f"{where}: test cells need points > 0")
            if "cvkit.grading" not in text:
                problems.append(f"{where}: test cells check with cvkit.grading")
            if text.count("### BEGIN HIDDEN TESTS") != text.count("### END HIDDEN TESTS"):
                problems.append(f"{where}: unbalanced hidden-test markers")
            if "BEGIN HIDDEN TESTS" in text and not is_hidden(text):
                problems.append(f"{where}: a hidden test cell holds only hidden code and comments")
            try:
                sandbox_half, _ = split_test_cell(text, where)
            except ValueError as exc:
                problems.append(str(exc))
            else:
                if "def checks" in sandbox_half:
                    problems.append(f"{where}: checks must not reach the sandbox")
        if is_answer_cell(cell):
            if cell["cell_type"] != "markdown" or meta.get("locked"):
                problems.append(f"{where}: a free-response answer cell is an unlocked Markdown cell")
            if not (isinstance(meta.get("points"), (int, float)) and meta["points"] > 0):
                problems.append(f"{where}: free-response answers need points > 0")
            region = text.split("### BEGIN SOLUTION", 1)[-1].split("### END SOLUTION", 1)[0]
            if (
                text.count("### BEGIN SOLUTION") != 1
                or text.count("### END SOLUTION") != 1
                or "rubric" not in region.lower()
            ):
                problems.append(
                    f"{where}: a free-response answer holds the model answer and a rubric for the grader between one pair of solution markers"
                )
        if meta.get("solution") and cell["cell_type"] == "code":
            begins, ends = text.count("### BEGIN SOLUTION"), text.count("### END SOLUTION")
            if begins < 1 or begins != ends:
                problems.append(
                    f"{where}: a solution cell needs ### BEGIN SOLUTION / ### END SOLUTION pairs (got {begins} and {ends})"
                )
    assert not problems, "\n".join(problems)
    assert a.max_points > 0
    assert [t.grade_id for t in split_test_cells(a)] == [
        nbgrader_meta(c)["grade_id"] for c in nb["cells"] if is_test_cell(c)
    ]


# --------------------------------------------------------------------------------------- release
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_release_equals_a_fresh_release(name, workdir):
    a = _assignment(name)
    drift = release_drift(prepared(name, workdir) / "published", a.release_dir)
    assert not drift, f"assignments/{name} is stale; run `python -m cvkit release {name}` and commit:\n" + "\n".join(
        drift
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_holds_only_the_notebook_and_data(name):
    a = _assignment(name)
    files = sorted(str(p.relative_to(a.release_dir)) for p in a.release_dir.rglob("*") if p.is_file())
    extra = [f for f in files if f != a.notebook_file and not f.startswith("data/")]
    assert a.notebook_file in files
    assert not extra, f"files released besides the notebook and data/: {extra}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_contains_no_solution_hidden_test_or_marker(name):
    a = _assignment(name)
    leaks = release_leaks(a, a.release_dir)
    assert not leaks, "\n".join(leaks)
    # the check itself must see solutions: the source notebook, scanned as if released, leaks
    assert protected_lines(read_json(a.source_notebook)), "no solution or hidden-test lines found in the source"


# --------------------------------------------------------------------------------------- grading
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_reference_solution_gets_full_marks(name, workdir):
    report = batch(name, "validation", workdir)
    ref = next(r for r in report.results if r.student == REFERENCE)
    assert ref.status == "graded", ref.message
    lost = {gid: ref.scores.get(gid) for gid, pts in report.test_cells if ref.scores.get(gid) != pts}
    assert not lost, f"the reference solution loses points: {lost}; {ref.failures}"
    assert ref.total == report.max_total > 0
    # the model answers of the free-response questions are answers: they await a person, never a silent 0
    assert report.answers and {a.grade_id for a in report.answers} == set(ref.manual), ref.manual
    assert all(v is None for v in ref.manual.values()) and ref.manual_max == sum(a.points for a in report.answers) > 0


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_untouched_release_gets_zero_without_crashing(name, workdir):
    report = batch(name, "validation", workdir)
    raw = next(r for r in report.results if r.student == UNTOUCHED)
    assert raw.status == "graded", raw.message
    passing = [gid for gid, _ in report.test_cells if raw.scores.get(gid, 0) != 0]
    assert not passing, f"test cells that pass on the untouched release: {passing}"
    assert set(raw.failures) == {gid for gid, _ in report.test_cells}
    assert raw.manual == {a.grade_id: 0.0 for a in report.answers}, (
        "untouched answers must be unanswered (0), not awaiting"
    )
    assert report.isolated or not _bwrap_works(), "bubblewrap works here: the batch must have been sandboxed"


def _feedback_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def _shown_hidden_lines(path: Path, hidden: list[str]) -> list[str]:
    """The hidden-test lines a feedback page shows, line by line (generic lines such as ``try:`` excluded)."""
    shown = {line.strip() for line in _feedback_text(path).splitlines()}
    return [line for line in hidden if distinctive(line) and line in shown]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_feedback_shows_no_hidden_tests(name, workdir):
    report = batch(name, "validation", workdir)
    hidden = protected_lines(read_json(_assignment(name).source_notebook), ("HIDDEN TESTS",))
    for r in report.results:
        assert r.feedback, f"no feedback for {r.student}: {r.message}"
        text = _feedback_text(Path(report.out_dir) / r.feedback)
        assert "HIDDEN TESTS" not in text
        shown = _shown_hidden_lines(Path(report.out_dir) / r.feedback, hidden)
        assert not shown, f"hidden-test lines in {r.student}'s feedback: {shown[:3]}"
    # the instructor's copy keeps them: the feedback is built without them
    graded = (Path(report.out_dir) / "autograded" / REFERENCE / f"{name}.ipynb").read_text()
    if hidden:
        assert any(json.dumps(line)[1:-1] in graded for line in hidden)


# --------------------------------------------------------------------------------------- adversarial
def _bwrap_works() -> bool:
    from cvkit.course.assignments.sandbox import sandbox_status

    return sandbox_status()[0]


def _expected(name):
    with open(FIXTURES / name / "expected.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _check_rows(report, expected: dict) -> None:
    got = {r.student: r for r in report.results}
    assert set(got) == set(expected), f"students graded {sorted(got)} != expected {sorted(expected)}"
    wrong = [
        f"{s}: expected {e['status']} {e['total']}, got {got[s].status} {got[s].total:g} ({got[s].message[:300]})"
        for s, e in expected.items()
        if got[s].status != e["status"] or got[s].total != float(e["total"])
    ]
    assert not wrong, "\n".join(wrong)
    for r in report.results:
        assert r.status == "graded" or r.message, f"{r.student}: a {r.status} row needs an explanation"


@pytest.mark.parametrize("name", WITH_FIXTURES)
def test_adversarial_submissions_get_their_expected_status_and_points(name, workdir):
    """Every fixture (the careless ones and the attacks) gets its row, in a sandboxed -j 2 batch."""
    if any(e.get("needs_sandbox") == "yes" for e in _expected(name).values()) and not _bwrap_works():
        pytest.fail("bubblewrap does not work on this machine: the attack fixtures need it (ci/install.sh installs it)")
    subs = workdir / name / "fixture-submissions-2-auto"
    report = batch(name, "fixtures", workdir)
    assert report.isolated
    _check_rows(report, _expected(name))
    # no submission changed another's files, and nothing a submission started outlived its sandbox
    originals = FIXTURES / name / "submissions"
    for path in sorted(p for p in subs.rglob("*") if p.is_file()):
        source = originals / path.relative_to(subs)
        if not source.exists():
            source = source.with_name(source.name + ".corrupt")
        assert path.read_bytes() == source.read_bytes(), f"{path.relative_to(subs)} was changed during grading"
    import psutil

    leftovers = [
        p.info
        for p in psutil.process_iter(["pid", "cmdline"])
        if "cvkit.course.assignments.runner" in " ".join(p.info["cmdline"] or [])
    ]
    assert not leftovers, f"sandbox processes outlived the batch: {leftovers}"
    withheld = {r.student: r for r in report.results if "feedback withheld" in r.message}
    assert all(not r.feedback for r in withheld.values())
    if name == "a1_convolution":
        assert set(withheld) == {"abel_leaker"}, "the leaker's feedback (and only it) is withheld"


@pytest.mark.parametrize("name", [n for n in WITH_FIXTURES if n == "a1_convolution"])
def test_adversarial_submissions_one_at_a_time(name, workdir):
    """The same rows with -j 1 (no race between submissions decides a grade; an attacker graded before its victims harms none)."""
    report = batch(name, "fixtures", workdir, jobs=1, only=ONE_AT_A_TIME)
    _check_rows(report, {s: e for s, e in _expected(name).items() if s in ONE_AT_A_TIME})


@pytest.mark.parametrize("name", [n for n in WITH_FIXTURES if n == "a1_convolution"])
def test_without_a_sandbox_grades_still_come_from_the_grader(name, workdir):
    """Without bubblewrap (macOS, Windows) grading still works and says it was not isolated; the cheats that
    need no sandbox to fail (the comparison is the grader's) get their rows."""
    assert all(_expected(name)[s]["needs_sandbox"] == "no" for s in WITHOUT_SANDBOX)
    report = batch(name, "fixtures", workdir, sandbox="none", only=WITHOUT_SANDBOX)
    assert not report.isolated and any("NOT isolated" in w for w in report.warnings)
    assert "NOT isolated" in (Path(report.out_dir) / "report.md").read_text()
    _check_rows(report, {s: e for s, e in _expected(name).items() if s in WITHOUT_SANDBOX})


@pytest.mark.parametrize("name", WITH_FIXTURES)
def test_batch_outputs_have_one_row_per_student(name, workdir):
    report = batch(name, "fixtures", workdir)
    out = Path(report.out_dir)
    with open(out / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["student"] for r in rows] == [r.student for r in report.results]
    cols = [gid for gid, _ in report.test_cells]
    for row in rows:
        assert abs(sum(float(row[c]) for c in cols) - float(row["total"])) < 1e-9
        assert float(row["max"]) == report.max_total
    # nbgrader's gradebook, written by one process, has every student's grades
    db = sqlite3.connect(out / "gradebook.db")
    students = {s for (s,) in db.execute("select id from student")}
    assert students == {r.student for r in report.results}
    (n_grades,) = db.execute("select count(*) from grade").fetchone()
    assert n_grades == len(report.results) * (len(cols) + len(report.answers))  # free-response answers are grades too
    totals = dict(
        db.execute(
            "select sa.student_id, sum(g.auto_score) from grade g join submitted_notebook sn on g.notebook_id = sn.id "
            "join submitted_assignment sa on sn.assignment_id = sa.id group by sa.student_id"
        ).fetchall()
    )
    assert totals == {r.student: r.total for r in report.results}
    hidden = protected_lines(read_json(_assignment(name).source_notebook), ("HIDDEN TESTS",))
    for r in report.results:
        if r.feedback:
            assert not _shown_hidden_lines(out / r.feedback, hidden), f"hidden tests in {r.student}'s feedback"
