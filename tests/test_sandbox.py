"""The sandbox a submission runs in: what it can see and reach, its limits, and that nothing outlives it.

One real bubblewrap sandbox runs a handful of probing cells (about 5 s); the same cells run once
without a sandbox to show what the isolation adds. Where bubblewrap does not work, the sandboxed test
skips locally and fails under CI (``ci/install.sh`` installs bubblewrap).
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import psutil
import pytest

from cvkit.course.assignments.execute import execute_submission, prepare_box
from cvkit.course.assignments.model import Rule
from cvkit.course.assignments.rules import resolve_rules
from cvkit.course.assignments.sandbox import Limits, package_root, python_roots, sandbox_command, sandbox_status
from cvkit.course.assignments.testcells import split_test_cell

ROOT = Path(__file__).resolve().parents[1]

DAEMON_SECONDS = "317"  # the daemon is `sleep 317`: matched by its whole command line, not any `sleep` on the machine
# (a shell loop's `sleep 10` elsewhere on the machine once failed this test)

PROBES = [
    (
        "fs",
        "import os, json\nprint(json.dumps({'root': sorted(os.listdir('/')), 'cwd': os.getcwd(), 'home': sorted(os.listdir('.'))}))",
    ),
    (
        "course",
        f"import os\nprint(os.path.exists({str(ROOT / 'solutions')!r}), os.path.exists({str(ROOT / 'tests')!r}))",
    ),
    (
        "net",
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    print('online')\nexcept OSError as e:\n    print('offline', e.errno)",
    ),
    ("pids", "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"),
    (
        "write",
        "import os\ntry:\n    open(os.__file__, 'a')\n    print('python env writable')\nexcept OSError:\n    print('python env read-only')",
    ),
    (
        "big",
        "try:\n    open('big.bin', 'wb').truncate(2 * 2**30)\n    print('wrote 2 GB')\nexcept OSError as e:\n    print('refused', e.errno)",
    ),
    (
        "daemon",
        f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    with open('/tmp/daemon', 'w') as f: f.write('x')\n    os.execvp('sleep', ['sleep', '{DAEMON_SECONDS}'])\nprint('forked')",
    ),
    ("exit", "exit()\nprint('not printed')"),
]

TEST = """
import torch
from cvkit.grading import check_tensor, run_test


def answers(student):
    return {"y": student.double(torch.ones(2))}


def checks(got):
    check_tensor(got["y"], torch.full((2,), 2.0), "double")


run_test(None, answers, checks)
"""


def _run(tmp_path: Path, mode: str):
    sandbox_half, _ = split_test_cell(TEST)
    cells = [(i, "", src) for i, (_, src) in enumerate(PROBES)]
    cells.append(
        (
            len(cells),
            "",
            "import torch\nimport torch.nn.functional as F\ndef double(x):\n    return getattr(F, 'l' + 'inear')(x, torch.eye(2) * 2)",
        )
    )
    cells.append((len(cells), "t", ""))
    box = tmp_path / f"box-{mode}"
    prepare_box(box, {"cells": []}, None)
    rules = resolve_rules((Rule(("aten::linear", "aten::addmm", "aten::mm"), ("*",), "no library matrix products"),))
    before = {p.pid for p in psutil.process_iter()}
    execution = execute_submission(
        cells,
        {"t": {"source": sandbox_half, "rules": [0]}},
        [r.to_json() for r in rules],
        box,
        Limits(memory_gb=2, time_limit=120, cell_timeout=20),
        mode,
        [ROOT],
        tmp_path / f"log-{mode}.txt",
    )
    time.sleep(0.5)
    out = {name: "".join(o.get("text", "") for o in execution.records[i].outputs) for i, (name, _) in enumerate(PROBES)}
    return execution, out, _daemons(before)


def _daemons(before: set[int]) -> list:
    """Processes started since ``before`` whose command line ends with the daemon probe's ``sleep 317``."""
    return [
        p
        for p in psutil.process_iter(["pid", "cmdline"])
        if p.pid not in before and (p.info["cmdline"] or [])[-2:] == ["sleep", DAEMON_SECONDS]
    ]


def test_a_submission_sees_only_its_folder_and_leaves_nothing_behind(tmp_path):
    works, why = sandbox_status()
    if not works:
        if os.environ.get("CI"):
            pytest.fail(f"bubblewrap does not work on the CI machine ({why}); ci/install.sh installs it")
        pytest.skip(f"bubblewrap does not work here: {why}")
    execution, out, leftovers = _run(tmp_path, "bwrap")
    assert execution.isolated and not execution.stopped, execution.message
    fs = json.loads(out["fs"])
    assert fs["cwd"] == "/home/student" and "submission.ipynb" in fs["home"] and "answers" in fs["home"]
    assert out["course"].split() == ["False", "False"], "no view of solutions/ or tests/"
    assert out["net"].startswith("offline")
    assert json.loads(out["pids"]) == [1, 2], "its own PID namespace: bubblewrap's init and the runner"
    assert out["write"].strip() == "python env read-only"
    assert out["big"].startswith("refused"), "the file-size limit"
    assert out["daemon"].strip() == "forked"
    assert leftovers == [], "a daemon the submission started outlived its sandbox"
    exit_record = execution.records[len(PROBES) - 1]
    assert exit_record.events == ["exit"] and "not printed" not in json.dumps(exit_record.outputs)
    test = execution.records[len(PROBES) + 1]
    assert test.violations and {what for _, what in test.violations} & {"aten::linear", "aten::addmm", "aten::mm"}, (
        test.violations
    )
    assert (
        not (tmp_path / "box-bwrap" / "big.bin").exists()
        or (tmp_path / "box-bwrap" / "big.bin").stat().st_size <= 256 * 2**20
    )


def test_without_a_sandbox_it_runs_but_is_not_isolated(tmp_path):
    execution, out, leftovers = _run(tmp_path, "none")
    for p in leftovers:  # what the sandbox would have prevented: clean up after the demonstration
        p.kill()
    assert not execution.isolated and not execution.stopped, execution.message
    assert out["course"].split() == ["True", "True"], "without bubblewrap the course is in plain view"
    assert out["big"].startswith("refused"), "the file-size limit holds without the sandbox too"
    test = execution.records[len(PROBES) + 1]
    assert test.violations, "forbidden calls are caught without the sandbox too"


def test_a_grading_job_is_plain_picklable_data(tmp_path):
    """A job can travel to another process (a Dask worker): it is plain data, and so is its result."""
    from cvkit.course.assignments.autograde import build_spec, prepare
    from cvkit.course.assignments.grade import GradeJob, GradeResult
    from cvkit.course.assignments.model import load_assignment

    a = load_assignment("a1_convolution", ROOT)
    spec = build_spec(a, prepare(a, tmp_path / "course"), [ROOT])
    job = GradeJob(spec, "ann", "Ann", None, ("a note",), str(tmp_path / "work"), "none", 1, "")
    again = pickle.loads(pickle.dumps(job))
    assert again.spec.tests == spec.tests and again.spec.rules == spec.rules and again.student == "ann"
    assert pickle.loads(pickle.dumps(GradeResult("ann", "graded", {"t": 1.0}, 1.0, 1.0))).scores == {"t": 1.0}


def test_the_private_tmp_is_mounted_before_the_environment_so_a_checkout_in_tmp_stays_visible(tmp_path):
    """bwrap mounts in argument order: a ``--tmpfs /tmp`` after the read-only binds hid a virtual environment or a
    checkout under /tmp (a fresh CI clone there graded every submission 'ungradable: the sandbox could not start')."""
    argv, _, _ = sandbox_command(tmp_path / "box", Limits(), hidden=[])
    tmpfs = max(i for i, a in enumerate(argv) if a == "--tmpfs" and argv[i + 1] == "/tmp")
    binds = [argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind"]
    assert str(package_root()) in binds and all(
        str(r) in binds for r in python_roots() if not str(r).startswith("/usr")
    )
    first_bind = min(i for i, a in enumerate(argv) if a == "--ro-bind")
    assert tmpfs < first_bind, "the private /tmp must be mounted before anything is bound into the sandbox"


def test_the_daemon_finder_finds_a_surviving_daemon():
    """What the leftovers check looks for: a detached ``sleep 317`` started after ``before``, and nothing else."""
    import subprocess

    before = {p.pid for p in psutil.process_iter()}
    other = subprocess.Popen(["sleep", "10"], start_new_session=True)  # another `sleep` on the machine: not ours
    daemon = subprocess.Popen(["sleep", DAEMON_SECONDS], start_new_session=True)
    try:
        assert [p.pid for p in _daemons(before)] == [daemon.pid]
    finally:
        for proc in (other, daemon):
            proc.kill()
            proc.wait()


# A child forked from the kernel shares all its pages with it until it writes to them (copy-on-write). Summing the
# processes' resident set sizes counts those pages twice; the watchdog must count them once (matplotlib forks
# `fc-list` from a 1 GiB kernel, and an honest a4_detection submission was stopped at 2 GiB for that in CI).
FORK_CELLS = [
    "import os, time\nprint(open('/proc/self/statm').read().split()[1])",  # the runner alone (B; pages), 0.70 GiB here
    "blob = bytearray(b'\\x01') * (2**30)",
    # the child only reads: its pages stay shared (RSS sum 2B + 2 GiB ~ 3.4 GiB, PSS sum B + 1 GiB ~ 1.7 GiB)
    "pid = os.fork()\nif pid == 0:\n    time.sleep(2.0)\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('shared fork ended')",
    # the child writes every page of its copy: now the two really use B + 2 GiB ~ 2.7 GiB together
    "pid = os.fork()\nif pid == 0:\n    for i in range(0, len(blob), 4096):\n        blob[i] = 2\n    time.sleep(3.0)\n    os._exit(0)\nos.waitpid(pid, 0)\nprint('private fork ended')",
]


def test_the_memory_limit_counts_pages_a_forked_child_shares_once(tmp_path):
    works, _ = sandbox_status()
    box = tmp_path / "box"
    prepare_box(box, {"cells": []}, None)
    execution = execute_submission(
        [(i, "", src) for i, src in enumerate(FORK_CELLS)],
        {},
        [],
        box,
        Limits(memory_gb=2.25, time_limit=120, cell_timeout=30),
        "bwrap" if works else "none",
        [ROOT],
        tmp_path / "log.txt",
    )
    records = [execution.records.get(i) for i in range(len(FORK_CELLS))]
    text = ["".join(o.get("text", "") for o in r.outputs) if r else "" for r in records]
    baseline = int(text[0]) * os.sysconf("SC_PAGE_SIZE")
    # the 2.25 GiB limit sits between B + 1 and B + 2 GiB with a margin of 0.25 GiB or more for B in [0.5, 1.0]
    assert 0.5 * 2**30 <= baseline <= 2**30, (
        f"the runner alone uses {baseline / 2**30:.2f} GiB; the limit assumes 0.5-1"
    )
    assert "shared fork ended" in text[2], f"stopped although the child shared its pages: {execution.message}"
    assert execution.stopped == "memory" and execution.stopped_at == 3, (execution.stopped, execution.message)
    assert "2.25 GiB" in execution.message
