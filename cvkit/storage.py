"""Where data and outputs live on Colab, Kaggle and a local machine: decided here, and only here.

================  ======================================  =========================================  ===================
platform          offline dataset sources (read-only)     outputs and checkpoints                    survives a restart
================  ======================================  =========================================  ===================
Colab             ``MyDrive/cvkit/data/<name>/`` when     ``MyDrive/cvkit/`` when Google Drive is    on Drive: yes;
                  Google Drive is mounted                 mounted (:func:`mount_google_drive`),      ``/content``: no
                                                          else ``/content/cvkit/``
Kaggle            every attached dataset under            ``/kaggle/working/cvkit/`` (kept with a    within the session
                  ``/kaggle/input/`` (searched 3 deep)    saved notebook version)
local             none beyond ``$CVKIT_DATA`` and system  ``./checkpoints`` etc. in the current      yes
                  packages (see :mod:`cvkit.data.sources`) folder
================  ======================================  =========================================  ===================

``$CVKIT_OUTPUT`` overrides the outputs folder everywhere; ``$CVKIT_PLATFORM`` (``colab``, ``kaggle``,
``local``) overrides the detection. :mod:`cvkit.data.sources` asks :func:`dataset_sources` for the
platform's offline copies before it downloads anything, and training cells checkpoint into
:func:`checkpoint_dir` (through :meth:`cvkit.runtime.RunProfile.checkpoint_dir`) so that running the cell
again after a disconnect resumes instead of starting over.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Platform = Literal["colab", "kaggle", "local"]
PLATFORMS = ("colab", "kaggle", "local")

# Fixed by the platforms; module attributes so tests can point them at a temporary folder.
KAGGLE_ROOT = Path("/kaggle")
COLAB_CONTENT = Path("/content")
COLAB_DRIVE = COLAB_CONTENT / "drive" / "MyDrive"
KAGGLE_SEARCH_DEPTH = 3  # /kaggle/input/<dataset>/<version or folder>/<folder>
KAGGLE_SEARCH_LIMIT = 2000  # folders looked at, at most: an image dataset can hold many


def detect_platform() -> Platform:
    """``"colab"``, ``"kaggle"`` or ``"local"``.

    Colab: the ``google.colab`` module is loaded or ``$COLAB_RELEASE_TAG`` is set (Colab's kernels set it).
    Kaggle: ``$KAGGLE_KERNEL_RUN_TYPE`` is set (Kaggle's kernels set it) or ``/kaggle/input`` exists.

    Raises:
        ValueError: ``$CVKIT_PLATFORM`` is set to something else than the three names.
    """
    forced = os.environ.get("CVKIT_PLATFORM", "").strip().lower()
    if forced:
        if forced not in PLATFORMS:
            raise ValueError(
                f"$CVKIT_PLATFORM must be one of {PLATFORMS}, got {forced!r}; unset it to detect the platform"
            )
        return forced  # type: ignore[return-value]
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "colab"
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or (KAGGLE_ROOT / "input").is_dir():
        return "kaggle"
    return "local"


def drive_mounted() -> bool:
    """True when Google Drive is mounted where Colab mounts it (``/content/drive/MyDrive``)."""
    return COLAB_DRIVE.is_dir()


@dataclass(frozen=True)
class Places:
    """Where this platform keeps things.

    Attributes:
        platform: ``"colab"``, ``"kaggle"`` or ``"local"``.
        outputs: the folder for checkpoints and other outputs (created on first use).
        persistent: whether ``outputs`` outlives the runtime (Drive, a local disk) or not (Colab's ``/content``).
        note: one line for the student: where things go, and how to keep them when they would be lost.
    """

    platform: Platform
    outputs: Path
    persistent: bool
    note: str


def places() -> Places:
    """Where outputs go on this platform (see the module's table); read from the environment on every call."""
    platform = detect_platform()
    override = os.environ.get("CVKIT_OUTPUT", "").strip()
    if override:
        return Places(platform, Path(override).expanduser(), True, f"outputs in $CVKIT_OUTPUT={override}")
    if platform == "colab":
        if drive_mounted():
            return Places("colab", COLAB_DRIVE / "cvkit", True, "on Google Drive: kept when the runtime disconnects")
        return Places(
            "colab",
            COLAB_CONTENT / "cvkit",
            False,
            "in /content: lost when the runtime is recycled; run cvkit.storage.mount_google_drive() first to keep them",
        )
    if platform == "kaggle":
        return Places(
            "kaggle",
            KAGGLE_ROOT / "working" / "cvkit",
            True,
            "in /kaggle/working: kept for this session and saved with a notebook version",
        )
    return Places("local", Path.cwd(), True, "in the current folder")


def output_dir(*parts: str) -> Path:
    """``places().outputs / parts...``, created if missing.

    Raises:
        ValueError: a part is empty, absolute or contains ``..`` (outputs stay inside the outputs folder).
    """
    for part in parts:
        if not part or Path(part).is_absolute() or ".." in Path(part).parts:
            raise ValueError(f"output folder parts must be relative names without '..', got {part!r}")
    folder = places().outputs.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_announced: set[Path] = set()


def checkpoint_dir(run: str) -> Path:
    """The folder a training run checkpoints into (``<outputs>/checkpoints/<run>``), created if missing.

    Pass it to :func:`cvkit.train.fit` (``checkpoint_dir=...``): ``fit`` saves ``last.pt`` after every epoch
    and, when the cell runs again (after a disconnect or a kernel restart), resumes from it. Says once per
    folder where it is and whether it survives a disconnect.

    Raises:
        ValueError: ``run`` is empty or not a plain name (see :func:`output_dir`).
    """
    folder = output_dir("checkpoints", run)
    if folder not in _announced:
        _announced.add(folder)
        print(f"checkpoints: {folder} ({places().note})")
    return folder


def dataset_sources(name: str) -> list[tuple[str, Path]]:
    """Folders on this platform that may hold an offline copy of dataset ``name``, as ``(label, folder)``.

    Kaggle: every folder under ``/kaggle/input`` (attached datasets) up to :data:`KAGGLE_SEARCH_DEPTH` deep, each
    also with ``<name>/`` appended, so a dataset attached as ``/kaggle/input/my-data/fashion-mnist/`` or one
    holding the files at its top both count. Colab with Drive mounted: ``MyDrive/cvkit/data/<name>/``.
    :func:`cvkit.data.sources.find_dataset` keeps the first folder that holds every file it needs.
    """
    platform = detect_platform()
    if platform == "kaggle":
        return [("Kaggle input (attached dataset)", folder) for folder in _kaggle_candidates(name)]
    if platform == "colab" and drive_mounted():
        return [("Google Drive", COLAB_DRIVE / "cvkit" / "data" / name)]
    return []


def _kaggle_candidates(name: str) -> Iterator[Path]:
    root = KAGGLE_ROOT / "input"
    if not root.is_dir():
        return
    seen = 0
    level = [root]
    for _ in range(KAGGLE_SEARCH_DEPTH):
        below = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                continue
            for child in children:
                seen += 1
                if seen > KAGGLE_SEARCH_LIMIT:
                    return
                yield child
                yield child / name
                below.append(child)
        level = below


def mount_google_drive() -> Path:
    """On Colab, mount Google Drive (Colab asks for permission) so outputs and checkpoints survive a disconnect.

    Returns:
        the outputs folder on Drive (``MyDrive/cvkit``).

    Raises:
        RuntimeError: not on Colab.
    """
    if detect_platform() != "colab":
        raise RuntimeError("mount_google_drive() works on Colab only; elsewhere outputs already stay on disk")
    if not drive_mounted():
        from google.colab import drive  # type: ignore[import-not-found]  # present on Colab only

        drive.mount(str(COLAB_CONTENT / "drive"))
    folder = output_dir()
    print(f"outputs and checkpoints go to {folder} ({places().note})")
    return folder
