"""``cvkit train``: a training job from a terminal, in this process and under a real torchrun (gloo, 2 processes)."""

from __future__ import annotations

import json

import pytest
import torch

from cvkit.cli import TRAIN_DATASETS, main
from cvkit.train import load_checkpoint
from cvkit.course.train_job import DATASETS
from tests.test_train_distributed import launch, torchrun

ARGS = ["train", "--dataset", "digits", "--model", "mlp", "--epochs", "2", "--batch-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """``cvkit train`` on digits with the MLP, 2 epochs, in this process; returns (out folder, stdout)."""
    out = tmp_path_factory.mktemp("train") / "digits"
    return out, main([*ARGS, "--out", str(out)])


def rows(out):
    return json.loads((out / "history.json").read_text())["rows"]


def test_writes_history_and_checkpoints(one_process, capsys):
    out, code = one_process
    assert code == 0
    history = rows(out)
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[-1]["val_accuracy"] > 0.85  # 300 held-out digits; chance is 0.1 (measured 0.92)
    settings = json.loads((out / "history.json").read_text())["settings"]
    assert (settings["dataset"], settings["model"], settings["processes"], settings["batch_size"]) == (
        "digits",
        "mlp",
        1,
        64,
    )
    csv_lines = (out / "history.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss") and len(csv_lines) == 3
    assert (out / "history.png").stat().st_size > 1000
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 2


def test_runs_again_resumes_and_never_deletes_a_run(one_process, tmp_path, capsys):
    first, _ = one_process
    out = tmp_path / "digits"
    assert main([*ARGS, "--out", str(out)]) == 0
    assert [r["train_loss"] for r in rows(out)] == [r["train_loss"] for r in rows(first)]  # the same seeded run
    capsys.readouterr()
    assert main([*ARGS, "--out", str(out)]) == 0  # the same command again: nothing left to train
    assert "resumed from" in capsys.readouterr().out and len(rows(out)) == 2
    assert main([*ARGS, "--out", str(out), "--epochs", "3"]) == 2  # the one-cycle schedule was planned for 2 epochs
    assert "is from a run of 2 epochs" in capsys.readouterr().err
    assert main([*ARGS, "--out", str(out), "--no-resume", "--epochs", "1"]) == 0
    moved = list(tmp_path.glob("digits.previous-*"))
    assert len(moved) == 1 and len(rows(moved[0])) == 2 and len(rows(out)) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "no_such_model"], "unknown model"),
        (["--model", "faster_rcnn_small"], "trains classifiers"),
        (["--model", "lenet5"], "cannot classify 1x8x8 images"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
    ],
)
def test_clear_errors(tmp_path, capsys, argv, message):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "x"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_dataset_names_agree():
    assert TRAIN_DATASETS == DATASETS  # the parser (cvkit.cli, kept free of torch) and the code


def test_torchrun_runs_cvkit_train_on_two_processes(one_process, tmp_path):
    first, _ = one_process
    out = tmp_path / "two"
    done = launch(torchrun(2, "-m", "cvkit", *ARGS, "--out", str(out)))
    assert "global batch 64 = 2 processes x 32" in done.stdout and "2 processes (DDP over gloo)" in done.stdout
    assert done.stdout.count("epoch   1/2") == 1  # process 0 alone prints
    assert json.loads((out / "history.json").read_text())["settings"]["processes"] == 2
    for one, two in zip(rows(first), rows(out)):  # no dropout, no BatchNorm: the same steps as one process
        for key in ("train_loss", "val_loss"):
            assert two[key] == pytest.approx(one[key], rel=1e-5)
        for key in ("train_accuracy", "val_accuracy"):
            assert two[key] == pytest.approx(one[key], abs=1 / 300)
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and set(state["model"]) == set(
        torch.load(first / "checkpoints" / "last.pt", weights_only=False)["model"]
    )
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "history.csv", "history.json", "history.png"]
