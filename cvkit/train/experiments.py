"""An experiment log for projects: one JSON line per run, never overwritten.

A mini-project compares a baseline with a few variants over several seeds. Each finished run is
appended to a JSON-lines file with its configuration, its metrics and what it ran on, so the
results table of the report is computed from the log, and a run from last week is still there
when the notebook is run again (nothing is rewritten or deleted)::

    log = ExperimentLog("runs/log.jsonl")
    log.record("baseline", {"model": "lenet5", "augment": False, "seed": 0}, {"test_accuracy": 0.81})
    log.summary("test_accuracy", group_by="name")   # mean, std, n per run name (this session's runs)

The notebook that writes the log is the source of truth; the log is what the report cites.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class RunSummary:
    """Mean, sample standard deviation and count of one metric over a group of runs.

    Attributes:
        group: the value of the ``group_by`` key shared by the runs.
        mean, std: of the metric (``std`` is ``nan`` for a single run; ddof = 1).
        n: number of runs.
        values: the metric of each run, in log order.
    """

    group: Any
    mean: float
    std: float
    n: int
    values: tuple[float, ...]


class ExperimentLog:
    """Append-only log of runs in a JSON-lines file (one object per line).

    Each row holds ``name``, ``config`` (dict), ``metrics`` (dict of numbers), ``notes``, ``time``
    (local time, ``YYYY-mm-dd HH:MM:SS``), ``session`` (one id per :class:`ExperimentLog` object, so a
    notebook run can tell its own rows from earlier ones), ``torch`` and ``device``.

    Args:
        path: the ``.jsonl`` file; its folder is created. An existing file is kept and appended to.

    Raises:
        ValueError: ``path`` is an existing folder.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; give the log a file name such as {self.path / 'log.jsonl'}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.session = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]

    def record(
        self, name: str, config: Mapping[str, Any], metrics: Mapping[str, float], notes: str = "", device: str = ""
    ) -> dict:
        """Append one finished run; returns the row written.

        Args:
            name: the run's name (``"baseline"``, ``"augment"``); runs of several seeds share a name.
            config: what defines the run (model, sizes, learning rate, seed, ...): JSON-able values.
            metrics: the numbers it produced (``{"test_accuracy": 0.81, "seconds": 12.0}``).
            notes: a sentence for the report (what you saw, what went wrong).
            device: what it ran on (``"cpu"``, ``"cuda:0"``).

        Raises:
            TypeError: ``config`` is not JSON-able, or a metric is not a real number.
            ValueError: an empty ``name``.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a run needs a non-empty name, got {name!r}")
        values = {}
        for key, value in dict(metrics).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "item"):
                raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
            values[str(key)] = float(value.item() if hasattr(value, "item") else value)
        try:
            json.dumps(dict(config))
        except TypeError as exc:
            raise TypeError(
                f"the config of run {name!r} must hold JSON values (numbers, strings, lists, dicts): {exc}"
            ) from exc
        row = {
            "name": name,
            "config": dict(config),
            "metrics": values,
            "notes": notes,
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "session": self.session,
            "torch": torch.__version__,
            "device": device or platform.machine(),
        }
        with open(self.path, "a", encoding="utf-8") as fh:  # one write of one line: a crash leaves whole lines
            fh.write(json.dumps(row, sort_keys=False) + "\n")
        return row

    def rows(self, this_session: bool = False) -> list[dict]:
        """Every run in the file (or only this object's, with ``this_session``), oldest first.

        Lines that are not JSON objects (a crash mid-write, a hand edit) are skipped.
        """
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "name" in row and (not this_session or row.get("session") == self.session):
                out.append(row)
        return out

    def summary(self, metric: str, group_by: str = "name", this_session: bool = True) -> list[RunSummary]:
        """Mean and standard deviation of ``metric`` per group of runs, groups in first-seen order.

        Args:
            metric: a key of the rows' ``metrics``.
            group_by: ``"name"``, or a key of the rows' ``config``.
            this_session: only the runs recorded by this object (default), else every run in the file.

        Raises:
            KeyError: no run has ``metric`` (the message lists the metrics there are).
        """
        rows = self.rows(this_session)
        groups: dict[Any, list[float]] = {}
        for row in rows:
            if metric not in row.get("metrics", {}):
                continue
            key = row["name"] if group_by == "name" else row.get("config", {}).get(group_by)
            groups.setdefault(json.dumps(key) if isinstance(key, (list, dict)) else key, []).append(
                float(row["metrics"][metric])
            )
        if not groups:
            known = sorted({m for r in rows for m in r.get("metrics", {})})
            raise KeyError(f"no run has the metric {metric!r}; the runs have {known}")
        return [_summarize(k, v) for k, v in groups.items()]

    def to_markdown(self, metrics: Iterable[str], group_by: str = "name", this_session: bool = True) -> str:
        """A Markdown table: one row per group, ``mean ± std (n)`` per metric (the report's results table)."""
        metrics = list(metrics)
        columns = {m: {s.group: s for s in self.summary(m, group_by, this_session)} for m in metrics}
        groups = list(dict.fromkeys(g for m in metrics for g in columns[m]))
        lines = [f"| {group_by} | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
        for g in groups:
            cells = []
            for m in metrics:
                s = columns[m].get(g)
                cells.append(
                    "-" if s is None else f"{s.mean:.4g} ± {s.std:.2g} ({s.n})" if s.n > 1 else f"{s.mean:.4g} (1)"
                )
            lines.append(f"| {g} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _summarize(group: Any, values: list[float]) -> RunSummary:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return RunSummary(group, mean, std, n, tuple(values))
