"""Course checkpoints: small models trained by the lessons' own code, shipped with the course.

Some lessons make their point only after more training than the fast profile (two CPU cores, 90 s) has: DETR's
detections, guided diffusion samples, a ViT's attention, self-supervised features, a small SAM, CLIP. For these the
course ships a checkpoint: the lesson's training function (the one its notebook calls) run once with larger settings.
In the fast profile a notebook still trains live, so the loop is seen, then loads the checkpoint to show what
training produces; the full profile trains its own model.

Each checkpoint is two files in ``cvkit/lessons/weights/`` (package data, so ``pip install git+...`` gets them):

* ``NAME.pt``: ``{"format": 1, "name": NAME, "state_dict": {...}}``, floating tensors stored as float16 (halves the
  size; the metrics in the manifest are measured *after* the round trip), loaded with ``weights_only=True``;
* ``NAME.json``: the manifest: the command that made it, seed, device, training time, versions, the settings, the
  loss per epoch, the metrics reached, the file's size and SHA-256 (checked on every load).

Retrain any of them with ``cvkit checkpoints retrain NAME`` (``--max-minutes M`` trains in resumable chunks: run the
same command again to continue). The registry below is a table: one :class:`CourseCheckpoint` per name.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from cvkit.runtime import describe_device, pick_device

FORMAT = 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # the shipped checkpoints (package data)
SIZE_BUDGET_MB = 4.0  # per checkpoint file
TOTAL_BUDGET_MB = 25.0  # all shipped checkpoints together


class TrainingPaused(RuntimeError):
    """A retrain stopped after its time budget; its progress is saved and the same command resumes it."""


@dataclass(frozen=True)
class CourseCheckpoint:
    """How one course checkpoint is made, stored and judged.

    Attributes:
        name: the checkpoint's name (``"detr"``), also its file name.
        lesson: the notebook that loads it (``"08_object_detection_3_detr"``).
        description: one line: what the model is and what it shows.
        build: ``build() -> nn.Module``: the architecture, untrained (the weights are loaded into it).
        train: ``train(**config, seed=, device=, checkpoint_dir=, callbacks=, progress=) -> (model, history)``: the
            lesson's own training function, the one its notebook calls.
        config: the settings the checkpoint is trained with (passed to ``train``).
        evaluate: ``evaluate(model) -> {metric: float}`` on held-out data, written into the manifest; the notebook's
            checks read the same quantities.
        tolerances: per metric, how far a retrain may land from the shipped value and still count as reproduced.
        seed: the training seed.
        storage: ``"float16"`` (default) or ``"float32"`` for the floating tensors in the file.
    """

    name: str
    lesson: str
    description: str
    build: Callable[[], nn.Module]
    train: Callable[..., tuple[nn.Module, Any]]
    config: Mapping[str, Any]
    evaluate: Callable[[nn.Module], dict[str, float]]
    tolerances: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    storage: str = "float16"


_CHECKPOINTS: dict[str, CourseCheckpoint] = {}


def register_checkpoint(entry: CourseCheckpoint) -> CourseCheckpoint:
    """Add ``entry`` to the table (each lesson module registers its own on import).

    Raises:
        ValueError: the name is taken, or ``storage`` is not ``"float16"``/``"float32"``.
    """
    if entry.name in _CHECKPOINTS:
        raise ValueError(f"a course checkpoint named {entry.name!r} is already registered")
    if entry.storage not in ("float16", "float32"):
        raise ValueError(f"storage must be 'float16' or 'float32', got {entry.storage!r}")
    _CHECKPOINTS[entry.name] = entry
    return entry


def list_checkpoints() -> list[str]:
    """The names of every course checkpoint, sorted (importing this module imports the package ``cvkit.lessons``
    first, and with it every lesson module, which registers its checkpoints)."""
    return sorted(_CHECKPOINTS)


def get_checkpoint(name: str) -> CourseCheckpoint:
    """The registry entry of ``name``.

    Raises:
        ValueError: no such checkpoint (the message lists them).
    """
    if name not in _CHECKPOINTS:
        raise ValueError(f"no course checkpoint named {name!r}; choose one of {sorted(_CHECKPOINTS)}")
    return _CHECKPOINTS[name]


# ---------------------------------------------------------------------------------------------- files and loading


def checkpoint_files(name: str, folder: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(weights, manifest)`` paths of ``name`` in ``folder`` (default: the shipped ``cvkit/lessons/weights``)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    return folder / f"{name}.pt", folder / f"{name}.json"


def read_manifest(name: str, folder: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest of checkpoint ``name`` (see the module docstring).

    Raises:
        FileNotFoundError: no manifest (the message says how to make one).
    """
    _, manifest = checkpoint_files(name, folder)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"no manifest for course checkpoint {name!r} at {manifest}; make it with: cvkit checkpoints retrain {name}"
        )
    return json.loads(manifest.read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict stored in a course-checkpoint file, floats as float32, loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds other objects than tensors and containers, or is not a course checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no course checkpoint at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for foreign objects, RuntimeError for a truncated or LFS-pointer file
        raise ValueError(
            f"{path} is not a readable course checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or not isinstance(blob.get("state_dict"), dict):
        raise ValueError(
            f"{path} is not a course checkpoint of format {FORMAT} (expected a dict with 'format' and 'state_dict')"
        )
    return {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}


def load_course_checkpoint(
    name: str, device: str | torch.device | None = None, folder: str | os.PathLike | None = None, verbose: bool = True
) -> nn.Module:
    """The model of course checkpoint ``name``, its weights loaded, in eval mode, on ``device``.

    The file's SHA-256 must equal the manifest's (a stale or partly downloaded file is refused), and it is read
    with ``torch.load(..., weights_only=True)``, so it cannot run code.

    Args:
        name: a name from :func:`list_checkpoints` (``"detr"``, ``"ddpm_fashion"``, ...).
        device: where to put the model (``None``: :func:`cvkit.runtime.pick_device`).
        folder: where the files are (default: the shipped ones).
        verbose: print one line: what was loaded, how it was trained, its metrics.

    Raises:
        ValueError: unknown name, a file that is not a course checkpoint, or whose hash differs from the manifest.
        FileNotFoundError: the files are missing (the message says how to retrain).
    """
    entry = get_checkpoint(name)
    weights, _ = checkpoint_files(name, folder)
    manifest = read_manifest(name, folder)
    if not weights.is_file():
        raise FileNotFoundError(
            f"course checkpoint {name!r} has a manifest but no weights at {weights}; "
            f"retrain it with: cvkit checkpoints retrain {name}"
        )
    digest = _sha256(weights)
    if digest != manifest.get("sha256"):
        raise ValueError(
            f"{weights} does not match its manifest (sha256 {digest[:12]}..., manifest "
            f"{str(manifest.get('sha256'))[:12]}...): a stale or damaged file; retrain it with "
            f"cvkit checkpoints retrain {name}"
        )
    model = entry.build()
    model.load_state_dict(read_state_dict(weights))
    model.to(pick_device(device)).eval()
    if verbose:
        metrics = ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in manifest.get("metrics", {}).items()
        )
        print(f"course checkpoint {name!r}: {manifest.get('summary', '')} ({metrics})")
    return model


def checkpoint_available(name: str, folder: str | os.PathLike | None = None) -> bool:
    """Whether this copy of the course has both files of checkpoint ``name`` (weights and manifest) in ``folder``.

    Raises:
        ValueError: unknown name.
    """
    get_checkpoint(name)
    weights, manifest = checkpoint_files(name, folder)
    return weights.is_file() and manifest.is_file()


def not_shipped_message(name: str, instead: str = "using the model trained here") -> str:
    """The one line a notebook prints when course checkpoint ``name`` is absent: what is missing, how to make it,
    and (``instead``) what the notebook does without it."""
    return (
        f"course checkpoint {name!r} is not shipped with this copy of the course (make it with: "
        f"cvkit checkpoints retrain {name}); {instead}"
    )


def course_checkpoint_or(
    name: str,
    live: nn.Module,
    device: str | torch.device | None = None,
    folder: str | os.PathLike | None = None,
    verbose: bool = True,
) -> tuple[nn.Module, bool]:
    """The course checkpoint ``name`` when this copy of the course ships it, else ``live`` (the model trained here).

    A notebook trains live, then calls this to show what longer training produces where the checkpoint exists; a
    checkout without the weights (not trained yet, or removed) still runs, on its own model.

    Args:
        name: a name from :func:`list_checkpoints`.
        live: the model to fall back on (returned unchanged).
        device, folder, verbose: as in :func:`load_course_checkpoint`; with ``verbose`` a missing checkpoint prints
            :func:`not_shipped_message`.

    Returns:
        ``(model, from_checkpoint)``.

    Raises:
        ValueError: unknown name, or a present file that fails its manifest's hash.
    """
    if checkpoint_available(name, folder):
        return load_course_checkpoint(name, device=device, folder=folder, verbose=verbose), True
    if verbose:
        print(not_shipped_message(name))
    return live, False


# ---------------------------------------------------------------------------------------------- retraining


def _pause_after(minutes: float | None) -> list[Callable]:
    if minutes is None:
        return []
    start = time.perf_counter()

    def pause(epoch: int, history) -> None:
        if (time.perf_counter() - start) / 60 >= minutes:
            raise TrainingPaused(f"paused after epoch {epoch} ({minutes:g} min budget of this chunk); progress saved")

    return [pause]


def _state_for_storage(model: nn.Module, storage: str) -> dict[str, torch.Tensor]:
    dtype = torch.float16 if storage == "float16" else torch.float32
    return {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).clone()
        for k, v in model.state_dict().items()
    }


def _versions() -> dict[str, str]:
    import numpy
    import torchvision

    from cvkit import __version__

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "cvkit": __version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--", "cvkit"],
                cwd=Path(__file__).parents[2],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            versions["git"] = commit.stdout.strip() + (" (cvkit/ modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return versions


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def retrain(
    name: str,
    device: str | torch.device | None = None,
    out: str | os.PathLike | None = None,
    work_dir: str | os.PathLike | None = None,
    max_minutes: float | None = None,
    progress: bool = False,
    command: str | None = None,
) -> dict[str, Any]:
    """Train course checkpoint ``name`` with its lesson's own training function and write its files and manifest.

    Args:
        name: a name from :func:`list_checkpoints`.
        device: where to train (``None``: the best available).
        out: folder for ``NAME.pt`` and ``NAME.json`` (default: the shipped ``cvkit/lessons/weights``).
        work_dir: where training checkpoints go (``last.pt``, resumable; default ``build/checkpoints/NAME``); it is
            deleted after a finished run.
        max_minutes: stop after the first epoch that ends past this many minutes and raise :class:`TrainingPaused`;
            calling again with the same ``work_dir`` resumes (for machines where one run may not hold the CPU long).
        progress: show the training loop's progress bars.
        command: the command line recorded in the manifest (default: a ``cvkit checkpoints retrain`` line).

    Returns:
        the manifest written.

    Raises:
        TrainingPaused: ``max_minutes`` ran out before the last epoch (progress saved in ``work_dir``).
        ValueError: unknown name, or the file exceeds the per-checkpoint size budget.
    """
    entry = get_checkpoint(name)
    dev = pick_device(device)
    work = Path(work_dir) if work_dir is not None else Path("build") / "checkpoints" / name
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(out) if out is not None else WEIGHTS_DIR
    started = _dt.datetime.now(_dt.timezone.utc)
    tic = time.perf_counter()
    model, history = entry.train(
        **entry.config,
        seed=entry.seed,
        device=dev,
        checkpoint_dir=str(work),
        callbacks=_pause_after(max_minutes),
        progress=progress,
    )
    train_seconds = float(sum(history["seconds"])) if len(history) else time.perf_counter() - tic

    out_dir.mkdir(parents=True, exist_ok=True)
    weights, manifest_path = checkpoint_files(name, out_dir)
    blob = {"format": FORMAT, "name": name, "state_dict": _state_for_storage(model, entry.storage)}
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        torch.save(blob, fh)
    size_mb = Path(tmp).stat().st_size / 2**20
    if size_mb > SIZE_BUDGET_MB:
        Path(tmp).unlink()
        raise ValueError(
            f"{name}: {size_mb:.2f} MB exceeds the {SIZE_BUDGET_MB} MB budget of a course checkpoint; "
            "make the model smaller or store float16"
        )
    os.replace(tmp, weights)

    # the metrics of the file as shipped: reload it (float16 round trip) into a fresh model, then evaluate
    tic_eval = time.perf_counter()
    fresh = entry.build()
    fresh.load_state_dict(read_state_dict(weights))
    fresh.to(dev).eval()
    metrics = {k: float(v) for k, v in entry.evaluate(fresh).items()}
    eval_seconds = time.perf_counter() - tic_eval
    device_note = describe_device(dev)
    manifest = {
        "name": name,
        "lesson": entry.lesson,
        "description": entry.description,
        "summary": f"trained {train_seconds / 60:.1f} min on {device_note}, seed {entry.seed}",
        "command": command or f"cvkit checkpoints retrain {name} --device {dev.type}",
        "seed": entry.seed,
        "device": device_note,
        "cpu_threads": torch.get_num_threads(),
        "started": started.isoformat(timespec="seconds"),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "epochs": len(history),
        "versions": _versions(),
        "config": _rounded(dict(entry.config)),
        "train_loss": _rounded([float(v) for v in history["train_loss"]]) if len(history) else [],
        "metrics": _rounded(metrics),
        "tolerances": dict(entry.tolerances),
        "parameters": sum(p.numel() for p in fresh.parameters()),
        "storage": entry.storage,
        "bytes": weights.stat().st_size,
        "sha256": _sha256(weights),
        "host": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "executable": Path(sys.executable).name,
        },
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return manifest


def compare_manifests(
    name: str, candidate: str | os.PathLike, reference: str | os.PathLike | None = None
) -> tuple[bool, list[str]]:
    """Does a retrain (manifest in ``candidate``) reproduce the shipped checkpoint's metrics within their tolerances?

    Returns:
        ``(ok, lines)``: ``ok`` when every metric with a tolerance is within it; one line per metric.

    Raises:
        FileNotFoundError: a manifest is missing.
    """
    ref = read_manifest(name, reference)
    new = read_manifest(name, candidate)
    tolerances = get_checkpoint(name).tolerances
    ok, lines = True, []
    for metric, value in ref["metrics"].items():
        other = new["metrics"].get(metric)
        tol = tolerances.get(metric)
        if other is None:
            ok = False
            lines.append(f"{metric}: shipped {value:.4f}, missing from the retrain")
            continue
        within = tol is None or abs(other - value) <= tol
        ok &= within
        verdict = "no tolerance set" if tol is None else ("within" if within else "OUTSIDE") + f" +-{tol:g}"
        lines.append(f"{metric}: shipped {value:.4f}, retrained {other:.4f} (diff {other - value:+.4f}; {verdict})")
    return ok, lines


def total_size_mb(folder: str | os.PathLike | None = None) -> float:
    """Megabytes of every ``.pt`` file in ``folder`` (default: the shipped checkpoints)."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR
    return sum(p.stat().st_size for p in folder.glob("*.pt")) / 2**20
