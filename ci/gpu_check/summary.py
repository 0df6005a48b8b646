"""Summarise a GPU check (run.sh): per notebook its status and seconds and recorded results, or how far a killed one
got; per-epoch seconds from the training checkpoints; then pack the executed notebooks and logs into at most six
files of OUT (the device tool returns at most 8 files of 16 MiB).

Usage: ``python ci/gpu_check/summary.py WORK_DIR OUT_DIR``
"""

import io
import json
import sys
import tarfile
import traceback
from pathlib import Path

LIMIT = 15 * 2**20  # bytes per tarball, under the tool's 16 MiB a file
RESUMABLE = ("11_cpc*", "11_dae*", "11_4_*")  # checkpoints brought back so that a CPU can finish 11_4


def notebook_state(path: Path) -> dict:
    """How far papermill got in an executed (or half-executed) notebook, and the errors it shows."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]

    def status(c):
        return c.get("metadata", {}).get("papermill", {}).get("status")

    errors = [
        f"{o.get('ename')}: {str(o.get('evalue'))[:400]}"
        for c in code
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    state = {"code_cells": len(code), "completed": sum(status(c) == "completed" for c in code), "errors": errors}
    running = [c for c in code if status(c) == "running"]
    if running:
        source = "".join(running[0]["source"]).strip().splitlines()
        state["running_cell"] = " | ".join(source[:3])[:300]
        streams = [o for o in running[0].get("outputs", []) if o.get("output_type") == "stream"]
        state["running_output_tail"] = "".join("".join(o.get("text", "")) for o in streams)[-600:]
    return state


def checkpoints(work: Path) -> dict:
    """Per training run: epochs done, seconds per epoch, and the last row of its history."""
    import torch

    out = {}
    for last in sorted((work / "outputs" / "checkpoints").glob("*/last.pt")):
        try:
            rows = torch.load(last, map_location="cpu", weights_only=True).get("history", {}).get("rows", [])
        except Exception as exc:  # noqa: BLE001 - a half-written file
            out[last.parent.name] = {"error": repr(exc)}
            continue
        final = {k: round(v, 4) if isinstance(v, float) else v for k, v in (rows[-1] if rows else {}).items()}
        out[last.parent.name] = {
            "epochs": len(rows),
            "seconds": [round(r.get("seconds", 0), 1) for r in rows],
            "last": final,
        }
    return out


def summarise(work: Path) -> list[dict]:
    """One row per notebook that was started."""
    rows = []
    for log in sorted((work / "logs").glob("*.log")):
        name = log.stem
        row: dict = {"name": name}
        report = work / "runs" / name / "report.json"
        if report.exists():
            notebooks = json.loads(report.read_text()).get("notebooks") or []
            row.update(notebooks[0] if notebooks else {})
            row["name"] = name
        smoke = work / "runs" / name / "smoke.json"  # pool.py --smoke: ci/full_smoke.py's row
        if smoke.exists():
            row.update(json.loads(smoke.read_text())[0])
        killed = work / "logs" / f"{name}.killed"
        if killed.exists():
            row["status"], row["seconds"] = "killed at deadline", float(killed.read_text())
        executed = work / "runs" / name / f"{name}.ipynb"
        if executed.exists():
            try:
                row["progress"] = notebook_state(executed)
            except (OSError, ValueError, KeyError) as exc:
                row["progress"] = {"unreadable": repr(exc)}
        row["log_tail"] = log.read_text(errors="replace")[-800:]
        rows.append(row)
    return rows


def markdown(rows: list[dict], ckpt: dict) -> str:
    lines = ["| notebook | status | s | cells done | results / where it stopped |", "|---|---|---:|---|---|"]
    for r in rows:
        p = r.get("progress", {})
        what = json.dumps(r["results"])[:300] if r.get("results") else (r.get("message") or "")[:200]
        if "reached_checks" in r:
            what = f"reached Checks: {r['reached_checks']}; {what}"
        if r.get("status") == "killed at deadline":
            what = f"running: {p.get('running_cell', '?')[:150]}"
        if p.get("errors"):
            what += " ERRORS: " + " / ".join(p["errors"])[:300]
        done = f"{p.get('completed', '?')}/{p.get('code_cells', '?')}"
        what = what.replace("\n", " ").replace("|", "/")
        lines.append(f"| {r['name']} | {r.get('status', '?')} | {float(r.get('seconds') or 0):.0f} | {done} | {what} |")
    lines.append("\n## checkpoints (seconds per epoch)\n")
    lines += [f"- {k}: {json.dumps(v)[:400]}" for k, v in ckpt.items()]
    return "\n".join(lines) + "\n"


def pack(work: Path, out: Path) -> None:
    """Executed notebooks into nb1-3.tar.gz (<= 15 MiB each); logs, reports, the notebooks that did not fit (text
    outputs only) and 11_4's checkpoints into logs.tar.gz."""
    executed = sorted((work / "runs").glob("*/*.ipynb"), key=lambda p: p.stat().st_size)
    overflow, count, tar, size = [], 0, None, 0.0
    for nb in executed:
        estimate = nb.stat().st_size * 0.8  # figures are base64 PNG: gzip saves about a fifth
        if estimate > LIMIT:
            overflow.append(nb)
            continue
        if tar is None or size + estimate > LIMIT:
            if tar is not None:
                tar.close()
                tar = None
            if count == 3:
                overflow.append(nb)
                continue
            count += 1
            tar, size = tarfile.open(out / f"nb{count}.tar.gz", "w:gz"), 0.0
        tar.add(nb, arcname=f"{nb.parent.name}/{nb.name}")
        size += estimate
    if tar is not None:
        tar.close()
    with tarfile.open(out / "logs.tar.gz", "w:gz") as t:
        for p in [*(work / "logs").glob("*"), *(work / "meta").glob("*")]:
            t.add(p, arcname=f"logs/{p.name}")
        for p in (work / "runs").glob("*/report.*"):
            t.add(p, arcname=f"reports/{p.parent.name}.{p.suffix[1:]}")
        root = work / "outputs" / "checkpoints"
        for last in (q for pattern in RESUMABLE for q in root.glob(f"{pattern}/last.pt")):
            if last.stat().st_size < 20 * 2**20:
                t.add(last, arcname=f"checkpoints/{last.parent.name}/last.pt")
        for nb in overflow:
            data = json.loads(nb.read_text())
            for c in data["cells"]:
                c["outputs"] = [o for o in c.get("outputs", []) if o.get("output_type") in ("stream", "error")]
            blob = json.dumps(data).encode()
            info = tarfile.TarInfo(f"text_only/{nb.name}")
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))


def main() -> None:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    rows = summarise(work)
    try:
        ckpt = checkpoints(work)
    except Exception:  # noqa: BLE001 - the summary must come back whatever failed
        ckpt = {"error": traceback.format_exc()}
    (out / "summary.json").write_text(json.dumps({"notebooks": rows, "checkpoints": ckpt}, indent=1, default=str))
    (out / "summary.md").write_text(markdown(rows, ckpt))
    pack(work, out)


if __name__ == "__main__":
    main()
