"""The authoring format of a test cell, and its split into the sandbox's half and the grader's half.

A test cell (CONTRIBUTING.md, "Assignments") defines ``inputs`` (optional), ``answers`` and
``checks`` and ends with ``run_test(inputs, answers, checks)``::

    import torch
    import torch.nn.functional as F
    from cvkit.grading import check_tensor, run_test

    def inputs():
        g = torch.Generator().manual_seed(2)
        return {"x": torch.randn(2, 3, 6, 5, generator=g), "w": torch.randn(4, 3, 3, 3, generator=g)}

    def answers(student, x, w):
        return {"y": student.conv2d_loops(x, w, padding=1)}

    def checks(got, x, w):
        check_tensor(got["y"], F.conv2d(x, w, padding=1), "conv2d_loops(x, w, padding=1)")

    run_test(inputs, answers, checks)

When grading, :func:`split_test_cell` cuts it in two:

* the **sandbox half** (the cell without ``checks`` and without the final call) runs next to the
  student's code: its ``inputs()`` builds the data and ``answers(student, **data)`` calls the student's
  code; the result goes back as plain data;
* the **grader half** (the cell without the final call) runs in the grader's process: ``inputs()``
  builds the same data again and ``checks(got, **data)`` compares. Expected values live only in
  ``checks``, so they never exist where the student's code runs.

A hidden test cell is one whose code sits between nbgrader's hidden-test markers (BEGIN/END HIDDEN TESTS)
(only a comment outside): the student sees its name, its points and the grader's message, nothing else.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from cvkit.course.assignments.model import (
    Assignment,
    AssignmentError,
    Rule,
    cell_source,
    is_test_cell,
    nbgrader_meta,
    read_json,
)

_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END) HIDDEN TESTS\s*$")
_HIDDEN_REGION = re.compile(
    r"^\s*#+\s*BEGIN HIDDEN TESTS\s*$(.*?)^\s*#+\s*END HIDDEN TESTS\s*$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class TestCell:
    """One test cell of an assignment, ready for grading.

    Attributes:
        grade_id: the cell's ``grade_id`` (a column of the grades table).
        points: what passing it is worth.
        hidden: its code is a hidden test (the student sees only name, points and message).
        released: the cell's source as released (for a hidden test: the comment only).
        sandbox_source: the half that runs next to the student's code (no ``checks``, no final call).
        grader_source: the half that runs in the grader (everything but the final call).
        rules: indices into the assignment's ``rules`` that bind this test.
    """

    grade_id: str
    points: float
    hidden: bool
    released: str
    sandbox_source: str
    grader_source: str
    rules: tuple[int, ...] = ()

    __test__ = False  # not a pytest test class


class TestCellError(AssignmentError):
    """A test cell does not follow the authoring format; the message says what to change."""

    __test__ = False  # not a pytest test class


def without_markers(source: str) -> str:
    """A test cell's source with its hidden-test marker lines blanked (line numbers kept)."""
    return "\n".join("" if _MARKER.match(line) else line for line in source.split("\n"))


def is_hidden(source: str) -> bool:
    """True when the cell's code is a hidden test: everything but comments sits in a hidden region."""
    if "BEGIN HIDDEN TESTS" not in source:
        return False
    outside = _HIDDEN_REGION.sub("", source)
    return all(not line.strip() or line.strip().startswith("#") for line in outside.splitlines())


def split_test_cell(source: str, where: str = "test cell") -> tuple[str, str]:
    """Split a test cell (hidden-test markers allowed) into ``(sandbox_source, grader_source)``.

    Both keep the cell's line numbers (removed lines become blank), so tracebacks point at the right line.

    Raises:
        TestCellError: the cell does not parse, lacks ``answers`` or ``checks``, does not end with
            ``run_test(inputs, answers, checks)`` (or ``run_test(None, answers, checks)``), or uses
            ``checks`` anywhere else (the sandbox half would miss it).
    """
    text = without_markers(source)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise TestCellError(f"{where}: does not parse ({exc.msg}, line {exc.lineno})") from exc
    body = tree.body
    defs = {node.name: node for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for needed in ("answers", "checks"):
        if needed not in defs:
            raise TestCellError(f"{where}: needs a function {needed}(...) (see CONTRIBUTING.md, Assignments)")
    last = body[-1] if body else None
    call = last.value if isinstance(last, ast.Expr) else None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "run_test"):
        raise TestCellError(f"{where}: must end with run_test(inputs, answers, checks)")
    args = [
        a.id if isinstance(a, ast.Name) else (None if isinstance(a, ast.Constant) and a.value is None else "?")
        for a in call.args
    ]
    if call.keywords or args not in (["inputs", "answers", "checks"], [None, "answers", "checks"]):
        raise TestCellError(
            f"{where}: end with run_test(inputs, answers, checks) (or run_test(None, answers, checks) without inputs)"
        )
    if args[0] == "inputs" and "inputs" not in defs:
        raise TestCellError(f"{where}: run_test names inputs, but the cell defines no inputs()")
    checks = defs["checks"]
    for node in body:
        if node is checks or node is last:
            continue
        if any(isinstance(n, ast.Name) and n.id == "checks" for n in ast.walk(node)):
            raise TestCellError(
                f"{where}: only the final run_test may use checks (line {node.lineno}): the sandbox never sees it"
            )
    lines = text.split("\n")

    def blank(node: ast.stmt, keep: list[str]) -> None:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        for i in range(start - 1, node.end_lineno or node.lineno):
            keep[i] = ""

    sandbox, grader = list(lines), list(lines)
    blank(checks, sandbox)
    blank(last, sandbox)
    blank(last, grader)
    return "\n".join(sandbox).rstrip() + "\n", "\n".join(grader).rstrip() + "\n"


def test_cells(assignment: Assignment, release: dict | None = None) -> list[TestCell]:
    """Every test cell of ``assignment``'s source notebook, split for grading, in notebook order.

    Args:
        assignment: the assignment (its rules say which tests they bind).
        release: the released notebook (default: the committed ``assignments/<a>/<a>.ipynb``); it gives
            each test cell's released source.

    Raises:
        TestCellError: a test cell breaks the format (the message names the cell).
    """
    source = read_json(assignment.source_notebook)
    if release is None:
        release = read_json(assignment.release_notebook) if assignment.release_notebook.is_file() else {"cells": []}
    released = {nbgrader_meta(c).get("grade_id"): cell_source(c) for c in release.get("cells", [])}
    cells = []
    for cell in source.get("cells", []):
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        gid = str(meta["grade_id"])
        text = cell_source(cell)
        where = f"{assignment.name} test cell {gid!r}"
        if "BEGIN HIDDEN TESTS" in text and not is_hidden(text):
            raise TestCellError(
                f"{where}: a hidden test cell holds only hidden code (and comments); put visible checks in a cell of their own"
            )
        sandbox, grader = split_test_cell(text, where)
        rules = tuple(i for i, r in enumerate(assignment.rules) if r.applies_to(gid))
        cells.append(
            TestCell(gid, float(meta.get("points", 0)), is_hidden(text), released.get(gid, ""), sandbox, grader, rules)
        )
    return cells


test_cells.__test__ = False  # a name pytest would otherwise collect where it is imported


def rules_text(rules: tuple[Rule, ...], indices: tuple[int, ...]) -> list[str]:
    """The student-facing text of the rules ``indices`` (for messages)."""
    return [rules[i].text or "forbidden: " + ", ".join(rules[i].calls) for i in indices]
