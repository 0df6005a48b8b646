"""The assignments stage of the main job (``cvkit`` with no arguments).

For every assignment in ``solutions/``: generate the release into the report folder and
compare it with the committed ``assignments/<a>/`` (drift, leaks), then validate it
(reference solution -> full marks, untouched release -> 0). The committed release is
never rewritten here: ``cvkit release`` does that, deliberately.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cvkit.course.assignments import find_assignments


def assignments_stage(root: Path, out_dir: Path, profile: str, jobs: int) -> tuple[bool, str, dict]:
    """Release-check and validate every assignment; returns ``(ok, markdown section, data)``.

    ``profile`` is ignored (assignments have one size); ``jobs`` > 1 grades the two validation
    submissions of an assignment at once.
    """
    from cvkit.course.assignments.autograde import prepare
    from cvkit.course.assignments.release import release_drift, release_leaks
    from cvkit.course.assignments.validate import validate

    out_dir = Path(out_dir)
    rows, data, ok = [], {"assignments": []}, True
    assignments = find_assignments(root)
    for a in assignments:
        tic = time.perf_counter()
        entry = {"name": a.name, "problems": []}
        try:
            work = out_dir / a.name
            if work.exists():
                shutil.rmtree(work)
            prepared = prepare(a, work / "course")
            shutil.copytree(prepared / "published", work / "release")
            entry["problems"] += [f"release drift: {d}" for d in release_drift(prepared / "published", a.release_dir)]
            entry["problems"] += [f"release leak: {d}" for d in release_leaks(a, prepared / "published")]
            report = validate(a, work / "autograde", jobs=jobs, prepared=prepared)
            shutil.rmtree(work / "course", ignore_errors=True)
            entry["problems"] += report.problems
            for key, r in (("reference", report.reference), ("untouched", report.untouched)):
                entry[key] = (
                    {"points": r.total, "max": r.max_total, "status": r.status, "seconds": round(r.seconds, 1)}
                    if r
                    else None
                )
                if r is not None and r.manual:  # free-response points: graded by a person, never here
                    entry[key]["manual_max"] = r.manual_max
                    entry[key]["manual_awaiting"] = sum(1 for v in r.manual.values() if v is None)
        except Exception as exc:  # noqa: BLE001 - one broken assignment must not hide the others
            entry["problems"].append(f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round(time.perf_counter() - tic, 1)
        entry["ok"] = not entry["problems"]
        ok = ok and entry["ok"]
        data["assignments"].append(entry)
        ref, raw = entry.get("reference") or {}, entry.get("untouched") or {}
        problems = "; ".join(entry["problems"]).replace("|", "\\|").replace("\n", " ")[:400]
        by_hand = f"; +{ref['manual_max']:g} free-response points, graded by hand" if ref.get("manual_max") else ""
        rows.append(
            f"| {a.name} | {'ok' if entry['ok'] else 'FAILED'} | {ref.get('points', 0):g}/{ref.get('max', 0):g} ({ref.get('status', '-')}{by_hand}) "
            f"| {raw.get('points', 0):g}/{raw.get('max', 0):g} ({raw.get('status', '-')}) | {entry['seconds']:.1f} | {problems} |"
        )
        print(
            f"[{'passed' if entry['ok'] else 'failed':>6}] assignment {a.name}: reference {ref.get('points', 0):g}/{ref.get('max', 0):g}, "
            f"untouched {raw.get('points', 0):g} ({entry['seconds']:.1f} s)"
            + (f"  {problems[:160]}" if problems else ""),
            flush=True,
        )
    data["ok"] = ok
    lines = [
        f"# Assignments: {'all valid' if ok else 'FAILURES'}",
        "",
        "Each assignment is released afresh (and compared with the committed `assignments/`), then the reference solution "
        "and the untouched release are autograded.",
        "",
        "| assignment | verdict | reference solution | untouched release | seconds | problems |",
        "|---|---|---|---|---:|---|",
        *rows,
    ]
    if not assignments:
        lines.append("| (none in solutions/) | ok | - | - | 0 | |")
    return ok, "\n".join(lines) + "\n", data
