"""Where datasets come from: the offline-first search order shared by every loader.

Every dataset is looked for, in this order (shared/design/data.md):

1. an explicit ``path=`` argument,
2. ``$CVKIT_DATA/<name>/``,
3. the platform's offline copies (:func:`cvkit.storage.dataset_sources`): datasets attached to a Kaggle
   notebook (``/kaggle/input/...``), ``MyDrive/cvkit/data/<name>/`` on Colab with Google Drive mounted,
4. a copy installed by a system package (e.g. Debian's ``dataset-fashion-mnist``),
5. a download into ``~/.cache/cvkit/<name>/`` (needs internet),
6. a :class:`DatasetNotFoundError` naming every place tried and how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from cvkit.storage import dataset_sources, detect_platform

T = TypeVar("T")


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset was found and none could be downloaded.

    The message lists every location tried, why each failed, and how to fix it.

    Attributes:
        dataset: the dataset's name (``"cifar-10"``); ``""`` when raised elsewhere.
        tried: one line per place tried, in order.
    """

    def __init__(self, message: str, dataset: str = "", tried: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.dataset, self.tried = dataset, list(tried)

    def summary(self) -> str:
        """One line: why the last place tried (usually the download) failed."""
        last = self.tried[-1] if self.tried else str(self).splitlines()[0]
        return last.split(". ", 1)[-1] if last[:1].isdigit() else last


@dataclass(frozen=True)
class Candidate:
    """One place a dataset may be found.

    Attributes:
        label: how the place is named in messages and in ``cvkit doctor``
            (``"path argument"``, ``"$CVKIT_DATA"``, ``"Debian package"``, ...).
        directory: the folder that must hold ``files`` (``None`` when the place is not configured).
        hint: one line telling the user how to make this place work.
    """

    label: str
    directory: Path | None
    hint: str = ""


@dataclass(frozen=True)
class Resolved:
    """Where a dataset was found: ``directory`` holds its files; ``label`` names the source."""

    directory: Path
    label: str


def data_home() -> Path | None:
    """``$CVKIT_DATA`` as a path, or ``None`` when it is unset or empty."""
    value = os.environ.get("CVKIT_DATA", "").strip()
    return Path(value).expanduser() if value else None


def cache_home() -> Path:
    """The download cache, ``$XDG_CACHE_HOME/cvkit`` or ``~/.cache/cvkit``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "cvkit"


def find_dataset(
    name: str,
    files: Sequence[str],
    *,
    path: str | os.PathLike | None = None,
    system_dirs: Iterable[tuple[str, str | os.PathLike]] = (),
    download: Callable[[Path], None] | None = None,
    allow_download: bool = True,
    fix: str = "",
) -> Resolved:
    """Find a folder holding every file in ``files``, trying each source in order.

    Args:
        name: dataset name; also the sub-folder looked for under ``$CVKIT_DATA``
            and the cache (``"fashion-mnist"``).
        files: file names that must all exist in the folder.
        path: explicit folder given by the user. When given and it lacks the
            files, that is an error at once (a typo must not silently fall back to a download).
        system_dirs: ``(label, folder)`` pairs for copies installed by system packages.
        download: ``download(folder)`` fetches the files into ``folder``; may raise on no internet.
        allow_download: ``False`` skips step 4 (offline use, tests).
        fix: extra advice appended to the error message.

    Returns:
        Resolved: the folder and a label naming where it was found.

    Raises:
        DatasetNotFoundError: no source had the files; the message names each place tried.
    """
    tried: list[str] = []

    def complete(directory: Path) -> bool:
        return all((directory / f).is_file() for f in files)

    if path is not None:
        directory = Path(path).expanduser()
        if complete(directory):
            return Resolved(directory, "path argument")
        missing = [f for f in files if not (directory / f).is_file()]
        raise DatasetNotFoundError(
            f"{name}: the folder passed as path={str(path)!r} does not hold {', '.join(missing)}. "
            f"Expected the files {', '.join(files)} in that folder; fix the path, or pass path=None to search "
            "$CVKIT_DATA, system packages and the download cache."
        )
    tried.append("1. path argument: not given")

    home = data_home()
    if home is not None:
        directory = home / name
        if complete(directory):
            return Resolved(directory, "$CVKIT_DATA")
        tried.append(f"2. $CVKIT_DATA: {directory} lacks {_missing(directory, files)}")
    else:
        tried.append(f"2. $CVKIT_DATA: not set (set it to a folder holding {name}/{files[0]}, ...)")

    platform = detect_platform()
    platform_dirs = dataset_sources(name)
    for label, directory in platform_dirs:
        if complete(directory):
            return Resolved(directory, label)
    if platform_dirs:
        tried.append(f"3. {platform_dirs[0][0]}: none of {len(platform_dirs)} folders holds {', '.join(files)}")
    elif platform == "kaggle":
        tried.append(
            f"3. Kaggle input: nothing attached (add a dataset holding {name}/{files[0]}, ... with 'Add Input')"
        )
    elif platform == "colab":
        tried.append(
            f"3. Google Drive: not mounted (cvkit.storage.mount_google_drive(), then put the files in MyDrive/cvkit/data/{name}/)"
        )
    else:
        tried.append("3. Kaggle input / Google Drive: not on Kaggle or Colab")

    system_dirs = list(system_dirs)
    for label, folder in system_dirs:
        directory = Path(folder)
        if complete(directory):
            return Resolved(directory, label)
        tried.append(f"4. {label}: {directory} not found or incomplete")
    if not system_dirs:
        tried.append("4. system package: none known for this dataset")

    cache = cache_home() / name
    if complete(cache):
        return Resolved(cache, "download cache")
    if download is not None and allow_download:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            download(cache)
        except Exception as exc:  # noqa: BLE001 - any failure here means "no download"; reported below
            tried.append(f"5. download into {cache}: failed ({type(exc).__name__}: {_first_line(exc)})")
        else:
            if complete(cache):
                return Resolved(cache, "download")
            tried.append(f"5. download into {cache}: finished but {_missing(cache, files)} still missing")
    elif download is None:
        tried.append(f"5. download: not available for {name}")
    else:
        tried.append(f"5. download into {cache}: skipped (download=False)")

    message = f"{name} not found. Tried, in order:\n  " + "\n  ".join(tried)
    if fix:
        message += f"\nTo fix: {fix}"
    raise DatasetNotFoundError(message, name, tried)


def try_dataset(load: Callable[..., T], *args: Any, instead: str = "", **kwargs: Any) -> T | None:
    """Call a dataset loader; when the dataset cannot be had, say so in one line and return ``None``.

    For the full profile's real datasets, which need a download the machine may not be able to make::

        pets = try_dataset(load_oxford_pets, "trainval", image_size=64, instead="the shapes above stand in")

    Args:
        load: a loader that raises :class:`DatasetNotFoundError` when the data is missing (``load_cifar10``,
            ``load_oxford_pets``, ``load_voc_detection``, ...).
        ``*args``, ``**kwargs``: passed to ``load``.
        instead: what the caller does without it, appended to the message.

    Returns:
        what ``load`` returns, or ``None`` after printing e.g. ``oxford-iiit-pet is not available here (download
        into ~/.cache/cvkit/oxford-iiit-pet: failed (URLError: ...)); the shapes above stand in``. Any other error
        (a corrupt file, a wrong argument) is raised, not hidden.
    """
    try:
        return load(*args, **kwargs)
    except DatasetNotFoundError as exc:
        name = exc.dataset or getattr(load, "__name__", "the dataset")
        print(f"{name} is not available here ({exc.summary()})" + (f"; {instead}" if instead else ""))
        return None


def _missing(directory: Path, files: Sequence[str]) -> str:
    missing = [f for f in files if not (directory / f).is_file()]
    return ", ".join(missing) if missing else "nothing"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no message"
