"""Putting a student's notebook back into a shape nbgrader can grade, and saying what was fixed.

nbgrader trusts the cell metadata of a submission. Students break it without meaning to:
a duplicated graded cell makes ``nbgrader autograde`` abort the whole batch (nbgrader
issue 1083), a notebook opened in an editor that drops metadata has no graded cells left
(scored 0), a deleted test cell is simply not graded. :func:`repair_submission` works from
the release (the notebook the student was given) and the student's notebook:

1. outputs are cleared (a huge output never reaches the grader);
2. a cell whose source is exactly a test or read-only cell of the release is that cell, whatever its
   metadata says (swapped or stale ``grade_id`` values cannot move a test);
3. every other tracked cell (test, read-only, solution) gets the release's nbgrader metadata back by its
   ``grade_id``; ids the release does not know are dropped; a ``grade_id`` that appears more than once
   keeps its metadata on the last copy only (the others still run, as ordinary cells);
4. cells whose metadata was stripped are recognised: test and read-only cells by their
   source, solution cells by the functions/classes they define;
5. test and read-only cells are reset to the release's source (nbgrader then restores the
   hidden tests), and deleted ones are put back before the next cell of the release that is
   still there, i.e. after everything the student wrote for that part.

Solution cells are never re-inserted: a student who deleted one may have written the code
elsewhere, and a stub run after it would overwrite their function.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from cvkit.course.assignments import cell_source, nbgrader_meta

_DEFINES = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


class UngradableError(ValueError):
    """The file is not a notebook that can be graded (not JSON, no cells, ...)."""


def parse_notebook(text: str) -> dict:
    """Parse a submitted ``.ipynb`` leniently into an nbformat-4 dict.

    Raises:
        UngradableError: not JSON, or JSON without a list of cells (the message says which).
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise UngradableError(f"the file is not a readable notebook (invalid JSON: {exc})") from exc
    if not isinstance(raw, dict):
        raise UngradableError("the file is not a notebook (JSON, but not an object with cells)")
    if raw.get("nbformat") == 3 or "worksheets" in raw:
        import nbformat

        try:
            raw = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
        except Exception as exc:
            raise UngradableError(f"an old-format notebook that could not be converted ({exc})") from exc
    if not isinstance(raw.get("cells"), list):
        raise UngradableError("the file is not a notebook (no list of cells)")
    return raw


def _clean_cell(cell: Any) -> dict | None:
    """A minimal valid nbformat-4 cell (outputs cleared), or ``None`` for junk."""
    if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
        return None
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    meta = {k: v for k, v in meta.items() if k not in ("execution", "papermill", "collapsed", "scrolled")}
    out = {"cell_type": cell["cell_type"], "metadata": meta, "source": cell_source(cell)}
    if isinstance(cell.get("id"), str):
        out["id"] = cell["id"]
    if cell["cell_type"] == "code":
        out["outputs"] = []
        out["execution_count"] = None
    elif isinstance(cell.get("attachments"), dict):
        out["attachments"] = cell["attachments"]
    return out


def _defines(source: str) -> set[str]:
    return set(_DEFINES.findall(source))


def _as_type(cell: dict, cell_type: str) -> None:
    if cell["cell_type"] == cell_type:
        return
    cell["cell_type"] = cell_type
    if cell_type == "code":
        cell["outputs"], cell["execution_count"] = [], None
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)


def _by_kind(grade_ids: list[str], tracked: dict, tests_note: str, other_note: str) -> list[str]:
    """One note for the test cells among ``grade_ids`` and one for the others (none when empty)."""
    tests = [g for g in grade_ids if nbgrader_meta(tracked[g]).get("grade")]
    others = [g for g in grade_ids if g not in tests]
    return [f"{note}: {', '.join(ids)}" for note, ids in ((tests_note, tests), (other_note, others)) if ids]


def repair_submission(submission: dict, release: dict) -> tuple[dict, list[str]]:
    """Repair a parsed submission against the release notebook.

    Args:
        submission: the student's notebook, from :func:`parse_notebook`.
        release: the released notebook (``assignments/<a>/<a>.ipynb``) as a dict.

    Returns:
        ``(notebook, notes)``: a valid nbformat-4 notebook dict ready for nbgrader, and one
        sentence per repair (empty when the submission needed none).
    """
    notes: list[str] = []
    rel_cells = release["cells"]
    order = [nbgrader_meta(c).get("grade_id") for c in rel_cells]
    tracked = {gid: c for gid, c in zip(order, rel_cells) if gid}
    ids_in_order = [gid for gid in order if gid]

    cells = [c for c in (_clean_cell(c) for c in submission["cells"]) if c is not None]
    if len(cells) < len(submission["cells"]):
        notes.append(f"{len(submission['cells']) - len(cells)} malformed cell(s) dropped")

    # 2. a cell that is exactly a locked (test or read-only) cell of the release is that cell, whatever its
    #    metadata says (swapped or stale grade ids cannot move a test); the last exact copy wins
    by_source: dict[int, str] = {}
    relabelled = []
    for gid in ids_in_order:
        ref = tracked[gid]
        if not nbgrader_meta(ref).get("locked"):
            continue
        src = cell_source(ref).strip()
        candidates = [
            i
            for i, c in enumerate(cells)
            if i not in by_source and c["cell_type"] == ref["cell_type"] and cell_source(c).strip() == src
        ]
        if not candidates:
            continue
        pick = next((i for i in reversed(candidates) if nbgrader_meta(cells[i]).get("grade_id") == gid), candidates[-1])
        by_source[pick] = gid
        if nbgrader_meta(cells[pick]) and nbgrader_meta(cells[pick]).get("grade_id") != gid:
            relabelled.append(gid)
    claimed = set(by_source.values())

    # 3. other known ids keep the release metadata (last copy wins); unknown ids are dropped
    where: dict[str, list[int]] = {gid: [i] for i, gid in by_source.items()}
    unknown = []
    for i, cell in enumerate(cells):
        if i in by_source:
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        if not nbgrader_meta(cell):
            cell["metadata"].pop("nbgrader", None)
            continue
        if gid in tracked and gid not in claimed:
            where.setdefault(gid, []).append(i)
        else:
            if gid and gid not in tracked:
                unknown.append(str(gid))
            cell["metadata"].pop("nbgrader", None)
    if unknown:
        notes.append(f"cells with unknown grade ids treated as ordinary cells: {', '.join(unknown)}")
    for gid, places in where.items():
        if len(places) > 1:
            for i in places[:-1]:
                cells[i]["metadata"].pop("nbgrader", None)
            notes.append(
                f"cell {gid!r} appeared {len(places)} times (duplicated): graded the last copy, the others ran as ordinary cells"
            )
            where[gid] = places[-1:]
    duplicated = [
        gid
        for gid in claimed
        if sum(
            1
            for c in cells
            if c["cell_type"] == tracked[gid]["cell_type"]
            and cell_source(c).strip() == cell_source(tracked[gid]).strip()
        )
        > 1
    ]
    for gid in duplicated:
        notes.append(
            f"cell {gid!r} appeared more than once (duplicated): graded the last copy, the others ran as ordinary cells"
        )
    if relabelled:
        notes.append(f"grade ids corrected on cell(s) recognised by their source: {', '.join(relabelled)}")
    present = {gid: places[0] for gid, places in where.items()}

    # 4. stripped metadata: recognise cells by source (locked cells) or by what they define (solutions)
    free = [i for i, c in enumerate(cells) if not nbgrader_meta(c)]
    restored = []
    for gid in ids_in_order:
        if gid in present:
            continue
        ref = tracked[gid]
        meta = nbgrader_meta(ref)
        match = None
        if meta.get("locked") or meta.get("grade"):
            src = cell_source(ref).strip()
            match = next(
                (i for i in free if cells[i]["cell_type"] == ref["cell_type"] and cell_source(cells[i]).strip() == src),
                None,
            )
        if match is None and meta.get("solution") and ref["cell_type"] == "code":
            names = _defines(cell_source(ref))
            if names:
                match = next(
                    (i for i in free if cells[i]["cell_type"] == "code" and names <= _defines(cell_source(cells[i]))),
                    None,
                )
        if match is not None:
            free.remove(match)
            present[gid] = match
            restored.append(gid)
    if restored:
        notes.append(f"nbgrader metadata restored on {len(restored)} cell(s) whose metadata was stripped")

    # 5a. tracked cells take the release's metadata; locked ones also its source and type
    edited = []
    for gid, i in present.items():
        ref = tracked[gid]
        cell = cells[i]
        cell["metadata"]["nbgrader"] = copy.deepcopy(nbgrader_meta(ref))
        for key in ("editable", "deletable"):
            if key in ref.get("metadata", {}):
                cell["metadata"][key] = ref["metadata"][key]
        if nbgrader_meta(ref).get("locked"):
            if cell_source(cell) != cell_source(ref) or cell["cell_type"] != ref["cell_type"]:
                edited.append(gid)
            _as_type(cell, ref["cell_type"])
            cell["source"] = cell_source(ref)
        else:
            _as_type(cell, ref["cell_type"])
    notes += _by_kind(
        edited, tracked, "edited test cell(s) restored from the source", "edited read-only cell(s) restored"
    )

    # 5b. deleted test / read-only cells go back before the next release cell still present
    missing = [gid for gid in ids_in_order if gid not in present and nbgrader_meta(tracked[gid]).get("locked")]
    anchor_of = {}
    for gid in missing:
        later = ids_in_order[ids_in_order.index(gid) + 1 :]
        anchor_of[gid] = next((g for g in later if g in present), None)
    new_cells: list[dict] = []
    anchors = {present[g]: g for g in present}
    pending: dict[str | None, list[str]] = {}
    for gid in missing:
        pending.setdefault(anchor_of[gid], []).append(gid)
    for i, cell in enumerate(cells):
        if i in anchors:
            for gid in pending.get(anchors[i], []):
                new_cells.append(copy.deepcopy(tracked[gid]))
        new_cells.append(cell)
    for gid in pending.get(None, []):
        new_cells.append(copy.deepcopy(tracked[gid]))
    notes += _by_kind(missing, tracked, "deleted test cell(s) restored", "deleted read-only cell(s) restored")
    # a missing free-response answer (grade and solution) is not a repair: it awaits a person (cvkit.course.assignments.manual)
    lost = [
        g
        for g in ids_in_order
        if g not in present and nbgrader_meta(tracked[g]).get("solution") and not nbgrader_meta(tracked[g]).get("grade")
    ]
    if lost:
        notes.append(f"solution cell(s) not found: {', '.join(lost)} (the notebook's other cells still ran)")

    # unique cell ids (nbformat 4.5), clean outputs, the release's kernel
    seen: set[str] = set()
    for cell in new_cells:
        cid = cell.get("id")
        if not isinstance(cid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid) or cid in seen:
            cid = uuid.uuid4().hex[:8]
            while cid in seen:
                cid = uuid.uuid4().hex[:8]
            cell["id"] = cid
        seen.add(cid)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    metadata = submission.get("metadata") if isinstance(submission.get("metadata"), dict) else {}
    metadata = {
        **metadata,
        "kernelspec": release.get("metadata", {}).get(
            "kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"}
        ),
    }
    notebook = {
        "cells": new_cells,
        "metadata": metadata,
        "nbformat": 4,
        "nbformat_minor": max(5, int(release.get("nbformat_minor", 5))),
    }
    return notebook, notes
