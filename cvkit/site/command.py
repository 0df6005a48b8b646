"""``cvkit site``: build the course website from the notebooks a run executed; the main job's last stage."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register_site_command(sub) -> None:
    """Add the ``site`` subcommand to the ``cvkit`` parser's subparsers."""
    p = sub.add_parser("site", help="build the course website (Sphinx) from executed notebooks into build/site/")
    p.add_argument(
        "--from",
        dest="executed",
        default="build/course/notebooks",
        help="executed notebooks (default build/course/notebooks, the main job's; or a `cvkit run --out` folder)",
    )
    p.add_argument("--out", default="build/site", help="output folder (default build/site); open OUT/index.html")
    p.add_argument("-j", "--jobs", type=int, default=2, help="Sphinx processes (default 2)")
    p.add_argument(
        "--allow-unexecuted",
        action="store_true",
        help="build even when no executed notebook is found (pages without outputs)",
    )
    p.set_defaults(handler=_site)


def _site(args: argparse.Namespace) -> int:
    from cvkit.site.build import SiteError, build_site

    try:
        report = build_site(args.executed, args.out, jobs=args.jobs, require_executed=not args.allow_unexecuted)
    except SiteError as exc:
        print(f"cvkit site: error: {exc}")
        return 1
    print(report.summary())
    return 0


def site_stage(
    root: Path, out_dir: Path, jobs: int, *, site: str | os.PathLike = "build/site"
) -> tuple[bool, str, dict]:
    """The main job's last stage: the website from ``out_dir/notebooks`` into ``site``.

    Returns ``(ok, markdown section for report.md, data for report.json)``; never raises. A missing
    ``site`` extra is reported and skipped (ok), any other failure is reported as one (not ok).
    """
    from cvkit.site.build import SiteError, SiteUnavailable, build_site

    try:
        report = build_site(out_dir / "notebooks", site, root=root, jobs=max(2, jobs))
    except SiteUnavailable as exc:  # an optional extra: say so, do not fail the course
        print(f"course website skipped: {exc}")
        return True, f"# Course website: skipped\n\n{exc}\n", {"name": "site", "ok": True, "skipped": str(exc)}
    except (SiteError, OSError) as exc:
        print(f"course website FAILED: {exc}")
        return False, f"# Course website: FAILED\n\n```\n{exc}\n```\n", {"name": "site", "ok": False, "error": str(exc)}
    print(report.summary())
    return True, report.to_markdown(relative_to=out_dir), {"name": "site", "ok": True} | report.to_dict()
