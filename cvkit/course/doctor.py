"""``cvkit doctor``: versions, device, and which datasets resolve offline and from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Check:
    """One line of the doctor's report: ``name``, ``ok``, and what was found (or how to fix it)."""

    name: str
    ok: bool
    detail: str


def run_checks() -> list[Check]:
    """Run every check; never raises (a failing check is a line with ``ok=False``)."""
    checks = [
        _check("python and torch", _versions),
        _check("torchvision ops", _torchvision_ops),
        _check("device", _device),
        _check("platform", _platform),
    ]
    checks += [
        _check("Fashion-MNIST", _fashion_mnist),
        _check("CIFAR-10", _cifar10),
        _check("sample photos", _photos),
        _check("digits", _digits),
        _check("synthetic shapes", _shapes),
        _check("notebook tools", _notebook_tools),
        _check("grading sandbox", _grading_sandbox),
    ]
    return checks


def format_checks(checks: list[Check]) -> str:
    """The report as aligned text lines: ``[ ok ] name: detail``."""
    width = max(len(c.name) for c in checks)
    return "\n".join(f"[{' ok ' if c.ok else 'FAIL'}] {c.name:<{width}}  {c.detail}" for c in checks)


def _check(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
        return Check(name, False, f"{type(exc).__name__}: {str(exc).strip()}")


def _versions() -> str:
    from cvkit.runtime import environment_report

    r = environment_report()
    return f"Python {r['python']}, torch {r['torch']}, torchvision {r['torchvision']}, numpy {r['numpy']}"


def _torchvision_ops() -> str:
    import torch
    import torchvision.ops

    keep = torchvision.ops.nms(torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10]]), torch.tensor([0.9, 0.8]), 0.5)
    if keep.tolist() != [0]:
        raise RuntimeError(f"torchvision.ops.nms returned {keep.tolist()}, expected [0]")
    return "torchvision.ops.nms runs (the CPU-only-torch trap is avoided)"


def _device() -> str:
    import torch

    from cvkit.runtime import describe_device, resolve_profile

    line = f"{describe_device()}; profile 'auto' resolves to '{resolve_profile('auto')}'"
    if torch.cuda.is_available():
        line += (
            f"; bf16 {'yes' if torch.cuda.is_bf16_supported(including_emulation=False) else 'no (fp16 + GradScaler)'}"
        )
    return line


def _fashion_mnist() -> str:
    from cvkit.data.fashion_mnist import locate_fashion_mnist

    where = locate_fashion_mnist(download=False)
    return f"offline from {where.label}: {where.directory}"


def _cifar10() -> str:
    from cvkit.data.cifar import locate_cifar10
    from cvkit.data.sources import DatasetNotFoundError

    try:
        where = locate_cifar10(download=False)
    except DatasetNotFoundError:
        return "not available offline (downloads on first use where there is internet, e.g. Colab; notebooks fall back to Fashion-MNIST)"
    return f"offline from {where.label}: {where.directory}"


def _photos() -> str:
    from cvkit.data.photos import PHOTOS, load_photo

    for name in PHOTOS:
        load_photo(name)
    return f"{len(PHOTOS)} photos bundled with scikit-image ({', '.join(list(PHOTOS)[:5])}, ...)"


def _digits() -> str:
    from cvkit.data.digits import load_digits

    return f"{len(load_digits())} images bundled with scikit-learn"


def _shapes() -> str:
    from cvkit.data.shapes import ShapesDataset

    sample = ShapesDataset(1, seed=0)[0]
    return f"generated locally (e.g. {sample.caption!r})"


def _platform() -> str:
    from cvkit.storage import places

    where = places()
    return f"{where.platform}; outputs and checkpoints in {where.outputs} ({where.note})"


def _notebook_tools() -> str:
    import importlib.metadata as md

    versions = []
    for pkg in ("papermill", "nbgrader", "jupyterlab", "ipywidgets", "torchmetrics"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            versions.append(
                f"{pkg} MISSING (pip install 'cvkit-course[course]', or pip install -e '.[course]' in a clone)"
            )
    missing = [v for v in versions if "MISSING" in v]
    if missing:
        raise RuntimeError("; ".join(missing))
    return ", ".join(versions)


def _grading_sandbox() -> str:
    from cvkit.course.assignments.sandbox import sandbox_status

    works, detail = sandbox_status()
    if not works:
        raise RuntimeError(f"autograding will NOT isolate submissions: {detail}")
    return f"{detail}: each submission is graded in its own sandbox"
