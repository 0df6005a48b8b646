"""The main job: run the whole course end to end and write one report.

``cvkit`` with no arguments calls :func:`run_course`: every lecture notebook in course
order and the mini-project template (``notebooks/projects/``) (fast profile on CPU, full on a GPU), then every assignment stage registered in
:data:`STAGES`, then a last stage given by the caller (the ``cvkit`` command passes the course
website's, :func:`cvkit.site.command.site_stage`, which builds ``build/site/`` from this run's
executed notebooks), then ``report.md`` / ``report.json`` in the output folder.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from cvkit.course.lectures.notebooks import run_notebooks
from cvkit.course.paths import course_notebooks, course_root

# Further stages of the main job: name -> fn(root, out_dir, profile, jobs) -> (ok, markdown section, json-able dict).
STAGES: dict[str, Callable[[Path, Path, str, int], tuple[bool, str, dict]]] = {}


def run_course(
    profile: str = "auto",
    jobs: int = 1,
    out: str | os.PathLike = "build/course",
    root: str | os.PathLike | None = None,
    final_stage: Callable[[Path, Path, int], tuple[bool, str, dict]] | None = None,
) -> bool:
    """Run every lecture notebook (and the project template), then every registered stage, then ``final_stage``; write the combined report.

    Args:
        profile: ``"auto"``, ``"fast"`` or ``"full"`` for the notebooks.
        jobs: notebooks run in parallel.
        out: output folder (executed notebooks under ``notebooks/``, reports at the top).
        root: the course folder (default: :func:`cvkit.course.paths.course_root`).
        final_stage: run last, as ``final_stage(root, out_dir, jobs) -> (ok, markdown section, json-able
            dict)``, after the notebooks (in ``out_dir/notebooks``) and the stages; its section goes into
            ``report.md``, its data into ``report.json`` under its ``"name"`` (the website's: ``"site"``).

    Returns:
        True when every notebook passed and every stage succeeded.
    """
    tic = time.perf_counter()
    base = Path(root) if root is not None else course_root()
    out_dir = Path(out).resolve()
    notebooks = course_notebooks(base)
    if not notebooks:
        raise FileNotFoundError(f"no lecture notebooks in {base / 'notebooks'}")
    report = run_notebooks(notebooks, out_dir / "notebooks", profile=profile, jobs=jobs)
    ok = report.ok
    sections = [report.to_markdown()]
    data = {"notebooks": report.to_dict()}
    for name, stage in STAGES.items():
        stage_ok, markdown, stage_data = stage(base, out_dir / name, report.profile, jobs)
        ok = ok and stage_ok
        sections.append(markdown)
        data[name] = stage_data
    out_dir.mkdir(parents=True, exist_ok=True)
    if final_stage is not None:
        final_ok, markdown, final_data = final_stage(base, out_dir, jobs)
        ok = ok and final_ok
        sections.append(markdown)
        data[final_data.get("name", "final")] = final_data
    data["ok"] = ok
    data["seconds"] = round(time.perf_counter() - tic, 1)
    header = f"# cvkit course run: {'OK' if ok else 'FAILED'} ({data['seconds']} s)\n\n"
    (out_dir / "report.md").write_text(header + "\n".join(sections))
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\ncourse run {'OK' if ok else 'FAILED'} in {data['seconds']} s; report: {out_dir / 'report.md'}")
    return ok


def _register_default_stages() -> None:
    from cvkit.course.assignments.stage import assignments_stage

    STAGES.setdefault("assignments", assignments_stage)


_register_default_stages()
