"""The program that runs a submission inside the sandbox: ``python -m cvkit.course.assignments.runner``.

It is the student's process: it runs the notebook's cells in an IPython shell and, where the notebook
has a test cell, that test's **sandbox half** (:mod:`cvkit.course.assignments.testcells`): ``inputs()``
builds the data, ``answers(student, **data)`` calls the student's code, and what comes back is written
as plain data (JSON + safetensors, :func:`cvkit.grading.dump_plain`) for the grader to read and check
in its own process. Nothing here decides a score; anything here may be tampered with by the student,
so the grader trusts nothing it receives but plain data, validated.

Protocol (the grader drives, :mod:`cvkit.course.assignments.execute`): one JSON object per line.

* stdin, from the grader: ``{"op": "config", ...}`` first, then ``{"op": "cell", "index", "source",
  "timeout"}``, ``{"op": "test", "index", "grade_id", "source", "rules", "timeout", "out"}``, ``{"op": "end"}``.
  A test's code arrives only when its turn comes.
* stdout, to the grader: ``{"op": "ready"}``, one ``{"op": "done", ...}`` per command, ``{"op": "audit", ...}``
  as soon as graded code switches off the call tracing or starts a process during a test.

Before any student code runs the runner: keeps private copies of the file descriptors it talks on and
points the standard ones elsewhere (``input()`` cannot eat a command), makes ``exit()``/``quit()`` raise
``SystemExit`` (graded ``exited``, the same every run), resolves the rules' builtins, and installs an
audit hook (which Python cannot remove) that reports tracing tampering during tests.

During a test's ``answers`` a profile hook records calls of forbidden Python code and builtins, and,
when a rule names dispatcher ops, PyTorch's profiler records the ops that ran
(:mod:`cvkit.course.assignments.rules`). Each cell runs under a per-cell alarm (``KeyboardInterrupt``);
a cell that swallows it is stopped from outside by the grader.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import signal
import sys
import threading
import traceback

_write = os.write
_read = os.read
_exec = exec
_compile = compile
_json_dumps = json.dumps
_json_loads = json.loads

STREAM_LIMIT = 50_000  # characters of printed text kept per cell
TEXT_LIMIT = 10_000  # characters of a displayed text/plain
IMAGE_LIMIT = 2_000_000  # base64 characters of one image
DISPLAYS_LIMIT = 10  # displayed items kept per cell
ERROR_LIMIT = 2_000  # characters of an error message
KEPT_MIME = ("image/png", "image/jpeg", "text/plain")
_INPUT_CELL = re.compile(r"<ipython-input-(\d+)-")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CellTimeout(KeyboardInterrupt):
    """Raised in a cell that ran past the per-cell limit."""


class _Channel:
    """The runner's private line protocol on two file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.buffer = b""

    def send(self, message: dict) -> None:
        data = (_json_dumps(message) + "\n").encode()
        view = memoryview(data)
        while view:
            try:
                n = _write(self.write_fd, view)
            except OSError:
                return
            view = view[n:]

    def receive(self) -> dict | None:
        while b"\n" not in self.buffer:
            chunk = _read(self.read_fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return _json_loads(line)


class CellOutputs:
    """What one cell (or test) printed and displayed, capped by type as it is produced."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.stream_chars = 0
        self.displays = 0
        self.truncated = False

    def stream(self, name: str, text: str) -> None:
        room = STREAM_LIMIT - self.stream_chars
        if room <= 0:
            self.truncated = True
            return
        if len(text) > room:
            text = text[:room] + "\n... output truncated by the grader ...\n"
            self.truncated = True
        self.stream_chars += len(text)
        name = "stdout"  # stderr never costs points; it is shown as ordinary output
        if self.items and self.items[-1].get("output_type") == "stream":
            self.items[-1]["text"] += text
        else:
            self.items.append({"output_type": "stream", "name": name, "text": text})

    def display(self, data: dict, kind: str = "display_data") -> None:
        if self.displays >= DISPLAYS_LIMIT:
            self.truncated = True
            return
        kept = {}
        for mime in KEPT_MIME:
            value = data.get(mime) if isinstance(data, dict) else None
            if isinstance(value, list):
                value = "".join(str(v) for v in value)
            if not isinstance(value, str):
                continue
            limit = TEXT_LIMIT if mime == "text/plain" else IMAGE_LIMIT
            if len(value) > limit:
                if mime != "text/plain":
                    self.truncated = True
                    continue
                value = value[:limit] + "..."
            kept[mime] = value
        if kept:
            self.displays += 1
            item = {"output_type": kind, "data": kept, "metadata": {}}
            self.items.append(item)

    def error(self, ename: str, evalue: str, frames: list[str]) -> None:
        self.items.append(
            {
                "output_type": "error",
                "ename": ename[:200],
                "evalue": evalue[:ERROR_LIMIT],
                "traceback": [f[:ERROR_LIMIT] for f in frames[-30:]],
            }
        )


class _Stream:
    """``sys.stdout`` / ``sys.stderr`` while a cell runs."""

    def __init__(self, runner: Runner, name: str) -> None:
        self.runner, self.name = runner, name

    def write(self, text) -> int:
        text = str(text)
        if self.runner.current is not None:
            self.runner.current.stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


class Runner:
    """The IPython shell that runs a submission, and the tests' sandbox halves (see the module docstring)."""

    def __init__(self, channel: _Channel, config: dict) -> None:
        import torch
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell

        from cvkit.grading import StudentCode, dump_plain

        self.channel = channel
        self.torch = torch
        self.StudentCode, self.dump_plain = StudentCode, dump_plain
        self.current: CellOutputs | None = None
        self.timed_out = False
        self.in_answers = False
        self.test_id = ""
        self.count_to_cell: dict[int, int] = {}
        self.home = os.getcwd()  # the submission's folder: answers go there, tests run there
        runner = self

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
                if runner.current is not None:
                    runner.current.display(data)

            def clear_output(self, wait=False):
                pass

        class Hook(DisplayHook):
            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                if runner.current is not None:
                    runner.current.display(format_dict, "execute_result")

            def finish_displayhook(self):
                pass

        from traitlets.config import Config

        config_ = Config()
        config_.HistoryManager.enabled = False  # no history database to write
        shell = InteractiveShell.instance(config=config_, colors="nocolor", cache_size=0)
        shell.display_pub = Publisher(shell=shell)
        from IPython.core.display_trap import DisplayTrap

        shell.displayhook = Hook(shell=shell, cache_size=0)
        shell.display_trap = DisplayTrap(hook=shell.displayhook)
        shell._showtraceback = self._showtraceback
        shell.showtraceback_hooked = True
        self.shell = shell
        self._exit_function = _exit_function
        for name in ("exit", "quit"):
            shell.user_ns[name] = _exit_function
            setattr(builtins, name, _exit_function)
        builtins.input = _no_input
        self.tracer = Tracer(config.get("rules", []), torch)
        self.stdout, self.stderr = _Stream(self, "stdout"), _Stream(self, "stderr")
        sys.stdout, sys.stderr = self.stdout, self.stderr
        import warnings

        warnings.filterwarnings("ignore", message="To exit: use")  # IPython's advice after SystemExit
        signal.signal(signal.SIGALRM, self._alarm)
        if hasattr(
            signal, "SIGXFSZ"
        ):  # a file past the size limit fails with OSError in that cell instead of killing the run
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if hasattr(sys, "addaudithook"):
            sys.addaudithook(self._audit)

    # -- plumbing ----------------------------------------------------------------------------
    def _alarm(self, signum, frame):
        self.timed_out = True
        raise CellTimeout("the cell ran past the per-cell limit and was interrupted by the grader")

    def _arm(self, seconds: float) -> None:
        self.timed_out = False
        signal.setitimer(signal.ITIMER_REAL, max(0.001, float(seconds)))

    def _disarm(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)

    def _showtraceback(self, etype, evalue, stb) -> None:
        """Record an error: the student's own frames with their source, library frames by name only."""
        if self.current is None:
            return
        frames = []
        for entry in (_ANSI.sub("", str(s)) for s in (stb or [])):
            head = entry.lstrip()
            frames.append(entry.splitlines()[0] if head.startswith("File ") and entry.splitlines() else entry)
        self.current.error(getattr(etype, "__name__", "Error"), str(evalue), frames)

    _WATCHED = (
        "sys.setprofile",
        "sys.settrace",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "os.posix_spawn",
        "os.exec",
        "os.system",
        "os.spawn",
        "pty.spawn",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.addressof",
    )

    def _audit(self, event: str, args) -> None:
        if self.in_answers and event in self._WATCHED:
            self.channel.send({"op": "audit", "event": event, "test": self.test_id})

    def _where(self, tb) -> str:
        """The last frame of the student's own cells in a traceback, as 'cell N, line L, in f'."""
        last = ""
        for frame in traceback.extract_tb(tb):
            m = _INPUT_CELL.match(frame.filename)
            if m and int(m.group(1)) in self.count_to_cell:
                last = f"cell {self.count_to_cell[int(m.group(1))]}, line {frame.lineno}, in {frame.name}"
        return last

    def _reset_torch(self) -> None:
        torch = self.torch
        for call in (lambda: torch.set_default_dtype(torch.float32), lambda: torch.set_grad_enabled(True)):
            try:
                call()
            except Exception:  # noqa: BLE001, S110 - best effort
                pass

    # -- commands --------------------------------------------------------------------------
    def run_cell(self, msg: dict) -> dict:
        """Run one notebook cell in the student's namespace; returns its outputs and what went wrong."""
        outputs = CellOutputs()
        self.current = outputs
        self.count_to_cell[self.shell.execution_count] = int(msg["index"])
        events = []
        error = None
        try:
            self._arm(msg.get("timeout", 120))
            result = self.shell.run_cell(str(msg["source"]), store_history=True)
            self._disarm()
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = {"ename": type(exc).__name__, "evalue": str(exc)[:ERROR_LIMIT]}
                if isinstance(exc, SystemExit):
                    events.append("exit")
                elif isinstance(exc, KeyboardInterrupt) and self.timed_out:
                    events.append("timeout")
        except BaseException as exc:  # noqa: BLE001 - e.g. the alarm firing between statements of the shell
            self._disarm()
            error = {"ename": type(exc).__name__, "evalue": str(exc)[:ERROR_LIMIT]}
            events.append("timeout" if self.timed_out else "error")
        finally:
            self.current = None
        if outputs.truncated:
            events.append("output")
        return {"op": "done", "index": msg["index"], "outputs": outputs.items, "error": error, "events": events}

    def run_test(self, msg: dict) -> dict:
        """Run a test's sandbox half; write the answers as plain data; report errors and forbidden calls."""
        outputs = CellOutputs()
        self.current = outputs
        self.test_id = str(msg.get("grade_id", ""))
        events: list[str] = []
        error = None
        violations: list[list] = []
        tampered = ""
        out = os.path.join(self.home, str(msg["out"]))
        cwd = _getcwd_or(self.home)
        try:
            os.chdir(self.home)  # a test runs in the submission's folder, wherever the notebook went
            self._arm(msg.get("timeout", 120))
            namespace = {"__name__": f"cvkit_test_{self.test_id}", "__builtins__": builtins}
            _exec(_compile(str(msg["source"]), f"<test {self.test_id}>", "exec"), namespace)
            make_inputs = namespace.get("inputs")
            data = make_inputs() if callable(make_inputs) else {}
            if not isinstance(data, dict):
                raise TypeError("inputs() must return a dict")
            answers = namespace["answers"]
            student = self.StudentCode(self.shell.user_ns)
            self._reset_torch()
            self.tracer.start(msg.get("rules", []))
            self.in_answers = True
            try:
                got = answers(student, **data)
            finally:
                self.in_answers = False
                violations, tampered = self.tracer.stop()
            self._disarm()
            skeleton, tensors = self.dump_plain(got)
            with open(out + ".json", "wb") as fh:
                fh.write(skeleton)
            with open(out + ".safetensors", "wb") as fh:
                fh.write(tensors)
        except BaseException as exc:  # noqa: BLE001 - whatever the student's code raises is reported, never fatal
            self._disarm()
            self.in_answers = False
            if self.tracer.active:
                violations, tampered = self.tracer.stop()
            error = {
                "ename": type(exc).__name__,
                "evalue": str(exc)[:ERROR_LIMIT],
                "where": self._where(exc.__traceback__),
            }
            if isinstance(exc, SystemExit):
                events.append("exit")
            elif isinstance(exc, KeyboardInterrupt) and self.timed_out:
                events.append("timeout")
        finally:
            self.current = None
            self.test_id = ""
            try:
                os.chdir(cwd)
            except OSError:
                pass
        if outputs.truncated:
            events.append("output")
        return {
            "op": "done",
            "index": msg["index"],
            "outputs": outputs.items,
            "error": error,
            "events": events,
            "violations": violations,
            "tampered": tampered,
        }


class Tracer:
    """Records calls of forbidden code while a test's ``answers`` runs (see :mod:`cvkit.course.assignments.rules`)."""

    def __init__(self, rules: list[dict], torch) -> None:
        import importlib

        self.torch = torch
        self.rules = {int(r["index"]): r for r in rules}
        self.codes: dict[tuple, tuple[int, str]] = {}
        self.builtins: dict[int, tuple[object, int, str]] = {}
        self.ops: dict[str, int] = {}
        for index, rule in self.rules.items():
            for key, label in rule.get("codes", []):
                self.codes.setdefault(tuple(key), (index, label))
            for op in rule.get("ops", []):
                self.ops.setdefault(op, index)
            for dotted in rule.get("builtins", []):
                parts = dotted.split(".")
                for cut in range(len(parts) - 1, 0, -1):
                    try:
                        obj = importlib.import_module(".".join(parts[:cut]))
                        for attr in parts[cut:]:
                            obj = getattr(obj, attr)
                    except (ImportError, AttributeError):
                        continue
                    self.builtins[id(obj)] = (obj, index, dotted)
                    break
        self.files = {key[0] for key in self.codes}
        self.active = False
        self.hits: dict[tuple[int, str], None] = {}
        self.profiler = None
        self.hook = None

    def start(self, indices: list[int]) -> None:
        """Start recording for the rules ``indices`` (those that bind the current test)."""
        wanted = {int(i) for i in indices}
        codes = {k: v for k, v in self.codes.items() if v[0] in wanted}
        files = {k[0] for k in codes}
        ids = {k: v for k, v in self.builtins.items() if v[1] in wanted}
        ops = {k: v for k, v in self.ops.items() if v in wanted}
        self.hits = {}
        self.active = True
        self.ops_now = ops
        hits = self.hits

        def hook(frame, event, arg):
            if event == "call":
                code = frame.f_code
                if code.co_filename in files:
                    hit = codes.get((code.co_filename, code.co_firstlineno, code.co_name))
                    if hit is not None:
                        hits[hit] = None
            elif event == "c_call":
                hit = ids.get(id(arg))
                if hit is not None:
                    hits[(hit[1], hit[2])] = None

        self.hook = hook if (codes or ids) else None
        if self.hook is not None:
            sys.setprofile(hook)
            threading.setprofile(hook)
        self.profiler = None
        if ops:
            self.profiler = _start_profiler(self.torch)

    def stop(self) -> tuple[list[list], str]:
        """Stop recording; returns ``(violations, tampered)``: ``[rule index, what was called]`` pairs, and
        a description when the tracing was switched off or replaced during the test (else ``""``)."""
        tampered = ""
        if self.hook is not None:
            if sys.getprofile() is not self.hook:
                tampered = "the call tracing (sys.setprofile) was replaced during the test"
            sys.setprofile(None)
            threading.setprofile(None)
        if self.profiler is not None:
            try:
                self.profiler.__exit__(None, None, None)
                names = {e.name for e in self.profiler.function_events}
                for op, index in self.ops_now.items():
                    if op in names:
                        self.hits[(index, op)] = None
            except Exception as exc:  # noqa: BLE001 - a profiler switched off by student code
                tampered = (
                    tampered
                    or f"the op tracing (PyTorch profiler) was switched off during the test ({type(exc).__name__})"
                )
        self.active = False
        self.hook = self.profiler = None
        return [[index, what] for index, what in self.hits], tampered


def _start_profiler(torch):
    from torch.autograd.profiler import profile

    try:
        from torch._C._profiler import _ExperimentalConfig

        prof = profile(record_shapes=False, experimental_config=_ExperimentalConfig(profile_all_threads=True))
    except Exception:  # noqa: BLE001 - older torch: the calling thread only
        prof = profile(record_shapes=False)
    prof.__enter__()
    return prof


def _getcwd_or(default: str) -> str:
    try:
        return os.getcwd()
    except OSError:  # the notebook removed its own working folder
        return default


def _exit_function(*args, **kwargs):
    """``exit()`` / ``quit()`` while grading: the cell stops here (``SystemExit``), the next cells run."""
    raise SystemExit(*args[:1])


def _no_input(*args, **kwargs):
    raise RuntimeError("input() cannot be answered while the notebook is graded")


def main() -> int:
    """Entry point inside the sandbox (see the module docstring)."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray writes to file descriptor 1 go to the log, never into the protocol
    channel = _Channel(read_fd, write_fd)
    config = channel.receive() or {}
    try:
        runner = Runner(channel, config)
    except BaseException as exc:  # noqa: BLE001 - report why the sandbox could not start
        channel.send({"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        os._exit(3)
    channel.send({"op": "ready", "pid": os.getpid()})
    while True:
        msg = channel.receive()
        if msg is None or msg.get("op") == "end":
            break
        if msg.get("op") == "cell":
            channel.send(runner.run_cell(msg))
        elif msg.get("op") == "test":
            channel.send(runner.run_test(msg))
    channel.send({"op": "bye"})
    os._exit(0)  # skip atexit handlers the notebook registered


if __name__ == "__main__":
    main()
