"""Course checkpoints (cvkit.lessons): the shipped files are what their manifests say, load safely, keep the size
budget; retraining writes a manifest, pauses and resumes to the same weights; and the measurements the lessons' checks
rely on behave on hand-made cases."""

import json
import pickle
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from cvkit.lessons import checkpoints as C
from cvkit.lessons import (
    compare_manifests,
    list_checkpoints,
    load_course_checkpoint,
    read_manifest,
    read_state_dict,
    retrain,
)
from cvkit.train import fit

REQUIRED = ("command", "seed", "device", "train_seconds", "versions", "config", "metrics", "sha256", "bytes", "storage")


SHIPPED = [name for name in list_checkpoints() if C.checkpoint_available(name)]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_matches_its_manifest(name):
    weights, _ = C.checkpoint_files(name)
    manifest = read_manifest(name)
    assert all(k in manifest for k in REQUIRED), f"{name}: manifest lacks {[k for k in REQUIRED if k not in manifest]}"
    assert manifest["name"] == name and manifest["command"].startswith(f"cvkit checkpoints retrain {name}")
    assert weights.stat().st_size == manifest["bytes"] <= C.SIZE_BUDGET_MB * 2**20
    assert {"torch", "python", "cvkit"} <= set(manifest["versions"])
    model = load_course_checkpoint(name, device="cpu", verbose=False)  # sha256 checked, weights_only=True
    assert not model.training
    stored = torch.load(weights, weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point()) == (
        manifest["storage"] == "float16"
    )


def test_shipped_checkpoints_keep_the_total_budget():
    assert C.total_size_mb() <= C.TOTAL_BUDGET_MB


def test_every_shipped_file_belongs_to_a_registered_checkpoint_and_comes_with_its_pair():
    files = [p for p in C.WEIGHTS_DIR.glob("*") if p.suffix in (".pt", ".json")] if C.WEIGHTS_DIR.is_dir() else []
    stems = {p.stem for p in files}
    assert stems <= set(list_checkpoints()), (
        f"files of no registered checkpoint: {sorted(stems - set(list_checkpoints()))}"
    )
    assert stems == set(SHIPPED), f"a weights file without its manifest or the reverse: {sorted(stems - set(SHIPPED))}"


# ------------------------------------------------------------------------------------------ the machinery, on a toy


def _toy_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=g)
    return [(x[i : i + 32], (x[i : i + 32, 0] > 0).long()) for i in range(0, 96, 32)]


def _toy_train(
    epochs=4, *, seed=0, device=None, checkpoint_dir=None, callbacks=(), progress=False, verbose=False, model=None
):
    torch.manual_seed(seed)
    model = model or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    history = fit(
        model,
        _toy_data(),
        epochs=epochs,
        lr=0.05,
        seed=seed,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        progress=progress,
        verbose=verbose,
    )
    return model, history


def _toy_accuracy(model):
    x, y = map(torch.cat, zip(*_toy_data()))
    return {"accuracy": (model(x).argmax(1) == y).float().mean().item()}


@pytest.fixture
def toy(monkeypatch):
    entry = C.CourseCheckpoint(
        name="toy",
        lesson="00_toy",
        description="a toy",
        build=lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
        train=_toy_train,
        config=dict(epochs=4),
        evaluate=_toy_accuracy,
        tolerances={"accuracy": 0.01},
    )
    C.list_checkpoints()
    monkeypatch.setitem(C._CHECKPOINTS, "toy", entry)
    return entry


def test_retrain_writes_float16_weights_and_a_manifest_measured_after_the_round_trip(toy, tmp_path):
    manifest = retrain("toy", device="cpu", out=tmp_path / "out", work_dir=tmp_path / "work")
    on_disk = json.loads((tmp_path / "out" / "toy.json").read_text())
    assert (
        on_disk == manifest and manifest["epochs"] == 4 and manifest["seed"] == 0 and len(manifest["train_loss"]) == 4
    )
    assert manifest["train_loss"][-1] < manifest["train_loss"][0]
    stored = torch.load(tmp_path / "out" / "toy.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in stored.values())
    model = load_course_checkpoint("toy", device="cpu", folder=tmp_path / "out", verbose=False)
    assert _toy_accuracy(model)["accuracy"] == pytest.approx(manifest["metrics"]["accuracy"], abs=1e-6)
    assert not (tmp_path / "work").exists(), "a finished retrain removes its resumable state"


def test_a_paused_retrain_resumes_to_the_same_weights(toy, tmp_path):
    with pytest.raises(C.TrainingPaused):
        retrain(
            "toy", device="cpu", out=tmp_path / "a", work_dir=tmp_path / "work", max_minutes=0
        )  # pauses after epoch 1
    assert (tmp_path / "work" / "last.pt").is_file() and not (tmp_path / "a" / "toy.pt").exists()
    resumed = retrain("toy", device="cpu", out=tmp_path / "a", work_dir=tmp_path / "work")
    straight = retrain("toy", device="cpu", out=tmp_path / "b", work_dir=tmp_path / "work2")
    assert resumed["sha256"] == straight["sha256"], "pausing and resuming must not change the result"
    ok, lines = compare_manifests("toy", tmp_path / "a", tmp_path / "b")
    assert ok and "within" in lines[0]


def test_compare_flags_a_metric_outside_its_tolerance(toy, tmp_path):
    retrain("toy", device="cpu", out=tmp_path / "a", work_dir=tmp_path / "w")
    worse = json.loads((tmp_path / "a" / "toy.json").read_text())
    worse["metrics"]["accuracy"] -= 0.05
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "toy.json").write_text(json.dumps(worse))
    ok, lines = compare_manifests("toy", tmp_path / "b", tmp_path / "a")
    assert not ok and "OUTSIDE" in lines[0]


def test_loading_refuses_a_changed_file_and_foreign_objects(toy, tmp_path):
    retrain("toy", device="cpu", out=tmp_path, work_dir=tmp_path / "w")
    blob = torch.load(tmp_path / "toy.pt", weights_only=True)
    blob["state_dict"]["0.bias"] += 1
    torch.save(blob, tmp_path / "toy.pt")
    with pytest.raises(ValueError, match="does not match its manifest"):
        load_course_checkpoint("toy", folder=tmp_path, device="cpu")

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran code')",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": 1, "state_dict": {}, "x": Boom()}, fh, protocol=2)
    with pytest.raises(ValueError, match="not a readable course checkpoint"):
        read_state_dict(tmp_path / "evil.pt")


def test_unknown_names_and_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        load_course_checkpoint("no_such_model")
    with pytest.raises(FileNotFoundError, match="cvkit checkpoints retrain detr"):
        load_course_checkpoint("detr", folder=tmp_path)


def test_a_notebook_falls_back_on_its_own_model_when_the_checkpoint_is_not_shipped(toy, tmp_path, capsys):
    live = nn.Linear(4, 2)
    model, from_checkpoint = C.course_checkpoint_or("toy", live, device="cpu", folder=tmp_path)
    assert model is live and not from_checkpoint
    assert capsys.readouterr().out.strip() == C.not_shipped_message("toy")
    assert "cvkit checkpoints retrain toy" in C.not_shipped_message("toy")
    retrain("toy", device="cpu", out=tmp_path, work_dir=tmp_path / "w")
    model, from_checkpoint = C.course_checkpoint_or("toy", live, device="cpu", folder=tmp_path, verbose=False)
    assert from_checkpoint and model is not live and not model.training
    assert _toy_accuracy(model)["accuracy"] == pytest.approx(
        read_manifest("toy", tmp_path)["metrics"]["accuracy"], abs=1e-6
    )


def test_cli_lists_and_compares(toy, tmp_path, capsys):
    from cvkit.cli import main

    assert (
        main(
            [
                "checkpoints",
                "retrain",
                "toy",
                "--device",
                "cpu",
                "--out",
                str(tmp_path),
                "--work-dir",
                str(tmp_path / "w"),
            ]
        )
        == 0
    )
    assert read_manifest("toy", tmp_path)["command"] == f"cvkit checkpoints retrain toy --device cpu --out {tmp_path}"
    assert main(["checkpoints", "compare", "toy", str(tmp_path)]) == 2  # nothing shipped under that name: a clear error
    assert main(["checkpoints", "list"]) == 0
    assert "toy" in capsys.readouterr().out


def test_replace_keeps_entries_frozen(toy):
    with pytest.raises(Exception):
        toy.name = "other"
    assert replace(toy, config=dict(epochs=1)).config == {"epochs": 1}
