"""cvkit.storage: where data and checkpoints live on Colab, Kaggle and locally, and what uses it."""

import shutil
from pathlib import Path

import pytest
import torch

from cvkit import storage
from cvkit.data import DatasetNotFoundError
from cvkit.data import fashion_mnist as fm
from cvkit.runtime import use_profile
from cvkit.train import fit

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = [f for pair in fm.FILES.values() for f in pair]


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A fake machine: /kaggle and /content under tmp_path, no platform variables, an empty data cache."""
    for var in ("CVKIT_PLATFORM", "CVKIT_OUTPUT", "CVKIT_DATA", "KAGGLE_KERNEL_RUN_TYPE", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(storage, "KAGGLE_ROOT", tmp_path / "kaggle")
    monkeypatch.setattr(storage, "COLAB_CONTENT", tmp_path / "content")
    monkeypatch.setattr(storage, "COLAB_DRIVE", tmp_path / "content" / "drive" / "MyDrive")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fashion_files(folder: Path) -> Path:
    if not DEBIAN.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (ci/install.sh installs it)")
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copy(DEBIAN / name, folder / name)
    return folder


def test_detects_each_platform(machine, monkeypatch):
    assert storage.detect_platform() == "local"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert storage.detect_platform() == "kaggle"
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE")
    (machine / "kaggle" / "input").mkdir(parents=True)
    assert storage.detect_platform() == "kaggle"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260819")
    assert storage.detect_platform() == "colab"
    monkeypatch.setenv("CVKIT_PLATFORM", "local")
    assert storage.detect_platform() == "local"
    monkeypatch.setenv("CVKIT_PLATFORM", "azure")
    with pytest.raises(ValueError, match="CVKIT_PLATFORM"):
        storage.detect_platform()


def test_outputs_on_each_platform(machine, monkeypatch):
    assert storage.places().outputs == machine and storage.places().persistent
    monkeypatch.setenv("CVKIT_PLATFORM", "kaggle")
    assert storage.places().outputs == machine / "kaggle" / "working" / "cvkit"
    monkeypatch.setenv("CVKIT_PLATFORM", "colab")
    lost = storage.places()
    assert lost.outputs == machine / "content" / "cvkit" and not lost.persistent and "mount_google_drive" in lost.note
    (machine / "content" / "drive" / "MyDrive").mkdir(parents=True)  # what drive.mount() leaves behind
    kept = storage.places()
    assert kept.outputs == machine / "content" / "drive" / "MyDrive" / "cvkit" and kept.persistent
    monkeypatch.setenv("CVKIT_OUTPUT", str(machine / "mine"))
    assert storage.places().outputs == machine / "mine"


def test_checkpoint_dir_is_created_under_outputs_and_announced(machine, monkeypatch, capsys):
    monkeypatch.setenv("CVKIT_PLATFORM", "kaggle")
    folder = storage.checkpoint_dir("07_swin")
    assert folder == machine / "kaggle" / "working" / "cvkit" / "checkpoints" / "07_swin" and folder.is_dir()
    assert "kaggle/working" in capsys.readouterr().out
    storage.checkpoint_dir("07_swin")
    assert capsys.readouterr().out == ""  # said once
    for bad in ("", "../elsewhere", "/abs"):
        with pytest.raises(ValueError):
            storage.checkpoint_dir(bad)


def test_kaggle_attached_dataset_is_an_offline_source(machine, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    with pytest.raises(DatasetNotFoundError, match="3. Kaggle input: nothing attached"):
        fm.locate_fashion_mnist(download=False)
    # attached as /kaggle/input/<dataset>/<version>/fashion-mnist/ (nested) and found without a download
    attached = _fashion_files(machine / "kaggle" / "input" / "course-data" / "v1" / "fashion-mnist")
    found = fm.locate_fashion_mnist(download=False)
    assert found.directory == attached and found.label.startswith("Kaggle input")
    assert len(fm.load_fashion_mnist("test", download=False)) == 10000


def test_google_drive_is_an_offline_source_when_mounted(machine, monkeypatch):
    monkeypatch.setenv("CVKIT_PLATFORM", "colab")
    with pytest.raises(DatasetNotFoundError, match="Google Drive: not mounted"):
        fm.locate_fashion_mnist(download=False)
    on_drive = _fashion_files(machine / "content" / "drive" / "MyDrive" / "cvkit" / "data" / "fashion-mnist")
    assert fm.locate_fashion_mnist(download=False).directory == on_drive


def test_profile_checkpoints_full_runs_only(machine, monkeypatch):
    monkeypatch.setenv("CVKIT_PLATFORM", "kaggle")
    fast = use_profile("fast", fast={"epochs": 1}, full={"epochs": 9}, verbose=False)
    assert fast.checkpoint_dir("07_swin") is None  # a rerun in CI recomputes, never resumes
    full = use_profile("full", fast={"epochs": 1}, full={"epochs": 9}, verbose=False)
    folder = Path(full.checkpoint_dir("07_swin"))
    assert folder.parent == machine / "kaggle" / "working" / "cvkit" / "checkpoints" and folder.name.startswith(
        "07_swin-full-"
    )
    assert full.checkpoint_dir("07_swin") == str(folder)
    other = use_profile("full", fast={"epochs": 1}, full={"epochs": 12}, verbose=False)
    assert other.checkpoint_dir("07_swin") != str(folder)  # other settings: a fresh run, not a stale resume
    with pytest.raises(ValueError):
        full.checkpoint_dir("a/b")


def test_training_cell_resumes_after_a_disconnect(machine, monkeypatch):
    """The full-profile pattern of the notebooks: the second run of the cell continues from the checkpoint."""
    monkeypatch.setenv("CVKIT_PLATFORM", "colab")
    (machine / "content" / "drive" / "MyDrive").mkdir(parents=True)
    P = use_profile("full", fast={"epochs": 1}, full={"epochs": 2}, device="cpu", verbose=False)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 4, 4, generator=g), torch.randint(0, 3, (64,), generator=g)
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))

    reference = fit(model(), batches, epochs=P.epochs, device="cpu", progress=False, verbose=False)

    def disconnect(epoch, history):
        raise KeyboardInterrupt("the runtime disconnected")

    with pytest.raises(KeyboardInterrupt):
        fit(
            model(),
            batches,
            epochs=P.epochs,
            device="cpu",
            checkpoint_dir=P.checkpoint_dir("t_resume"),
            callbacks=[disconnect],
            progress=False,
            verbose=False,
        )
    assert (Path(P.checkpoint_dir("t_resume")) / "last.pt").is_file()  # written after epoch 1, on Drive
    again = fit(
        model(),
        batches,
        epochs=P.epochs,
        device="cpu",
        checkpoint_dir=P.checkpoint_dir("t_resume"),
        progress=False,
        verbose=False,
    )
    assert len(again.rows) == 2 and again.rows[-1]["train_loss"] == pytest.approx(
        reference.rows[-1]["train_loss"], rel=1e-6
    )
