"""Checkpoints that survive interruptions: written atomically, with everything a resume needs."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename).

    A crash or a kernel restart mid-write leaves the previous checkpoint intact, never a
    truncated file.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Loaded with ``torch.load(..., weights_only=True)``: tensors, numbers, strings and containers only, so a file
    from elsewhere cannot run code when it is opened (unpickling an arbitrary object can).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds other objects than tensors and plain containers, or is not a cvkit checkpoint
            (no ``model`` and ``epoch`` entries).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} holds objects other than tensors and plain containers, which weights_only loading refuses "
            f"({str(exc).splitlines()[0][:200]}); a cvkit checkpoint never does. Open it with "
            "torch.load(path, weights_only=False) yourself only if you trust where it came from"
        ) from exc
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        raise ValueError(f"{path} is not a cvkit training checkpoint (expected a dict with 'model' and 'epoch')")
    return state


def rng_state() -> dict[str, Any]:
    """The global random states a resumed run must restore (torch CPU and CUDA)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`, whatever device the checkpoint was loaded to.

    Generator states are CPU byte tensors (``uint8``), and ``torch.set_rng_state`` refuses any other ("RNG state
    must be a torch.ByteTensor"). :func:`load_checkpoint` with ``map_location="cuda"``, as ``fit`` loads on a GPU,
    moves every tensor of the file to the GPU, these too: before this was handled, every run resumed on a GPU
    stopped there (11_4's full profile on an H200, 2026-12-04). A checkpoint written on a machine with more GPUs
    than this one restores the generators of the GPUs this one has; one written without CUDA leaves them alone.

    Args:
        state: ``{"torch": (N,) uint8, "cuda": [(M,) uint8, ...] (optional)}`` on any device, as :func:`rng_state`
            returned it.
    """
    torch.set_rng_state(state["torch"].to("cpu", torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.to("cpu", torch.uint8) for s in state["cuda"]][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)
