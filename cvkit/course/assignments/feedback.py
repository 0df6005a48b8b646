"""Feedback from the instructor's side: built from the notebook alone, capped by type, scanned for leaks.

The student's feedback page is built in the grader's process from three things only: the submitted
notebook (its cells, test cells as released), the outputs the sandbox reported per cell (capped again
here, by type: text, images, nothing else), and the verdicts the grader decided. A **hidden test**
shows its name, its points and the grader's message, nothing of its code or of what it printed.

Before the page is returned, :func:`find_leaks` looks in its text for any line of the solutions or
the hidden tests (:func:`cvkit.course.assignments.release.protected_lines`) that the student did not
write themselves; the caller withholds a page with such a line and flags the submission for review.

The instructor's copy (:func:`instructor_notebook`) has the hidden tests' code, every output and every message.
"""

from __future__ import annotations

import base64
import copy
import functools
import html as html_lib
import re

from cvkit.course.assignments.execute import CellRecord, Execution
from cvkit.course.assignments.model import cell_source, nbgrader_meta

SHOWN_STREAM_CHARS = 20_000  # characters of printed text shown per cell
SHOWN_TEXT_CHARS = 5_000  # characters of a displayed text/plain
IMAGES_PER_CELL = 4
IMAGE_BYTES = 1_500_000  # decoded bytes of one PNG/JPEG
IMAGES_TOTAL = 8_000_000  # decoded bytes of all images in one page
TRACEBACK_FRAMES = 12
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
_TAGS = re.compile(r"<[^>]+>")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def cap_outputs(outputs: list, budget: dict) -> list[dict]:
    """Outputs safe to show: text streams, ``text/plain``, valid PNG/JPEG images and errors, each capped.

    ``budget`` carries the page-wide image budget (``{"images": bytes left}``) between calls.
    """
    kept: list[dict] = []
    text_used, images = 0, 0
    for out in outputs if isinstance(outputs, list) else []:
        if not isinstance(out, dict):
            continue
        kind = out.get("output_type")
        if kind == "stream":
            text = _ANSI.sub("", str(out.get("text", "")))
            room = SHOWN_STREAM_CHARS - text_used
            if room <= 0:
                continue
            if len(text) > room:
                text = text[:room] + "\n... (more output, not shown)\n"
            text_used += len(text)
            kept.append({"output_type": "stream", "name": "stdout", "text": text})
        elif kind in ("display_data", "execute_result"):
            data = out.get("data") if isinstance(out.get("data"), dict) else {}
            shown: dict = {}
            for mime, magic in (("image/png", _PNG), ("image/jpeg", _JPEG)):
                value = data.get(mime)
                if not isinstance(value, str) or images >= IMAGES_PER_CELL:
                    continue
                try:
                    raw = base64.b64decode(value, validate=False)
                except (ValueError, TypeError):
                    continue
                if raw.startswith(magic) and len(raw) <= IMAGE_BYTES and len(raw) <= budget["images"]:
                    budget["images"] -= len(raw)
                    images += 1
                    shown[mime] = base64.b64encode(raw).decode()
                    break
            if not shown and isinstance(data.get("text/plain"), str):
                shown["text/plain"] = _ANSI.sub("", data["text/plain"])[:SHOWN_TEXT_CHARS]
            if shown:
                kept.append({"output_type": "display_data", "data": shown, "metadata": {}})
        elif kind == "error":
            frames = (
                [_ANSI.sub("", str(f))[:2000] for f in out.get("traceback", [])][-TRACEBACK_FRAMES:]
                if isinstance(out.get("traceback"), list)
                else []
            )
            kept.append(
                {
                    "output_type": "error",
                    "ename": str(out.get("ename", "Error"))[:200],
                    "evalue": str(out.get("evalue", ""))[:2000],
                    "traceback": frames,
                }
            )
    return kept


def _verdict_output(verdict, hidden: bool) -> dict:
    label = "hidden test" if hidden else "test"
    if verdict.passed:
        text = f"{label} {verdict.grade_id}: passed, {verdict.earned:g}/{verdict.points:g} points\n"
    else:
        text = f"{label} {verdict.grade_id}: failed, {verdict.earned:g}/{verdict.points:g} points\n{verdict.message}\n"
    return {"output_type": "stream", "name": "stdout", "text": text}


def _summary(verdicts: dict, spec, title: str, execution: Execution, manual: dict | None = None) -> dict:
    total = sum(v.earned for v in verdicts.values())
    answers = getattr(spec, "answers", ())
    head = (
        f"**{total:g} / {spec.max_total:g} points**"
        if not answers
        else (
            f"**{total:g} / {spec.max_total:g} autograded points**, plus {spec.manual_max:g} points of free-response answers graded by your instructor"
        )
    )
    lines = [f"# {title}", "", head, "", "| test | points | result |", "|---|---:|---|"]
    for test in spec.tests:
        v = verdicts[test.grade_id]
        result = (
            "passed"
            if v.passed
            else html_lib.escape(v.message.splitlines()[0] if v.message else "failed")[:300].replace("|", "\\|")
        )
        lines.append(f"| {test.grade_id}{' (hidden)' if test.hidden else ''} | {v.earned:g}/{v.points:g} | {result} |")
    for answer in answers:
        value = (manual or {}).get(answer.grade_id)
        state = "awaiting grading by your instructor" if value is None else "unanswered" if value == 0 else "graded"
        lines.append(
            f"| {answer.grade_id} (free response) | {'-' if value is None else f'{value:g}'}/{answer.points:g} | {state} |"
        )
    if execution.stopped:
        lines += [
            "",
            f"Your notebook was stopped: {html_lib.escape(execution.message)}. The tests after that point were not run.",
        ]
    return {"cell_type": "markdown", "metadata": {}, "source": "\n".join(lines)}


def feedback_notebook(
    notebook: dict, execution: Execution, verdicts: dict, spec, title: str, manual: dict | None = None
) -> dict:
    """The notebook the student's feedback page shows (see the module docstring); ``manual``: the free-response answers' state."""
    tests = {t.grade_id: t for t in spec.tests}
    budget = {"images": IMAGES_TOTAL}
    cells = [_summary(verdicts, spec, title, execution, manual)]
    for index, cell in enumerate(notebook.get("cells", [])):
        gid = nbgrader_meta(cell).get("grade_id", "")
        if cell.get("cell_type") != "code":
            cells.append(
                {"cell_type": "markdown", "metadata": {}, "source": cell_source(cell)}
                if cell.get("cell_type") == "markdown"
                else {"cell_type": "raw", "metadata": {}, "source": cell_source(cell)}
            )
            continue
        record: CellRecord | None = execution.records.get(index)
        out = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": cell_source(cell)}
        if gid in tests:
            test = tests[gid]
            out["source"] = test.released
            if record is not None and not test.hidden:
                out["outputs"] = [o for o in cap_outputs(record.outputs, budget) if o["output_type"] != "error"]
            out["outputs"].append(_verdict_output(verdicts[gid], test.hidden))
        elif record is not None:
            out["outputs"] = cap_outputs(record.outputs, budget)
        if record is None or not record.ran:
            if execution.stopped_at == index:
                out["outputs"].append(
                    {"output_type": "stream", "name": "stdout", "text": f"stopped here: {execution.message}\n"}
                )
            elif cell_source(cell).strip() and gid not in tests:
                out["outputs"].append({"output_type": "stream", "name": "stdout", "text": "(not run)\n"})
        cells.append(out)
    for i, cell in enumerate(cells):
        cell["id"] = f"feedback-{i}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def instructor_notebook(notebook: dict, execution: Execution, verdicts: dict, spec) -> dict:
    """The instructor's copy: test cells with their full source (hidden tests included), every output and verdict."""
    tests = {t.grade_id: t for t in spec.tests}
    source_cells = {nbgrader_meta(c).get("grade_id"): cell_source(c) for c in spec.source.get("cells", [])}
    budget = {"images": IMAGES_TOTAL * 4}
    nb = copy.deepcopy(notebook)
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        gid = nbgrader_meta(cell).get("grade_id", "")
        record = execution.records.get(index)
        cell["outputs"] = cap_outputs(record.outputs, budget) if record is not None else []
        if gid in tests:
            cell["source"] = source_cells.get(gid, cell_source(cell))
            cell["outputs"].append(_verdict_output(verdicts[gid], False))
            if record is not None and record.violations:
                cell["outputs"].append(
                    {"output_type": "stream", "name": "stdout", "text": f"forbidden calls: {record.violations}\n"}
                )
        if record is None or not record.ran:
            cell["outputs"].append({"output_type": "stream", "name": "stdout", "text": "(not run)\n"})
    nb.setdefault("metadata", {})["cvkit_autograde"] = {
        "stopped": execution.stopped,
        "message": execution.message,
        "audits": execution.audits,
        "isolated": execution.isolated,
    }
    return nb


@functools.lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="classic")
    exporter.sanitize_html = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    return exporter


def render_html(notebook: dict) -> str:
    """The feedback page: nbconvert's HTML with the student's markdown sanitized (no scripts)."""
    import nbformat

    body, _ = _exporter().from_notebook_node(nbformat.from_dict(notebook))
    return body


def load_templates() -> None:
    """Load nbconvert's templates once (a batch calls this before starting its worker processes)."""
    render_html(
        {
            "cells": [{"cell_type": "markdown", "id": "warm-up", "metadata": {}, "source": "warm-up"}],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def page_text(page: str) -> str:
    """The visible text of an HTML page (tags removed, entities decoded)."""
    return html_lib.unescape(_TAGS.sub("", page))


def find_leaks(page: str, protected: tuple[str, ...], submitted: dict) -> list[str]:
    """Lines of the solutions or hidden tests that appear in ``page`` and that the student did not write.

    Args:
        page: the feedback page (HTML).
        protected: the lines that must never reach a student.
        submitted: the notebook as the student submitted it (lines they wrote may be shown back to them).

    Returns:
        The leaked lines (empty when the page is safe to return).
    """
    own = {
        line.strip() for c in submitted.get("cells", []) if isinstance(c, dict) for line in cell_source(c).splitlines()
    }
    shown = {line.strip() for line in page_text(page).splitlines()}
    return [line for line in protected if distinctive(line) and line in shown and line not in own]


_GENERIC = re.compile(
    r"^(?:(?:return|raise|yield|pass|break|continue|else|try|finally|except\b.*|elif\b.*|with\b.*|for\b.*|if\b.*)[:\s\w().,]*|[\])}]+[,:)]*)$"
)


def distinctive(line: str) -> bool:
    """A line worth looking for: at least 12 characters and more than a keyword with a name or two.

    ``else:``, ``return out`` or ``try:`` also appear in any library traceback or lecture; a line of a
    solution or hidden test that is long and specific does not appear by chance.
    """
    line = line.strip()
    return len(line) >= 12 and not (len(line) < 24 and _GENERIC.match(line))
