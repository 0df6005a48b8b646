"""Executing lecture notebooks with papermill, honestly.

papermill injects parameters after the cell tagged ``parameters`` and runs every cell.
Two of its habits would let a broken notebook pass, so :func:`run_notebook` checks the
executed notebook itself:

* ``sys.exit()`` in a cell is reported by papermill as success while the cells after
  it never run: here any non-empty code cell left unexecuted, or a ``SystemExit``
  error output, fails the notebook.
* A notebook without a ``parameters`` cell silently ignores the injected profile:
  here it is an error before execution starts.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

from cvkit.course.figure_alt import KERNEL_LINE as FIGURE_ALT_TEXT
from cvkit.course.lectures.kernel_sockets import private_kernel_sockets
from cvkit.runtime import describe_device, recorded_results, resolve_profile

NotebookStatus = Literal["passed", "failed", "error"]


class NotebookError(ValueError):
    """A notebook cannot be run as asked: missing file, no ``parameters`` cell, not a notebook."""


@dataclass
class NotebookResult:
    """The outcome of executing one notebook.

    Attributes:
        name: file name, e.g. ``"02_convolution.ipynb"``.
        status: ``"passed"``; ``"failed"`` (a cell raised, ``sys.exit()``, a dead kernel, a timeout);
            ``"error"`` (the notebook could not be started).
        seconds: wall time of the execution.
        profile: the profile injected (``"fast"`` or ``"full"``).
        device: the device it ran on, e.g. ``"cpu (2 threads)"``.
        message: for a failure, what went wrong and in which cell.
        output: path of the executed notebook (outputs included).
        source: path of the notebook that was run.
        results: the headline numbers the notebook recorded with :func:`cvkit.runtime.record_results`, as
            ``{"name", "value", "source"}`` dicts (``source`` is ``"live"`` or ``"checkpoint"``), in order.
    """

    name: str
    status: NotebookStatus
    seconds: float
    profile: str
    device: str
    message: str = ""
    output: str = ""
    source: str = ""
    results: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the notebook passed."""
        return self.status == "passed"


@dataclass
class RunReport:
    """Results of a batch of notebooks, writable as Markdown and JSON."""

    results: list[NotebookResult] = field(default_factory=list)
    profile: str = ""
    device: str = ""
    jobs: int = 1
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every notebook passed (and there was at least one)."""
        return bool(self.results) and all(r.ok for r in self.results)

    def to_dict(self) -> dict:
        """Plain data for ``report.json``."""
        return {
            "ok": self.ok,
            "profile": self.profile,
            "device": self.device,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 2),
            "notebooks": [asdict(r) | {"seconds": round(r.seconds, 2)} for r in self.results],
        }

    def to_markdown(self) -> str:
        """A Markdown table: notebook, status, seconds, device, profile, recorded results, message."""
        lines = [
            f"# Notebook run: {'all passed' if self.ok else 'FAILURES'}",
            "",
            f"profile **{self.profile}**, device **{self.device}**, {self.jobs} job(s), {self.seconds:.1f} s in all",
            "",
            "| notebook | status | seconds | device | profile | results | message |",
            "|---|---|---:|---|---|---|---|",
        ]
        for r in self.results:
            message = r.message.replace("|", "\\|").replace("\n", " ")[:300]
            results = format_results(r.results).replace("|", "\\|")
            lines.append(
                f"| {r.name} | {r.status} | {r.seconds:.1f} | {r.device} | {r.profile} | {results} | {message} |"
            )
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.json`` into ``out_dir``; returns their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md, js = out / "report.md", out / "report.json"
        md.write_text(self.to_markdown())
        js.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return md, js


def parameters_cell_index(notebook) -> int | None:
    """Index of the code cell tagged ``parameters`` in an nbformat notebook, or ``None``."""
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    return None


def check_notebook(path: str | os.PathLike) -> Path:
    """Check that ``path`` is a runnable course notebook.

    Returns:
        The resolved path.

    Raises:
        NotebookError: the file is missing, is not a ``.ipynb`` notebook, or has no cell tagged
            ``parameters`` (the message says how to add one).
    """
    import nbformat

    p = Path(path)
    if not p.exists():
        raise NotebookError(f"{p}: no such notebook; check the path (relative to {Path.cwd()})")
    if p.suffix != ".ipynb":
        raise NotebookError(f"{p}: not a notebook (expected a .ipynb file)")
    try:
        nb = nbformat.read(p, as_version=4)
    except Exception as exc:  # noqa: BLE001 - any parse failure is reported the same way
        raise NotebookError(f"{p}: not a readable notebook ({type(exc).__name__}: {exc})") from exc
    if parameters_cell_index(nb) is None:
        raise NotebookError(
            f"{p}: no cell tagged 'parameters'. Add a code cell such as PROFILE = \"auto\" and give it the tag "
            "'parameters' (JupyterLab: property inspector > Cell Tags), so the runner can set the profile."
        )
    return p.resolve()


def collect_notebooks(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of notebooks.

    Folders contribute their ``*.ipynb`` files (not recursively, checkpoints skipped).

    Raises:
        NotebookError: a path does not exist, or a folder holds no notebooks.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            notebooks = sorted(q for q in p.glob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
            if not notebooks:
                raise NotebookError(f"{p}: folder holds no .ipynb notebooks")
            found.extend(notebooks)
        elif p.exists():
            found.append(p)
        else:
            raise NotebookError(f"{p}: no such notebook or folder (relative to {Path.cwd()})")
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


def _as_papermill_values(value):
    """``value`` with every tuple turned into a list, recursively: papermill writes a tuple as the string of its
    repr (``"(16, 32)"``), which a notebook would then use as a string."""
    if isinstance(value, dict):
        return {k: _as_papermill_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_papermill_values(v) for v in value]
    return value


def run_notebook(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    profile: str = "auto",
    *,
    parameters: dict | None = None,
    cell_timeout: float | None = 900,
    threads: int | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill and judge the result.

    Args:
        path: the ``.ipynb`` file (must have a ``parameters`` cell).
        out_dir: where the executed copy is written (same file name).
        profile: ``"auto"``, ``"fast"`` or ``"full"``; resolved here and injected as ``PROFILE``.
        parameters: further parameters to inject (numbers, strings, bools, None, and lists, tuples and dicts of them;
            tuples arrive as lists, since papermill would write them as strings).
        cell_timeout: seconds any single cell may run (``None``: no limit).
        threads: CPU threads for the kernel (sets ``OMP_NUM_THREADS``); ``None`` leaves the default.

    Returns:
        NotebookResult (never raises for a failing notebook: the failure is in ``status`` and ``message``).

    Raises:
        NotebookError: the notebook is missing or has no ``parameters`` cell.
    """
    import nbformat
    import papermill
    from traitlets.config import Config

    source = check_notebook(path)
    resolved = resolve_profile(profile)
    out = Path(out_dir).resolve() / source.name
    out.parent.mkdir(parents=True, exist_ok=True)
    device = describe_device()
    _prepare_kernel_env(threads)
    started = time.time()
    tic = time.perf_counter()
    status: NotebookStatus = "passed"
    message = ""
    try:
        with private_kernel_sockets() as sockets:
            config = Config()
            for trait, value in sockets.items():
                setattr(config.KernelManager, trait, value)
            papermill.execute_notebook(
                str(source),
                str(out),
                parameters={"PROFILE": resolved, **_as_papermill_values(parameters or {})},
                kernel_name="python3",
                language="python",
                cwd=str(source.parent),
                progress_bar=False,
                log_output=False,
                execution_timeout=cell_timeout,
                config=config,
                # figures inline as in Jupyter, whatever MPLBACKEND the caller has (pytest sets Agg, which shows
                # nothing), each carrying its titles as alt text (for the course website)
                extra_arguments=["--IPKernelApp.matplotlib=inline", f"--IPKernelApp.exec_lines={FIGURE_ALT_TEXT}"],
            )
    except Exception as exc:  # noqa: BLE001 - papermill raises several types; all mean "failed"
        status = "failed"
        message = _describe_failure(exc)
    seconds = time.perf_counter() - tic
    results: list[dict] = []
    if out.exists() and out.stat().st_mtime >= started - 1:  # written by this run, even when a cell failed
        executed = nbformat.read(out, as_version=4)
        results = recorded_results(executed)
        problem = unexecuted_cells(executed) if status == "passed" else ""
        if problem:
            status, message = "failed", problem
    result = NotebookResult(source.name, status, seconds, resolved, device, message, str(out), str(source), results)
    record_run(out, result)
    return result


def record_run(executed: str | os.PathLike, result: NotebookResult) -> None:
    """Write how a notebook ran into its executed copy's metadata (``metadata.cvkit.run``).

    The executed notebook then says by itself which profile and device produced its outputs, when,
    and whether it passed; the course website (``cvkit site``) shows this on the lecture's page.
    Does nothing when the executed copy was not written (the notebook could not start).
    """
    import datetime

    import nbformat

    from cvkit import __version__

    path = Path(executed)
    if not path.is_file():
        return
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - a half-written copy stays as papermill left it
        return
    nb.metadata.setdefault("cvkit", {})["run"] = {
        "status": result.status,
        "profile": result.profile,
        "device": result.device,
        "seconds": round(result.seconds, 1),
        "message": result.message[:500],
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cvkit": __version__,
    }
    nbformat.write(nb, path)


def format_results(results: Sequence[dict]) -> str:
    """Recorded results as one short line: ``acc 0.912, miou 0.55; checkpoint: ap50 0.61`` (``""`` when none)."""
    parts = []
    for origin in ("live", "checkpoint"):
        text = ", ".join(f"{r['name']} {_short(r['value'])}" for r in results if r["source"] == origin)
        if text:
            parts.append(text if origin == "live" else f"checkpoint: {text}")
    return "; ".join(parts)


def _short(value) -> str:
    """4 significant digits for floats, ``nan`` for a non-finite float (stored as ``None``)."""
    if value is None:
        return "nan"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def unexecuted_cells(executed) -> str:
    """Why an executed notebook did not really finish (``""`` when it did).

    Catches ``sys.exit()`` / ``SystemExit`` (papermill reports success and skips the rest)
    and any non-empty code cell that never ran.
    """
    for i, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") == "SystemExit":
                return f"cell {i} called sys.exit({output.get('evalue', '')}); the cells after it never ran"
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if cell.source.strip() and (status not in (None, "completed") or cell.get("execution_count") is None):
            return f"cell {i} never completed (papermill status {status!r}); execution stopped before it"
    return ""


def run_notebooks(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike = "build/run",
    profile: str = "auto",
    jobs: int = 1,
    cell_timeout: float | None = 900,
    progress: bool = True,
) -> RunReport:
    """Execute notebooks (in parallel with ``jobs`` > 1) and write ``report.md`` / ``report.json``.

    Args:
        paths: notebooks or folders of notebooks.
        out_dir: where executed notebooks and the reports go.
        profile: ``"auto"``, ``"fast"`` or ``"full"``.
        jobs: notebooks run at once; CPU threads are shared out between them.
        cell_timeout: per-cell limit in seconds.
        progress: print one line per finished notebook.

    Returns:
        RunReport, in the order of ``paths``.

    Raises:
        NotebookError: a path is missing or a notebook lacks a ``parameters`` cell (checked for
            every notebook before any runs).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    notebooks = collect_notebooks(paths)
    for nb in notebooks:
        check_notebook(nb)
    resolved = resolve_profile(profile)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    tic = time.perf_counter()
    results: list[NotebookResult | None] = [None] * len(notebooks)

    def done(i: int, result: NotebookResult) -> None:
        results[i] = result
        if progress:
            extra = f"  {result.message.splitlines()[0][:160]}" if result.message else ""
            print(f"[{result.status:>6}] {result.name} ({result.seconds:.1f} s){extra}", flush=True)

    if jobs == 1:
        for i, nb in enumerate(notebooks):
            done(i, _safe_run(nb, out_dir, resolved, cell_timeout, threads))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {
                pool.submit(_safe_run, nb, out_dir, resolved, cell_timeout, threads): i
                for i, nb in enumerate(notebooks)
            }
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
    report = RunReport(
        [r for r in results if r is not None], resolved, describe_device(), jobs, time.perf_counter() - tic
    )
    report.write(out_dir)
    return report


def _safe_run(path: Path, out_dir, profile: str, cell_timeout, threads) -> NotebookResult:
    """run_notebook that turns an unexpected crash of the runner itself into an ``error`` result."""
    try:
        return run_notebook(path, out_dir, profile, cell_timeout=cell_timeout, threads=threads)
    except NotebookError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the report instead of stopping the batch
        return NotebookResult(
            Path(path).name,
            "error",
            0.0,
            profile,
            describe_device(),
            f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
            "",
            str(path),
        )


def _prepare_kernel_env(threads: int | None) -> None:
    """Environment inherited by the kernel: headless widgets, cvkit importable, thread count."""
    import logging

    # papermill warns that it cannot infer types of FAST = dict(...) parameters; they are injected as written
    logging.getLogger("papermill").setLevel(logging.ERROR)
    os.environ["CVKIT_HEADLESS"] = "1"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning on stderr
    package_parent = str(Path(__file__).resolve().parents[3])
    current = os.environ.get("PYTHONPATH", "")
    if package_parent not in current.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, current) if p)
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


def _describe_failure(exc: Exception) -> str:
    """One readable message for papermill's exceptions (cell error, dead kernel, timeout)."""
    name = type(exc).__name__
    if name == "PapermillExecutionError":
        cell = getattr(exc, "exec_count", "?")
        return f"cell [{cell}] raised {exc.ename}: {str(exc.evalue).strip()[:500]}"
    if name == "DeadKernelError" or "Kernel died" in str(exc):
        return f"the kernel died ({str(exc).strip()[:300]}): out of memory, a segfault or os._exit()"
    if "Timeout" in name or "timed out" in str(exc).lower():
        return f"a cell ran past the per-cell timeout ({str(exc).strip()[:300]})"
    return f"{name}: {str(exc).strip()[:500]}"
