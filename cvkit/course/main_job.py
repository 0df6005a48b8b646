"""The main job: run the whole course end to end and write one report.

``cvkit`` with no arguments calls :func:`run_course`: every lecture notebook in course
order (fast profile on CPU, full on a GPU), then every assignment stage registered in
:data:`STAGES`, then the course website from the executed notebooks (``build/site/``), then
``report.md`` / ``report.json`` in the output folder, linking to the site.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from cvkit.course.notebooks import run_notebooks
from cvkit.course.paths import course_root, lecture_notebooks

# Further stages of the main job: name -> fn(root, out_dir, profile, jobs) -> (ok, markdown section, json-able dict).
STAGES: dict[str, Callable[[Path, Path, str, int], tuple[bool, str, dict]]] = {}


def run_course(
    profile: str = "auto",
    jobs: int = 1,
    out: str | os.PathLike = "build/course",
    root: str | os.PathLike | None = None,
    site: str | os.PathLike | None = "build/site",
) -> bool:
    """Run every lecture notebook, then every registered stage, then build the website; write the combined report.

    Args:
        profile: ``"auto"``, ``"fast"`` or ``"full"`` for the notebooks.
        jobs: notebooks run in parallel.
        out: output folder (executed notebooks under ``notebooks/``, reports at the top).
        root: the course folder (default: :func:`cvkit.course.paths.course_root`).
        site: where the course website goes (:func:`cvkit.site.build.build_site` from this run's
            executed notebooks); ``None`` skips it.

    Returns:
        True when every notebook passed and every stage succeeded.
    """
    tic = time.perf_counter()
    base = Path(root) if root is not None else course_root()
    out_dir = Path(out).resolve()
    notebooks = lecture_notebooks(base)
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
    if site is not None:
        site_ok, markdown, data["site"] = _site_stage(base, out_dir, Path(site).resolve(), jobs)
        ok = ok and site_ok
        sections.append(markdown)
    data["ok"] = ok
    data["seconds"] = round(time.perf_counter() - tic, 1)
    header = f"# cvkit course run: {'OK' if ok else 'FAILED'} ({data['seconds']} s)\n\n"
    (out_dir / "report.md").write_text(header + "\n".join(sections))
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"\ncourse run {'OK' if ok else 'FAILED'} in {data['seconds']} s; report: {out_dir / 'report.md'}")
    return ok


def _site_stage(base: Path, out_dir: Path, site: Path, jobs: int) -> tuple[bool, str, dict]:
    """Build the website from ``out_dir/notebooks``; a failure is reported, never raised."""
    from cvkit.site.build import SiteError, SiteUnavailable, build_site

    try:
        report = build_site(out_dir / "notebooks", site, root=base, jobs=max(2, jobs))
    except SiteUnavailable as exc:  # an optional extra: say so, do not fail the course
        print(f"course website skipped: {exc}")
        return True, f"# Course website: skipped\n\n{exc}\n", {"ok": True, "skipped": str(exc)}
    except (SiteError, OSError) as exc:
        print(f"course website FAILED: {exc}")
        return False, f"# Course website: FAILED\n\n```\n{exc}\n```\n", {"ok": False, "error": str(exc)}
    print(report.summary())
    return True, report.to_markdown(relative_to=out_dir), {"ok": True} | report.to_dict()


def _register_default_stages() -> None:
    from cvkit.course.assignment_stage import assignments_stage

    STAGES.setdefault("assignments", assignments_stage)


_register_default_stages()
