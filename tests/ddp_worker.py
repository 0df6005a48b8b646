"""Trains tiny models with cvkit.train.fit, in one process or under torchrun; run by tests/test_train_distributed.py.

    python tests/ddp_worker.py SETTINGS_JSON                                   # one process
    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py SETTINGS_JSON

SETTINGS_JSON: ``{"report": DIR, "watch": DIR, "runs": [{"name", "model", "epochs", "images",
"batch_size", "checkpoint_dir", "interrupt_after", "options"}, ...]}`` (``options``: more TrainConfig fields). Each run trains on the first
``images`` scikit-learn digits (8x8) with a DeviceLoader (flip and one-pixel translations), the
next 200 digits as validation. Each process writes, into ``report``, ``<name>-rank<r>.pt``
(its final weights) and ``rank<r>.json``: its History per run, the first dropout mask it drew,
and every file it opened for writing, renamed or replaced under ``watch`` (Python audit hooks:
the files cvkit.train itself writes, seen from inside each process).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.data import DeviceLoader, flip_and_translate, load_digits
from cvkit.train import TrainConfig, fit, process_info

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class RecordingDropout(nn.Dropout):
    """``nn.Dropout`` (same draws from the global generator) that keeps the first mask it drew."""

    first_mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        mask = F.dropout(torch.ones_like(x), self.p, training=True)  # exactly the mask nn.Dropout multiplies by
        if self.first_mask is None:
            self.first_mask = mask > 0
        return x * mask


def build(kind: str) -> nn.Module:
    """``plain``: no BatchNorm, no dropout (one and two processes compute the same function);
    ``bn_dropout``: per-process BatchNorm statistics and per-process dropout masks."""
    torch.manual_seed(7)  # the same initial weights in every run (DDP would copy process 0's anyway)
    if kind == "plain":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 10),
        )
    if kind == "bn_dropout":
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            RecordingDropout(0.3),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 10),
        )
    raise ValueError(f"unknown model kind {kind!r}")


class Interrupt(Exception):
    """Raised by a callback to stop a run after an epoch, as a killed job would stop."""


def main() -> None:
    settings = json.loads(sys.argv[1])
    watch = str(Path(settings["watch"]).resolve())
    writes: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & WRITE_FLAGS)
        elif event in ("os.rename", "os.replace"):
            path, writing = args[1], True
        else:
            return
        if writing and isinstance(path, (str, os.PathLike)) and os.path.abspath(path).startswith(watch):
            writes.append(os.path.relpath(os.path.abspath(path), watch))

    sys.addaudithook(audit)

    digits = load_digits()
    report: dict = {"runs": {}}
    for run in settings["runs"]:
        n = run["images"]
        train = DeviceLoader(
            digits.images[:n], digits.labels[:n], run["batch_size"], augment=flip_and_translate(1), seed=3
        )
        val = DeviceLoader(digits.images[1500:1700], digits.labels[1500:1700], 64, shuffle=False)
        model = build(run["model"])
        config = TrainConfig(
            epochs=run["epochs"],
            lr=run.get("lr", 1e-2),
            progress=False,
            verbose=True,
            checkpoint_dir=run.get("checkpoint_dir"),
            **run.get("options", {}),
        )

        def stop(epoch, history, after=run.get("interrupt_after")):
            if epoch == after:
                raise Interrupt

        try:
            history = fit(model, train, val, config=config, callbacks=[stop])
            rows, interrupted = history.rows, False
        except Interrupt:
            rows, interrupted = None, True
        info = process_info()
        torch.save(model.state_dict(), Path(settings["report"]) / f"{run['name']}-rank{info.rank}.pt")
        masks = [m.first_mask for m in model.modules() if isinstance(m, RecordingDropout) and m.first_mask is not None]
        report["runs"][run["name"]] = {
            "history": rows,
            "interrupted": interrupted,
            "first_dropout_mask": masks[0].flatten().tolist() if masks else None,
        }
    info = process_info()
    report.update(
        rank=info.rank,
        world_size=info.world_size,
        backend=info.backend,
        writes=writes,
        loader_shards=train.num_shards,
        threads=torch.get_num_threads(),
    )
    (Path(settings["report"]) / f"rank{info.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
