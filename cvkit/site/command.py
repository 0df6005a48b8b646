"""``cvkit site``: build the course website from the notebooks a run executed."""

from __future__ import annotations

import argparse


def register(sub) -> None:
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
