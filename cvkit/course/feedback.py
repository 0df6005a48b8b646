"""Feedback a student may see: the graded notebook without the hidden tests.

nbgrader's autograded notebook (and the feedback HTML made from it) shows the hidden
tests: they are restored into the test cells before execution (nbgrader issues 917 and
1363), and a failing check's traceback prints the lines around it. :func:`scrub_hidden_tests`
puts each test cell's released (visible-only) source back and rewrites error tracebacks
so that frames in a test cell show no source, while frames in the student's own cells and
in libraries keep theirs. The failing check's message (``GradingError: conv2d output:
expected shape ...``) stays: it is written for the student.
"""

from __future__ import annotations

import copy
import re

from cvkit.course.assignments import cell_source, is_test_cell, nbgrader_meta

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"^\s*(?:Cell\s+)?In\s*\[(\d+)\]")


def strip_ansi(text: str) -> str:
    """Text without terminal colour codes."""
    return _ANSI.sub("", text)


def _scrub_traceback(traceback: list[str], hidden_counts: set[int], ename: str, evalue: str) -> list[str]:
    """Drop the source of frames that belong to test cells (identified by their execution count)."""
    out = []
    for entry in traceback:
        plain = strip_ansi(entry)
        m = _CELL_FRAME.match(plain)
        if m and int(m.group(1)) in hidden_counts:
            first = plain.splitlines()[0] if plain.splitlines() else plain
            out.append(f"{first.strip()}  (in a test cell; its source is not shown)")
        else:
            out.append(entry)
    if not out or strip_ansi(out[-1]).strip() != f"{ename}: {evalue}".strip():
        last = strip_ansi(out[-1]) if out else ""
        if not last.startswith(ename):
            out.append(f"{ename}: {evalue}")
    return out


def scrub_hidden_tests(autograded: dict, release: dict) -> dict:
    """A copy of an autograded notebook that is safe to show the student.

    Args:
        autograded: the executed notebook nbgrader wrote (hidden tests included).
        release: the released notebook (test cells without hidden tests).

    Returns:
        The notebook with every test cell's source replaced by the released one, and tracebacks
        through test cells reduced to their frame header and the error message.
    """
    nb = copy.deepcopy(autograded)
    released = {nbgrader_meta(c).get("grade_id"): cell_source(c) for c in release.get("cells", []) if nbgrader_meta(c).get("grade_id")}
    test_counts: set[int] = set()
    for cell in nb.get("cells", []):
        if is_test_cell(cell) and isinstance(cell.get("execution_count"), int):
            test_counts.add(cell["execution_count"])
    for cell in nb.get("cells", []):
        gid = nbgrader_meta(cell).get("grade_id")
        if is_test_cell(cell):
            cell["source"] = released.get(gid, "# (test cell)")
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                out["traceback"] = _scrub_traceback(list(out.get("traceback", [])), test_counts, str(out.get("ename", "")), str(out.get("evalue", "")))
    return nb
