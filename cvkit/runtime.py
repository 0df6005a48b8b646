"""Where the code runs: device choice, seeds, run profiles and an environment report.

Every notebook starts with ``P = cvkit.runtime.use_profile(PROFILE, fast=FAST, full=FULL)``:
``"auto"`` resolves to the full profile on a CUDA GPU and to the fast profile
elsewhere, so the same notebook finishes in seconds in CI (2 CPU cores) and gives
results worth looking at on a student's Colab T4.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Mapping

import numpy as np
import torch

Profile = Literal["auto", "fast", "full"]
PROFILES = ("auto", "fast", "full")
DeviceKind = Literal["cuda", "mps", "cpu"]


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Args:
        device: ``None`` or ``"auto"`` picks the best available in the order
            cuda, mps, cpu; anything else is passed to ``torch.device`` and
            checked for availability.

    Returns:
        torch.device: for example ``device(type='cuda', index=0)`` or ``device(type='cpu')``.
        Under ``torchrun`` (``LOCAL_RANK`` set), CUDA without an index means this process's own
        GPU, ``cuda:LOCAL_RANK``, so that each process's data and model land on its GPU.

    Raises:
        ValueError: ``device`` names a device that is not available here (for
            example ``"cuda"`` on a machine without a GPU); the message says
            which devices are.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return _own_gpu(torch.device("cuda"))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}") from exc
    available = available_devices()
    if dev.type not in available:
        raise ValueError(
            f"device {str(dev)!r} is not available on this machine (available: {', '.join(available)}); "
            "pass device=None to pick the best one automatically"
        )
    return _own_gpu(dev)


def _own_gpu(dev: torch.device) -> torch.device:
    """``cuda`` -> ``cuda:LOCAL_RANK`` under torchrun (one GPU per process); any other device unchanged."""
    local_rank = os.environ.get("LOCAL_RANK")
    if dev.type != "cuda" or dev.index is not None or local_rank is None:
        return dev
    return torch.device("cuda", int(local_rank) % max(torch.cuda.device_count(), 1))


def available_devices() -> list[str]:
    """Names of the device types usable here, best first (e.g. ``['cuda', 'cpu']``)."""
    kinds = []
    if torch.cuda.is_available():
        kinds.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        kinds.append("mps")
    kinds.append("cpu")
    return kinds


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every GPU) random generators.

    Args:
        seed: any integer in [0, 2**32).
        deterministic: also ask torch for deterministic kernels (slower on GPU;
            ``warn_only`` so an op without a deterministic version still runs).

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is negative or not below 2**32.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False


def resolve_profile(profile: str = "auto", device: torch.device | str | None = None) -> Literal["fast", "full"]:
    """Turn ``"auto"`` into ``"fast"`` or ``"full"``.

    ``"auto"`` is ``"full"`` on a CUDA GPU and ``"fast"`` otherwise (CPU, Apple
    MPS). The environment variable ``CVKIT_PROFILE`` (``fast`` or ``full``),
    when set, overrides ``"auto"``.

    Raises:
        ValueError: ``profile`` is not one of ``"auto"``, ``"fast"``, ``"full"``.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if profile != "auto":
        return profile  # type: ignore[return-value]
    forced = os.environ.get("CVKIT_PROFILE", "").strip().lower()
    if forced in ("fast", "full"):
        return forced  # type: ignore[return-value]
    if forced:
        raise ValueError(f"$CVKIT_PROFILE must be 'fast' or 'full', got {forced!r}; unset it to choose by device")
    return "full" if pick_device(device).type == "cuda" else "fast"


@dataclass(frozen=True)
class RunProfile:
    """The settings a notebook runs with: its profile, device and sizes.

    Sizes are read as attributes (``P.epochs``) or items (``P["epochs"]``).

    Attributes:
        profile: ``"fast"`` (CPU, under 90 s) or ``"full"`` (a GPU, minutes).
        device: the torch device the notebook should compute on.
        sizes: the chosen profile's settings (epochs, image counts, ...).
        reason: one line saying why this profile was chosen.
        seed: the seed every generator was seeded with (``None``: left alone); notebooks derive their own seeds
            from it, so ``$CVKIT_SEED`` replays a whole notebook with other random numbers.
    """

    profile: Literal["fast", "full"]
    device: torch.device
    sizes: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    seed: int | None = 0

    def __getattr__(self, name: str) -> Any:
        sizes = object.__getattribute__(self, "sizes")
        if name in sizes:
            return sizes[name]
        raise AttributeError(f"profile {self.profile!r} has no setting {name!r}; it has {sorted(sizes)}")

    def __getitem__(self, name: str) -> Any:
        return self.sizes[name]

    @property
    def fast(self) -> bool:
        """True in the fast (CPU/CI) profile."""
        return self.profile == "fast"

    def checkpoint_dir(self, run: str) -> str | None:
        """Where a training cell checkpoints in the full profile (``None`` in the fast profile).

        Pass it to :func:`cvkit.train.fit`: ``fit(..., checkpoint_dir=P.checkpoint_dir("07_swin"))``. In the full
        profile the run (minutes on a GPU) saves ``last.pt`` after every epoch into the platform's outputs
        folder (:func:`cvkit.storage.checkpoint_dir`: Google Drive when mounted on Colab, ``/kaggle/working``
        on Kaggle), so running the cell again after a disconnect resumes it. The folder name ends with a digest
        of the profile's settings, so a changed setting starts a fresh run instead of resuming a different one.
        The fast profile (CI, seconds on a CPU) does not checkpoint: a rerun must recompute, never resume.

        Args:
            run: a name for the run, unique in the course (``"<notebook>_<model>"``, e.g. ``"07_swin"``).

        Raises:
            ValueError: ``run`` is not a plain folder name.
        """
        if not run or "/" in run or "\\" in run or run.startswith("."):
            raise ValueError(f"run must be a plain name such as '07_swin', got {run!r}")
        if self.fast:
            return None
        import hashlib
        import json

        from cvkit.storage import checkpoint_dir

        settings = json.dumps({k: self.sizes[k] for k in sorted(self.sizes)}, default=str)
        digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
        return str(checkpoint_dir(f"{run}-{self.profile}-{digest}"))

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v!r}" for k, v in self.sizes.items())
        return f"RunProfile({self.profile!r}, device={str(self.device)!r}, {sizes})"


def use_profile(
    profile: str = "auto",
    *,
    fast: Mapping[str, Any] | None = None,
    full: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    seed: int | None = 0,
    verbose: bool = True,
) -> RunProfile:
    """Resolve a notebook's ``PROFILE`` parameter and return its settings.

    Args:
        profile: ``"auto"``, ``"fast"`` or ``"full"`` (the notebook's ``PROFILE`` parameter).
        fast: settings for the fast profile (e.g. ``dict(epochs=1, train_images=5000)``).
        full: settings for the full profile; must have the same keys as ``fast``.
        device: device to use (``None``: the best available, see :func:`pick_device`).
        seed: seeds every generator with it (``None`` leaves them alone). ``$CVKIT_SEED``, when set, replaces it: the
            checks of a notebook are sized from runs over several seeds (``CVKIT_SEED=3 cvkit run ...``).
        verbose: print one line saying which profile and device were chosen, and why.

    Returns:
        RunProfile with ``.profile``, ``.device`` and the chosen settings as attributes.

    Raises:
        ValueError: unknown profile, ``fast`` and ``full`` have different keys, or ``$CVKIT_SEED`` is not an integer.
    """
    forced_seed = os.environ.get("CVKIT_SEED", "").strip()
    if forced_seed and seed is not None:
        if not forced_seed.isdigit():
            raise ValueError(
                f"$CVKIT_SEED must be a non-negative integer, got {forced_seed!r}; unset it to use seed {seed}"
            )
        seed = int(forced_seed)
    fast = dict(fast or {})
    full = dict(full or {})
    if set(fast) != set(full):
        raise ValueError(
            f"fast and full profiles must set the same keys; only in fast: {sorted(set(fast) - set(full))}, "
            f"only in full: {sorted(set(full) - set(fast))}"
        )
    dev = pick_device(device)
    chosen = resolve_profile(profile, dev)
    if profile != "auto":
        reason = f"PROFILE={profile!r} was set"
    elif os.environ.get("CVKIT_PROFILE"):
        reason = f"$CVKIT_PROFILE={os.environ['CVKIT_PROFILE']!r}"
    elif chosen == "full":
        reason = "a CUDA GPU is available"
    else:
        reason = "no CUDA GPU: sized to finish in about a minute on 2 CPU cores; set PROFILE='full' to override"
    if seed is not None:
        seed_everything(seed)
    run = RunProfile(chosen, dev, MappingProxyType(full if chosen == "full" else fast), reason, seed)
    if verbose:
        seeded = f"; seed {seed} from $CVKIT_SEED" if forced_seed and seed is not None else ""
        print(f"profile: {chosen} on {describe_device(dev)} ({reason}{seeded})")
    return run


def describe_device(device: torch.device | str | None = None) -> str:
    """A short human description, e.g. ``'cuda (Tesla T4, 15.0 GiB)'`` or ``'cpu (2 threads)'``."""
    dev = pick_device(device)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def environment_report() -> dict[str, Any]:
    """Versions and hardware as a flat dict (used by ``cvkit doctor`` and benchmark headers)."""
    import torchvision  # imported here: a broken torchvision must not break ``import cvkit.runtime``

    dev = pick_device()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "device": describe_device(dev),
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if dev.type == "cuda":
        report["cuda"] = torch.version.cuda
        report["bf16_supported"] = torch.cuda.is_bf16_supported(including_emulation=False)  # the T4 only emulates bf16
    return report


def in_notebook() -> bool:
    """True when running inside an IPython kernel (Jupyter, Colab, papermill)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ in ("ZMQInteractiveShell", "Shell")


def headless() -> bool:
    """True when nobody can see or click a widget: outside a kernel, or under ``cvkit run``/CI.

    ``cvkit run`` sets ``CVKIT_HEADLESS=1`` for the kernels it starts; ``CI=true`` counts too.
    """
    if os.environ.get("CVKIT_HEADLESS", "").lower() in ("1", "true", "yes"):
        return True
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return True
    return not in_notebook()


# -- headline results --------------------------------------------------------------------------------------------------

RESULTS_MIME = "application/vnd.cvkit.results+json"
"""MIME type of the display output :func:`record_results` writes; ``cvkit run`` reads it back from the executed notebook."""

ResultSource = Literal["live", "checkpoint"]
RESULT_SOURCES = ("live", "checkpoint")


def record_results(values: Mapping[str, Any] | None = None, /, *, source: ResultSource = "live", **named: Any) -> None:
    """Record a notebook's headline numbers, so ``cvkit run`` puts them in its report.

    Call it in a notebook's Checks section, once per source::

        cvkit.runtime.record_results(test_accuracy=acc, miou=miou)              # trained here, now
        cvkit.runtime.record_results(ap50=ckpt_ap50, source="checkpoint")       # weights from a shipped checkpoint
        cvkit.runtime.record_results({f"probe {k}": v for k, v in acc.items()})  # names from a dict

    The values are shown in the notebook as one line (``recorded (live): test_accuracy=0.912, miou=0.55``) and
    written as a display output of MIME type :data:`RESULTS_MIME`; the runner reads every such output of the
    executed notebook (:func:`recorded_results`) into ``report.md`` / ``report.json``. Outside a kernel the line is
    printed and nothing else happens.

    Args:
        values: optional mapping name -> value (for names built in a loop).
        source: ``"live"`` (computed by this run) or ``"checkpoint"`` (computed with weights loaded from a
            checkpoint the course ships).
        **named: more name -> value pairs. A value is a Python or NumPy number, a bool, a 0-d or one-element tensor
            or array (read as a number), or a short string (at most 80 characters). Names are made identifier-like
            (lower case, every run of other characters becomes ``_``: ``"random init (ViT)"`` -> ``random_init_vit``),
            so put units in the name (``psnr_db``, ``seconds``).

    Nothing is returned (so a call at the end of a cell shows only its line). Numbers are recorded as ``int`` or
    ``float`` (4 significant digits shown, 6 stored); NaN and infinities are stored as ``None`` (the report is JSON).

    Raises:
        ValueError: ``source`` is not ``"live"`` or ``"checkpoint"``, no value was given, a name has no letter or
            digit, two names become the same, or a string value is longer than 80 characters.
        TypeError: a value is not a number, bool, one-element tensor/array or string (e.g. a list).
    """
    if source not in RESULT_SOURCES:
        raise ValueError(f"source must be one of {RESULT_SOURCES}, got {source!r}")
    pairs = [*dict(values or {}).items(), *named.items()]
    if not pairs:
        raise ValueError("record_results needs at least one name=value, e.g. record_results(test_accuracy=0.91)")
    clean: dict[str, Any] = {}
    for raw, value in pairs:
        name = _result_name(raw)
        if name in clean:
            raise ValueError(f"two results are both named {name!r} (from {raw!r}); give them different names")
        clean[name] = _result_value(name, value)
    text = f"recorded ({source}): " + ", ".join(f"{k}={_format_result(v)}" for k, v in clean.items())
    payload = {"source": source, "values": [[k, _json_safe(v)] for k, v in clean.items()]}  # pairs: JSON may sort keys
    if in_notebook():
        from IPython.display import display

        display({RESULTS_MIME: payload, "text/plain": text}, raw=True)
    else:
        print(text)


def _result_name(raw: Any) -> str:
    """``"random init (ViT)"`` -> ``"random_init_vit"``; raises ValueError when nothing is left."""
    import re

    name = re.sub(r"[^0-9a-z]+", "_", str(raw).lower()).strip("_")
    if not name:
        raise ValueError(f"a result name needs a letter or digit, got {raw!r}")
    return name


def recorded_results(notebook: Any) -> list[dict[str, Any]]:
    """The results an executed notebook recorded with :func:`record_results`, in order.

    Args:
        notebook: an executed notebook, as an ``nbformat`` node or the plain dict of its JSON.

    Returns:
        list of ``{"name": str, "value": number | str | None, "source": "live" | "checkpoint"}``; a name recorded
        twice with the same source keeps its last value (in the place of its first). NaN and infinities come back
        as ``None`` (they are not JSON).
    """
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in notebook.get("cells", []) if isinstance(notebook, dict) else notebook.cells:
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(RESULTS_MIME)
            if not isinstance(payload, dict) or payload.get("source") not in RESULT_SOURCES:
                continue
            values = payload.get("values") or []
            for name, value in values.items() if isinstance(values, dict) else values:
                found[(str(name), payload["source"])] = {"name": str(name), "value": value, "source": payload["source"]}
    return list(found.values())


def _result_value(name: str, value: Any) -> int | float | bool | str:
    """One recorded value as a plain Python scalar (see :func:`record_results` for what is accepted)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        if len(value) > 80:
            raise ValueError(f"{name}: a recorded string must be at most 80 characters, got {len(value)}")
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: a recorded tensor must hold one number, got shape {tuple(value.shape)}")
        value = value.detach().cpu().item()
    elif isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"{name}: a recorded array must hold one number, got shape {value.shape}")
        value = value.item()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    raise TypeError(f"{name}: record a number, a bool or a short string, got {type(value).__name__}")


def _format_result(value: int | float | bool | str) -> str:
    """Short text of a recorded value: 4 significant digits for floats."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _json_safe(value: int | float | bool | str) -> int | float | bool | str | None:
    """Floats that JSON cannot hold (NaN, infinities) become ``None``; 6 significant digits otherwise."""
    if isinstance(value, float):
        return float(f"{value:.6g}") if np.isfinite(value) else None
    return value
