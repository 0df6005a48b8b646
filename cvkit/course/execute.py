"""Running a submission's cells so that what goes wrong is recorded, never fatal, and never unfair.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` preprocessor during autograding:

* **stderr never costs points.** nbgrader scores a test cell 0 when it wrote anything to
  stderr, so a correct answer that triggers a PyTorch ``UserWarning`` would lose its points.
  Here stderr output is turned into stdout output (still shown in the feedback).
* **A dead kernel keeps the grades earned so far.** nbclient raises ``DeadKernelError``
  (``os._exit``, a segfault, out of memory) and nbgrader loses the whole submission. Here the
  cell gets a ``KernelDied`` error, the cells after it a ``NotRun`` error (so their tests
  score 0 instead of counting as passed because they have no output), and grading goes on.
* **Limits.** Each cell has nbgrader's per-cell timeout (interrupted, then the next cells
  run; a kernel that ignores the interrupt is stopped). A watchdog thread kills the kernel
  when the whole submission passes ``time_limit`` seconds or the kernel's resident memory
  passes ``memory_limit_gb``.
* **Bounded output.** The kernel starts with :data:`KERNEL_STARTUP`, which stops printing
  after ``CVKIT_OUTPUT_LIMIT`` characters per cell, so an endless ``print`` loop cannot
  flood the grader.

Everything unusual is appended to :data:`EVENTS` (``kind``: ``"timeout"``, ``"exit"``,
``"died"``, ``"memory"``, ``"time_limit"``, ``"unresponsive"``, ``"output"``), read by the worker that grades the submission.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Float, Unicode

EVENTS: list[dict] = []

# Run by the kernel before the first cell (IPKernelApp.exec_lines): output cap per cell.
KERNEL_STARTUP = r'''
def _cvkit_autograde_setup():
    import os, sys
    limit = int(os.environ.get("CVKIT_OUTPUT_LIMIT", "200000"))
    class _Capped:
        def __init__(self, stream):
            self._stream, self.written = stream, 0
        def write(self, text):
            room = limit - self.written
            if room <= 0:
                return len(text)
            self.written += len(text)
            if len(text) <= room:
                return self._stream.write(text)
            self._stream.write(text[:room])
            self._stream.write("\n... output truncated by the grader (more than %d characters in this cell) ...\n" % limit)
            return len(text)
        def __getattr__(self, name):
            return getattr(self._stream, name)
    out, err = _Capped(sys.stdout), _Capped(sys.stderr)
    sys.stdout, sys.stderr = out, err
    def reset(*_):
        out.written = err.written = 0
    get_ipython().events.register("pre_run_cell", reset)
_cvkit_autograde_setup()
del _cvkit_autograde_setup
'''


_TRUNCATED = "output truncated by the grader"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _grade_id(cell) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` with the guarantees of the module docstring."""

    time_limit = Float(600.0, help="seconds the whole notebook may run before the kernel is killed").tag(config=True)
    memory_limit_gb = Float(4.0, help="resident memory (GiB) of the kernel before it is killed").tag(config=True)
    pid_file = Unicode("", help="where to write the kernel's process id (so a supervisor can kill it)").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._dead_at = None
        self._watchdog = None
        self._stop = threading.Event()
        self._killed: str | None = None
        self._current = -1
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._stop.set()

    # -- per cell --------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_at is not None:
            if cell.source.strip():
                cell.outputs = [_error("NotRun", "the kernel had died before this cell; it was not run")]
            return cell, resources
        if self._watchdog is None:
            self._start_watchdog()
        self._current = index
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except Exception as exc:  # noqa: BLE001 - a dead or stuck kernel: record it and go on
            name = type(exc).__name__
            if name == "CellTimeoutError":  # the interrupt was ignored: the kernel is stuck, stop it
                self._kill_kernel()
                reason = "unresponsive"
            elif "DeadKernel" in name or "died" in str(exc).lower():
                reason = self._killed or "died"
            else:
                raise
            self._dead_at = index
            text = {
                "memory": f"the kernel used more than {self.memory_limit_gb:g} GiB of memory and was stopped",
                "time_limit": f"the notebook ran past its time limit of {self.time_limit:g} s and was stopped",
                "unresponsive": f"ran past the per-cell limit of {self.timeout} s and ignored the interrupt; the kernel was stopped",
            }.get(reason, "the kernel died while running this cell (os._exit, a crash, or the system ran out of memory)")
            cell.outputs.append(_error("KernelDied" if reason == "died" else "KernelStopped", text))
            EVENTS.append({"kind": reason, "cell": index, "grade_id": _grade_id(cell), "message": text})
        self._inspect(cell, index)
        return cell, resources

    def _inspect(self, cell, index) -> None:
        outputs = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.get("name") == "stderr":
                out = NotebookNode(output_type="stream", name="stdout", text=out.text)
            if out.output_type == "error" and out.get("ename") == "CellTimeoutError":
                EVENTS.append({"kind": "timeout", "cell": index, "grade_id": _grade_id(cell), "message": f"interrupted after the per-cell limit of {self.timeout} s"})
            if out.output_type == "stream" and _TRUNCATED in out.get("text", ""):
                EVENTS.append({"kind": "output", "cell": index, "grade_id": _grade_id(cell), "message": "printed too much; output truncated"})
            if out.output_type == "error" and out.get("ename") == "SystemExit":
                EVENTS.append({"kind": "exit", "cell": index, "grade_id": _grade_id(cell), "message": "called sys.exit(); the rest of that cell did not run"})
            outputs.append(out)
        # merge consecutive stdout chunks so the limit on output lines applies to them together
        merged: list = []
        for out in outputs:
            if merged and out.output_type == "stream" and merged[-1].output_type == "stream" and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        cell.outputs = merged

    # -- watchdog ------------------------------------------------------------------------
    def _kill_kernel(self) -> None:
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid is not None:
            try:
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
            except OSError:
                pass

    def _start_watchdog(self) -> None:
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid is None:
            self._watchdog = False
            return
        if self.pid_file:
            with open(self.pid_file, "w") as fh:
                fh.write(str(pid))
        started = time.monotonic()
        limit_bytes = self.memory_limit_gb * 1024**3

        def watch() -> None:
            try:
                import psutil

                proc = psutil.Process(pid)
            except Exception:  # noqa: BLE001 - without psutil only the time limit is enforced
                proc = None
            while not self._stop.wait(0.1):
                reason = None
                if time.monotonic() - started > self.time_limit:
                    reason = "time_limit"
                elif proc is not None:
                    try:
                        rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
                    except Exception:  # noqa: BLE001 - the process is gone
                        return
                    if rss > limit_bytes:
                        reason = "memory"
                if reason:
                    self._killed = reason
                    self._kill_kernel()
                    return

        self._watchdog = threading.Thread(target=watch, name="cvkit-watchdog", daemon=True)
        self._watchdog.start()
