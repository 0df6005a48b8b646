"""Running one submission in its sandbox, cell by cell, and collecting what came back as plain data.

:func:`execute_submission` starts the runner (:mod:`cvkit.course.assignments.runner`) in a bubblewrap
sandbox (:mod:`cvkit.course.assignments.sandbox`), sends it the notebook's cells one at a time and, at
each test cell, that test's sandbox half, and reads back per cell the (capped) outputs and errors and,
per test, the answers (JSON + safetensors, read the moment the test ends, with ``O_NOFOLLOW`` and size
limits, before any further student code runs).

From outside, a watchdog thread stops the sandbox when its processes together pass the memory limit
(counting a page that several of them share once, see :func:`_used`),
start too many processes, or the notebook passes its time limit; a cell that ignores the per-cell
interrupt is stopped when it overstays by half the per-cell limit (2 to :data:`GRACE` seconds). Whatever stops the sandbox, every
process in it is killed and the cells after that point are recorded as not run.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvkit.course.assignments.sandbox import Limits, SandboxMode, plain_command, sandbox_command, set_limits

GRACE = 10.0  # at most this many seconds past the per-cell limit before a cell that swallowed the interrupt is stopped
STARTUP_TIMEOUT = 120.0  # seconds for the sandbox to start Python, IPython and torch
MAX_LINE = 32 * 2**20  # bytes of one protocol message
MAX_JSON = 32 * 2**20  # bytes of one test's answer skeleton
MAX_TENSORS = 300 * 2**20  # bytes of one test's answer tensors
MAX_AUDITS = 50
_NOT_RUN = object()

STOP_MESSAGES = {
    "memory": "its processes used more than {memory:g} GiB of memory and it was stopped",
    "time_limit": "the notebook ran past its time limit of {time_limit:g} s and was stopped",
    "unresponsive": "a cell ran past the per-cell limit of {cell_timeout:g} s and ignored the interrupt; it was stopped",
    "processes": "it started more than {processes} processes at once and was stopped",
    "died": "the Python process died (os._exit, a crash, or the system ran out of memory)",
    "startup": "the sandbox could not start: {detail}",
    "protocol": "the runner's messages were malformed (the notebook wrote into the grader's channel?); it was stopped",
}


@dataclass
class CellRecord:
    """What happened to one code cell (an ordinary cell, or a test cell's sandbox half).

    Attributes:
        index: the cell's position in the graded notebook.
        grade_id: the test's ``grade_id`` for a test cell, else ``""``.
        ran: whether the runner finished it.
        outputs: nbformat outputs, capped by type.
        error: ``{"ename", "evalue", "where"}`` when the cell (or the student's code in the test) raised.
        events: ``"exit"``, ``"timeout"``, ``"output"`` (truncated).
        violations: for a test, ``(rule index, what was called)`` pairs of forbidden calls.
        tampered: for a test, how the call tracing was switched off, or ``""``.
        answers: for a test, the plain data ``answers`` returned (absent when it raised or did not run).
        answer_error: why the answers could not be read (too big, malformed), or ``""``.
    """

    index: int
    grade_id: str = ""
    ran: bool = False
    outputs: list = field(default_factory=list)
    error: dict | None = None
    events: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    tampered: str = ""
    answers: Any = _NOT_RUN
    answer_error: str = ""

    @property
    def has_answers(self) -> bool:
        """True when the test handed back answers that were read."""
        return self.answers is not _NOT_RUN


@dataclass
class Execution:
    """One submission's run in the sandbox.

    Attributes:
        records: per code cell, by notebook index.
        stopped: why the sandbox was stopped early (a key of :data:`STOP_MESSAGES`), or ``""``.
        stopped_at: the index of the cell running when it was stopped.
        message: the sentence for the instructor about the stop, or ``""``.
        audits: tracing tampering and process starts reported during tests.
        isolated: whether it ran in a bubblewrap sandbox.
        seconds: wall time.
        log: the end of the runner's own log (for the instructor).
    """

    records: dict[int, CellRecord] = field(default_factory=dict)
    stopped: str = ""
    stopped_at: int | None = None
    message: str = ""
    audits: list = field(default_factory=list)
    isolated: bool = False
    seconds: float = 0.0
    log: str = ""


_HAS_PSS = os.path.exists("/proc/self/smaps_rollup") or os.path.exists("/proc/self/smaps")


def _used(procs: list, limit: int) -> int:
    """Bytes of memory the processes use together, exact wherever it is near ``limit``.

    First the sum of their resident set sizes (RSS), which is cheap (microseconds a process). RSS counts a
    page shared by several processes once per process: a child forked from a 1 GiB kernel shares all its
    pages until it calls exec, so for those milliseconds the RSS sum is 2 GiB. matplotlib forks ``fc-list``
    when it builds its font cache, and the honest a4_detection submission was stopped at its 2 GiB limit
    when the watchdog sampled inside that window (CI, stop 34). So when the RSS sum passes the limit, the
    sum of their proportional set sizes (PSS, which divides each shared page among the processes mapping
    it) decides; it takes milliseconds a process to read, too slow for every tick. Where PSS cannot be read
    (not Linux), RSS. A process that has just ended counts 0.
    """

    def each(read) -> int:
        total = 0
        for p in procs:
            try:
                total += read(p)
            except Exception:  # noqa: BLE001, S112 - a process that just ended, or one we may not inspect
                continue
        return total

    rss = each(lambda p: p.memory_info().rss)
    if rss <= limit or not _HAS_PSS:
        return rss
    return each(lambda p: p.memory_full_info().pss)


class _Sandbox:
    """A running sandbox: its process, the reader of its messages and the watchdog."""

    def __init__(self, argv: list[str], env: dict, cwd: str, limits: Limits, log_path: Path) -> None:
        self.limits = limits
        self.log = open(log_path, "wb")  # noqa: SIM115 - the sandbox's stderr until close()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            preexec_fn=(lambda: set_limits(limits)) if os.name == "posix" else None,  # noqa: PLW1509 - set_limits only calls setrlimit/prctl
        )
        self.messages: queue.Queue = queue.Queue()
        self.reason = ""
        self.started = time.monotonic()
        self._done = threading.Event()
        self._known: set[int] = set()
        threading.Thread(target=self._read, name="cvkit-sandbox-reader", daemon=True).start()
        threading.Thread(target=self._watch, name="cvkit-sandbox-watchdog", daemon=True).start()

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            line = stream.readline(MAX_LINE)
            if not line:
                self.messages.put(None)
                return
            if not line.endswith(b"\n"):
                self.messages.put({"op": "__protocol__"})
                return
            try:
                msg = json.loads(line)
            except ValueError:
                msg = {"op": "__protocol__"}
            self.messages.put(msg if isinstance(msg, dict) else {"op": "__protocol__"})

    def _tree(self) -> list:
        try:
            import psutil

            root = psutil.Process(self.proc.pid)
            procs = [root] + root.children(recursive=True)
        except Exception:  # noqa: BLE001 - no psutil, or the process is gone
            return []
        self._known.update(p.pid for p in procs)
        return procs

    def _watch(self) -> None:
        limit = self.limits.memory_gb * 2**30
        while not self._done.wait(0.1):
            if time.monotonic() - self.started > self.limits.time_limit:
                self.stop("time_limit")
                return
            procs = self._tree()
            if len(procs) > self.limits.max_processes + 3:  # bwrap, its init, the runner
                self.stop("processes")
                return
            if _used(procs, limit) > limit:
                self.stop("memory")
                return

    def send(self, message: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def stop(self, reason: str = "") -> None:
        """Kill every process of the sandbox (its reason is kept, the first one wins)."""
        if reason and not self.reason:
            self.reason = reason
        self._tree()
        kill = getattr(signal, "SIGKILL", signal.SIGTERM)
        try:
            os.killpg(self.proc.pid, kill) if hasattr(os, "killpg") else self.proc.kill()
        except OSError:
            pass
        for pid in self._known:
            try:
                os.kill(pid, kill)
            except OSError:
                pass

    def close(self) -> None:
        self._done.set()
        self.stop()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.log.close()


def _wait(box: _Sandbox, deadline: float, audits: list) -> dict | None:
    """The next reply of the runner before ``deadline`` (audit reports are collected on the way)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"op": "__timeout__"}
        try:
            msg = box.messages.get(timeout=min(left, 0.5))
        except queue.Empty:
            continue
        if msg is None:
            return None
        if msg.get("op") == "audit":
            if len(audits) < MAX_AUDITS:
                audits.append({"event": str(msg.get("event", ""))[:100], "test": str(msg.get("test", ""))[:100]})
            continue
        return msg


def read_answers(box: Path, name: str):
    """The answers a test wrote as ``answers/<name>.json`` and ``.safetensors``, read without following links.

    Raises:
        ValueError: missing, not regular files, too big, or malformed (the message says which; it never
            quotes the files).
    """
    from cvkit.grading import load_plain

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        folder = os.open(box / "answers", flags | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise ValueError(f"the answers folder is gone ({exc.strerror})") from None
    try:
        parts = []
        for suffix, limit in ((".json", MAX_JSON), (".safetensors", MAX_TENSORS)):
            try:
                fd = (
                    os.open(name + suffix, flags, dir_fd=folder)
                    if os.open in os.supports_dir_fd
                    else os.open(box / "answers" / (name + suffix), flags)
                )
            except OSError as exc:
                raise ValueError(f"the answers were not written ({exc.strerror})") from None
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise ValueError("the answers are not a regular file")
                if info.st_size > limit:
                    raise ValueError(f"the answers are too big ({info.st_size / 2**20:.0f} MiB)")
                with os.fdopen(fd, "rb", closefd=False) as fh:
                    parts.append(fh.read(limit + 1))
            finally:
                os.close(fd)
        return load_plain(parts[0], parts[1])
    finally:
        os.close(folder)


def prepare_box(box: Path, notebook: dict, data_dir: Path | None) -> None:
    """The submission's private folder: its notebook, the released ``data/``, an ``answers/`` folder."""
    if box.exists():
        shutil.rmtree(box)
    (box / "answers").mkdir(parents=True)
    (box / "submission.ipynb").write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    if data_dir is not None and data_dir.is_dir():
        shutil.copytree(data_dir, box / "data", symlinks=False)


def execute_submission(
    cells: list[tuple[int, str, str]],
    tests: dict[str, dict],
    rules: list[dict],
    box: Path,
    limits: Limits,
    mode: SandboxMode,
    hidden: list[Path],
    log_path: Path,
) -> Execution:
    """Run a prepared submission (see :func:`prepare_box`) in its sandbox.

    Args:
        cells: the notebook's code cells in order, as ``(index, grade_id or "", source)``.
        tests: per test ``grade_id``: ``{"source": sandbox half, "rules": [rule indices]}``.
        rules: the assignment's rules as :meth:`cvkit.course.assignments.rules.ResolvedRule.to_json`.
        box: the private folder.
        limits: what the submission may use.
        mode: ``"bwrap"`` (isolated) or ``"none"`` (a plain child process).
        hidden: folders a bwrap sandbox must not see (see :func:`cvkit.course.assignments.sandbox.sandbox_command`).
        log_path: where the runner's own log goes (for the instructor).

    Returns:
        Execution: per-cell records; how and where the run was stopped, if it was.
    """
    tic = time.monotonic()
    argv, env, cwd = sandbox_command(box, limits, hidden) if mode == "bwrap" else plain_command(box, limits)
    execution = Execution(isolated=mode == "bwrap")
    fmt = {
        "memory": limits.memory_gb,
        "time_limit": limits.time_limit,
        "cell_timeout": limits.cell_timeout,
        "processes": limits.max_processes,
    }
    try:
        sandbox = _Sandbox(argv, env, cwd, limits, log_path)
    except OSError as exc:
        execution.stopped, execution.message = "startup", STOP_MESSAGES["startup"].format(detail=exc)
        return execution
    try:
        sandbox.send({"op": "config", "rules": rules})
        ready = _wait(sandbox, time.monotonic() + STARTUP_TIMEOUT, execution.audits)
        if not ready or ready.get("op") != "ready":
            detail = (ready or {}).get("error") or (ready or {}).get("op") or "no reply"
            execution.stopped, execution.stopped_at = sandbox.reason or "startup", cells[0][0] if cells else None
            execution.message = STOP_MESSAGES[execution.stopped].format(detail=detail, **fmt)
            return execution
        sandbox.started = time.monotonic()  # the time limit counts the notebook, not Python's start
        for index, grade_id, source in cells:
            record = CellRecord(index, grade_id)
            execution.records[index] = record
            if grade_id:
                test = tests[grade_id]
                msg = {
                    "op": "test",
                    "index": index,
                    "grade_id": grade_id,
                    "source": test["source"],
                    "rules": test["rules"],
                    "timeout": limits.cell_timeout,
                    "out": f"answers/{index}",
                }
            else:
                msg = {"op": "cell", "index": index, "source": source, "timeout": limits.cell_timeout}
            grace = min(GRACE, max(2.0, limits.cell_timeout / 2))
            deadline = min(time.monotonic() + limits.cell_timeout + grace, sandbox.started + limits.time_limit + GRACE)
            reply = sandbox.send(msg) and _wait(sandbox, deadline, execution.audits)
            if not reply or reply.get("op") != "done" or reply.get("index") != index:
                if isinstance(reply, dict) and reply.get("op") == "__timeout__":
                    sandbox.stop("unresponsive")
                elif isinstance(reply, dict):
                    sandbox.stop("protocol")
                else:
                    time.sleep(0.3)  # let the watchdog name the cause of a death it caused
                    sandbox.stop("died")
                execution.stopped, execution.stopped_at = sandbox.reason, index
                execution.message = STOP_MESSAGES[sandbox.reason].format(detail="", **fmt)
                break
            _fill(record, reply, box)
        else:
            sandbox.send({"op": "end"})
            _wait(sandbox, time.monotonic() + 5, execution.audits)
    finally:
        sandbox.close()
        execution.seconds = time.monotonic() - tic
        try:
            execution.log = log_path.read_text(errors="replace")[-4000:]
        except OSError:
            execution.log = ""
    return execution


def _fill(record: CellRecord, reply: dict, box: Path) -> None:
    """Copy a runner's reply into the record, validating every field; read a test's answers now."""
    record.ran = True
    record.outputs = (
        [o for o in reply.get("outputs", []) if isinstance(o, dict)][:50]
        if isinstance(reply.get("outputs"), list)
        else []
    )
    error = reply.get("error")
    if isinstance(error, dict):
        record.error = {k: str(error.get(k, ""))[:2000] for k in ("ename", "evalue", "where")}
    record.events = (
        [e for e in reply.get("events", []) if e in ("exit", "timeout", "output", "error")]
        if isinstance(reply.get("events"), list)
        else []
    )
    if not record.grade_id:
        return
    violations = reply.get("violations", [])
    if isinstance(violations, list):
        record.violations = [
            (int(v[0]), str(v[1])[:200])
            for v in violations[:20]
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], int)
        ]
    record.tampered = str(reply.get("tampered") or "")[:300]
    if record.error is None:
        try:
            record.answers = read_answers(box, str(record.index))
        except ValueError as exc:
            record.answer_error = str(exc)[:300]
