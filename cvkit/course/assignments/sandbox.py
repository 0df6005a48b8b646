"""A bubblewrap sandbox per submission: what the student's code may see, and what it may use.

:func:`sandbox_command` builds the ``bwrap`` command line that starts the runner
(:mod:`cvkit.course.assignments.runner`) in:

* a **private folder** (the submission's ``box``: the notebook, the assignment's released ``data/``,
  and where the runner writes the answers), mounted at :data:`HOME`, and a small private ``/tmp``;
* the **Python environment read-only**: the system folders (``/usr``, ...), the interpreter's prefix
  and the virtual environment, the ``cvkit`` package folder alone (not the course around it), the
  dataset folders the course reads (read-only); the course, the solutions, the submissions, the output
  folder and the grader's scratch space are covered by empty folders when they lie inside those;
* its **own PID, network, IPC, UTS and user namespaces** (no network at all; no view of the grader's
  or other students' processes); the whole sandbox dies with its grader;
* **limits**: file size and core dumps (``setrlimit``), data segment (a backstop above the memory limit);
  memory, process count and wall time are watched from outside (:mod:`cvkit.course.assignments.execute`),
  and stopping the sandbox kills every process it started (its PID namespace ends with its first process).

Where bubblewrap cannot run (macOS, Windows, a Linux without user namespaces), :func:`sandbox_status`
says why and grading runs the runner as a plain child process in the private folder instead: grading
still works, but submissions are **not isolated** from each other or the machine, and the report says so.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cvkit

HOME = "/home/student"  # where the submission's private folder appears inside the sandbox
SandboxMode = Literal["bwrap", "none"]
NOT_ISOLATED = (
    "submissions were NOT isolated (bubblewrap not available: {reason}); grade untrusted work on Linux with bubblewrap"
)


@dataclass(frozen=True)
class Limits:
    """What one submission may use.

    Attributes:
        memory_gb: memory of all its processes together (GiB; their proportional set size, so a page
            two of them share counts once); then it is stopped.
        time_limit: seconds the whole notebook may run; then it is stopped.
        cell_timeout: seconds one cell may run before it is interrupted.
        file_size_mb: largest file it may write (MiB).
        tmp_size_mb: size of its private ``/tmp`` (MiB).
        max_processes: processes at once; then it is stopped.
        threads: CPU threads for torch/OpenMP.
    """

    memory_gb: float = 4.0
    time_limit: float = 600.0
    cell_timeout: float = 120.0
    file_size_mb: int = 256
    tmp_size_mb: int = 256
    max_processes: int = 32
    threads: int = 1


@functools.lru_cache(maxsize=1)
def sandbox_status() -> tuple[bool, str]:
    """Whether bubblewrap works here: ``(True, "bwrap <version>")`` or ``(False, why not)``.

    Checked once per process by starting ``bwrap`` with the namespaces grading uses.
    """
    if not sys.platform.startswith("linux"):
        return False, f"not available on {sys.platform}"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "the bwrap command is missing (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start ({exc})"
    if result.returncode != 0:
        return (
            False,
            f"bwrap cannot create namespaces here ({result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode})",
        )
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return True, version or "bwrap"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def python_roots() -> list[Path]:
    """Folders the interpreter and its packages live in (bound read-only into the sandbox)."""
    roots = {
        Path(sys.base_prefix).resolve(),
        Path(sys.prefix).resolve(),
        Path(sys.exec_prefix).resolve(),
        Path(os.path.realpath(sys.executable)).parent,
    }
    for entry in sys.path:
        p = Path(entry).resolve() if entry else None
        if p and p.is_dir() and "site-packages" in p.parts:
            roots.add(p)
    # drop a root that lies inside another
    return sorted(r for r in roots if not any(o != r and _inside(r, o) for o in roots))


def package_root() -> Path:
    """The folder holding the ``cvkit`` package the grader runs (bound alone, read-only)."""
    return Path(cvkit.__file__).resolve().parent


def data_roots() -> list[tuple[Path, dict[str, str]]]:
    """Dataset folders outside the system ones, with the environment variables that point cvkit at them."""
    from cvkit.data.sources import cache_home, data_home

    out = []
    home = data_home()
    if home is not None and home.is_dir():
        out.append((home.resolve(), {"CVKIT_DATA": str(home.resolve())}))
    cache = cache_home()
    if cache.is_dir():
        out.append((cache.resolve(), {"XDG_CACHE_HOME": str(cache.resolve().parent)}))
    return out


def sandbox_env(limits: Limits, home: str) -> dict[str, str]:
    """The environment of the runner: nothing inherited but what grading needs."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": home,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(package_root().parent),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": "/tmp/matplotlib" if home == HOME else str(Path(home) / ".matplotlib"),
        "CVKIT_HEADLESS": "1",
        "CVKIT_GRADING": "1",
        "OMP_NUM_THREADS": str(limits.threads),
        "MKL_NUM_THREADS": str(limits.threads),
        "TQDM_DISABLE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "KINETO_LOG_LEVEL": "5",
        "IPYTHONDIR": "/tmp/ipython" if home == HOME else str(Path(home) / ".ipython"),
    }
    for _, variables in data_roots():
        env.update(variables)
    return env


def sandbox_command(box: Path, limits: Limits, hidden: list[Path]) -> tuple[list[str], dict[str, str], str]:
    """The ``bwrap`` command that runs the runner with ``box`` as its private folder.

    Args:
        box: the submission's private folder (notebook, ``data/``, ``answers/``), writable inside.
        limits: see :class:`Limits`.
        hidden: folders the sandbox must not see even when they lie inside a bound folder (the course
            root, the submissions, the output folder, the grader's scratch space).

    Returns:
        ``(argv, env, cwd)`` for :class:`subprocess.Popen` (``env`` is for bwrap itself; the runner's
        own environment is set inside with ``--setenv``).
    """
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]
    # the private /tmp first: bwrap mounts in order, so the folders bound below stay visible when they lie under
    # /tmp (a checkout or a virtual environment in /tmp); mounted last, the tmpfs would hide them
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_size_mb * 2**20), "--tmpfs", "/tmp"]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            args += ["--ro-bind", top, top]
    for etc in (
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/alternatives",
        "/etc/fonts",
        "/etc/ssl/certs",
    ):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    bound = [Path(top) for top in ("/usr",)]
    for root in python_roots() + [p for p, _ in data_roots()]:
        if not any(_inside(root, b) for b in bound):
            args += ["--ro-bind", str(root), str(root)]
            bound.append(root)
    for secret in hidden:
        secret = secret.resolve()
        if any(_inside(secret, b) for b in bound):
            args += ["--tmpfs", str(secret)]  # an empty folder over it
    pkg = package_root()
    args += ["--ro-bind", str(pkg), str(pkg)]
    args += ["--bind", str(box), HOME, "--chdir", HOME]
    for key, value in sandbox_env(limits, HOME).items():
        args += ["--setenv", key, value]
    args += [sys.executable, "-s", "-m", "cvkit.course.assignments.runner"]  # the venv's own (it finds pyvenv.cfg)
    return args, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, str(box)


def plain_command(box: Path, limits: Limits) -> tuple[list[str], dict[str, str], str]:
    """The runner as a plain child process (no isolation), for machines without bubblewrap."""
    env = sandbox_env(limits, str(box))
    if "SYSTEMROOT" in os.environ:  # Windows needs it to start Python
        env["SYSTEMROOT"] = os.environ["SYSTEMROOT"]
    return [sys.executable, "-s", "-m", "cvkit.course.assignments.runner"], env, str(box)


def set_limits(limits: Limits) -> None:
    """In the child before it executes the sandbox (POSIX only): ``setrlimit``, and on Linux, die with the grader."""
    try:
        import resource
    except ImportError:  # Windows
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
        except (OSError, AttributeError):
            pass
    size = limits.file_size_mb * 2**20
    data = int((limits.memory_gb + 3.0) * 2**30)  # a backstop above the watched limit (torch alone maps ~1 GiB)
    # RLIMIT_NPROC is left alone: it counts every process of the user (the grader's too) and never binds root;
    # the process count is watched from outside instead.
    for name, value in (("RLIMIT_FSIZE", size), ("RLIMIT_CORE", 0), ("RLIMIT_DATA", data)):
        res = getattr(resource, name, None)
        if res is None:
            continue
        try:
            _, hard = resource.getrlimit(res)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):
            pass
