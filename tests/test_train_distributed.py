"""cvkit.train.fit under torchrun: real processes (``python -m torch.distributed.run``, gloo on 127.0.0.1) on the CPU.

Three launches of tests/ddp_worker.py, shared by the tests of this module:

* one process (plain ``python``): run ``plain``;
* torchrun, two processes: ``plain`` (same data, seed and global batch), ``bn`` (BatchNorm and
  dropout, uninterrupted), ``bn_cut`` (the same, stopped by a callback after epoch 1) and
  ``bf16_nhwc`` (``plain`` with bf16 autocast and channels_last, as on a GPU);
* torchrun, two fresh processes: ``bn_resumed``, which resumes ``bn_cut`` from its checkpoint.

Every process runs on one thread (as torchrun sets it), with CUDA hidden: this is the gloo path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cvkit
from cvkit.data import DeviceLoader
from cvkit.train import TrainConfig
from cvkit.train.distributed import torchrun_command, wrap_model
from tests.ddp_worker import build

ROOT = Path(cvkit.__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("ddp_worker.py")

# Two processes sum their gradients in another order than one process (each averages its share,
# then gloo averages the two), so the weights differ in their last bits after the first step, and
# Adam (which divides by the root of the squared gradients) carries such differences on. Measured
# here (2 cores, torch 2.14.1) over the plain run's 3 epochs x 4 steps, lr 1e-2: max |w1 - w2| =
# 1.0e-7, a few float32 ulps of weights of size ~0.34. The same run with one thing broken gave
# 4.2e-2 (unequal shares not weighted) and 8.4e-2 (augmentation drawn per share, not for the global
# batch). The bound sits 100x above the first (another CPU's kernels may sum in another order) and
# 4000x below the second.
WEIGHT_ATOL = 1e-5


def environment() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", CVKIT_HEADLESS="1")
    env.pop("LOCAL_RANK", None)
    return env


def torchrun(nproc: int, *args: str) -> list[str]:
    """The command line of ``torchrun --nproc_per_node nproc`` on 127.0.0.1 and a free port."""
    return torchrun_command(nproc, *args)


def launch(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


RUN = dict(epochs=3, images=250, batch_size=63)  # 4 steps per epoch: 63, 63, 63, 61 images, shared 32/31 and 31/30


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Launch the three runs; return their report folders, the watched folder and the two-process launch's stdout."""
    base = tmp_path_factory.mktemp("ddp")
    watch = base / "runs"
    watch.mkdir()
    reports = {name: base / name for name in ("single", "ddp", "resumed")}
    for folder in reports.values():
        folder.mkdir()

    def settings(report: Path, runs: list[dict]) -> str:
        return json.dumps({"report": str(report), "watch": str(watch), "runs": runs})

    bn = dict(epochs=3, images=256, batch_size=64, model="bn_dropout")  # 32 images per process and step
    launch([sys.executable, str(WORKER), settings(reports["single"], [dict(RUN, name="plain", model="plain")])])
    two_processes = [
        dict(RUN, name="plain", model="plain", checkpoint_dir=str(watch / "plain")),
        dict(bn, name="bn", checkpoint_dir=str(watch / "bn")),
        dict(bn, name="bn_cut", checkpoint_dir=str(watch / "bn_cut"), interrupt_after=1),
        dict(RUN, name="bf16_nhwc", model="plain", options=dict(precision="bf16", channels_last=True)),
    ]
    ddp = launch(torchrun(2, str(WORKER), settings(reports["ddp"], two_processes)))
    resumed = [dict(bn, name="bn_resumed", checkpoint_dir=str(watch / "bn_cut"))]
    launch(torchrun(2, str(WORKER), settings(reports["resumed"], resumed)))
    return reports, watch, ddp.stdout


def report(folder: Path, rank: int) -> dict:
    return json.loads((folder / f"rank{rank}.json").read_text())


def weights(folder: Path, name: str, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(folder / f"{name}-rank{rank}.pt")


def test_the_launches_are_what_they_claim(runs):
    reports, _, _ = runs
    single = report(reports["single"], 0)
    assert (single["world_size"], single["backend"], single["loader_shards"]) == (1, None, 1)
    for rank in (0, 1):
        r = report(reports["ddp"], rank)
        assert (r["rank"], r["world_size"], r["backend"], r["loader_shards"], r["threads"]) == (rank, 2, "gloo", 2, 1)


def test_two_processes_end_with_the_weights_of_one_process(runs):
    reports, _, _ = runs
    one = weights(reports["single"], "plain", 0)
    for rank in (0, 1):
        two = weights(reports["ddp"], "plain", rank)
        assert one.keys() == two.keys()
        worst = max((one[k] - two[k]).abs().max().item() for k in one)
        assert worst <= WEIGHT_ATOL, f"process {rank}: max |difference| {worst:.2e}"
    start = build("plain").state_dict()  # training moved the weights far more than the tolerance
    assert max((one[k] - start[k]).abs().max().item() for k in one) > 1000 * WEIGHT_ATOL


def test_every_process_reports_the_same_metrics_as_one_process(runs):
    reports, _, _ = runs
    one = report(reports["single"], 0)["runs"]["plain"]["history"]
    zero, first = (report(reports["ddp"], r)["runs"] for r in (0, 1))
    for name in ("plain", "bn"):
        assert zero[name]["history"] == first[name]["history"]  # metrics summed over both processes; process 0's times
    for row1, row2 in zip(one, zero["plain"]["history"]):
        for key in ("train_loss", "val_loss"):
            assert row2[key] == pytest.approx(row1[key], rel=1e-5)
        for key in ("train_accuracy", "val_accuracy"):
            assert row2[key] == pytest.approx(row1[key], abs=1 / 200)  # a near-tie may flip one prediction


def test_only_process_zero_writes_files(runs):
    reports, watch, stdout = runs
    zero, first = (report(reports["ddp"], r)["writes"] for r in (0, 1))
    assert first == []
    assert {Path(p).parts[0] for p in zero} == {"plain", "bn", "bn_cut"}
    assert (watch / "plain" / "last.pt").is_file() and (watch / "bn" / "best.pt").is_file()
    assert report(reports["resumed"], 1)["writes"] == [] and report(reports["resumed"], 0)["writes"]
    assert stdout.count("epoch   1/3") == 4  # one summary line per run: process 0 prints, process 1 does not


def test_resume_under_ddp_equals_an_uninterrupted_run(runs):
    reports, watch, _ = runs
    cut = report(reports["ddp"], 0)["runs"]["bn_cut"]
    assert cut["interrupted"] and cut["history"] is None
    for rank in (0, 1):
        uninterrupted = weights(reports["ddp"], "bn", rank)
        resumed = weights(reports["resumed"], "bn_resumed", rank)
        assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted), f"process {rank}"
    rows = report(reports["resumed"], 0)["runs"]["bn_resumed"]["history"]
    reference = report(reports["ddp"], 0)["runs"]["bn"]["history"]
    drop = ("seconds", "train_seconds", "images_per_second")
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in reference
    ]
    state = torch.load(watch / "bn_cut" / "last.pt", weights_only=False)
    assert state["world_size"] == 2 and len(state["rng_per_rank"]) == 2


def test_processes_draw_different_dropout_masks_and_share_batchnorm_statistics(runs):
    reports, _, _ = runs
    zero, first = (report(reports["ddp"], r)["runs"]["bn"]["first_dropout_mask"] for r in (0, 1))
    assert len(zero) == len(first) and zero != first  # same shape (32 images each), independent draws
    w0, w1 = weights(reports["ddp"], "bn", 0), weights(reports["ddp"], "bn", 1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # parameters by DDP; BatchNorm running statistics broadcast


# --------------------------------------------------------------------------- without processes


def test_sync_batchnorm_off_cuda_is_refused_with_a_clear_message(monkeypatch):
    from cvkit.train import distributed

    monkeypatch.setattr(distributed, "process_info", lambda: distributed.ProcessInfo(0, 2, 0, "gloo"))
    with pytest.raises(ValueError, match="SyncBatchNorm"):
        wrap_model(torch.nn.BatchNorm2d(3), torch.device("cpu"), sync_batchnorm=True)
    assert TrainConfig(sync_batchnorm=True).sync_batchnorm
    with pytest.raises(ValueError, match="sync_batchnorm must be True or False"):
        TrainConfig(sync_batchnorm="yes")


def test_device_loader_shares_and_weights_without_a_group(monkeypatch):
    """The share arithmetic, with torch.distributed answering as process 1 of 2 (no group needed)."""
    import torch.distributed as dist

    images, labels = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10)
    whole = DeviceLoader(images, labels, 4, seed=1)
    batches = [y.tolist() for _, y in whole]  # one process: 4, 4, 2 images
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
        loader = DeviceLoader(images, labels, 4, seed=1)
        assert (loader.num_shards, loader.shard_index, len(loader)) == (2, rank, 3)
        assert [y.tolist() for _, y in loader] == [torch.tensor(b).tensor_split(2)[rank].tolist() for b in batches]
        assert loader.shard_weights() is None  # 2 + 2, 2 + 2, 1 + 1: equal shares
        odd = DeviceLoader(images, labels, 3, seed=1)  # 3, 3, 3, 1: the last batch cannot be shared
        assert len(odd) == 3 and sum(1 for _ in odd) == 3
        assert odd.shard_weights() == ([2 * 2 / 3] * 3 if rank == 0 else [2 * 1 / 3] * 3)
        assert DeviceLoader(images, labels, 3, shard=False).num_shards == 1


def test_under_torchrun_cuda_means_this_process_gpu(monkeypatch):
    from cvkit.runtime import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert pick_device() == torch.device("cuda", 1) and pick_device("cuda") == torch.device("cuda", 1)
    assert pick_device("cuda:0") == torch.device("cuda", 0) and pick_device("cpu") == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert pick_device() == torch.device("cuda")  # one process: unchanged


def test_mixed_precision_and_channels_last_under_ddp(runs):
    """bf16 autocast (the CPU has it; fp16 needs a GPU) and channels_last: the processes stay in step and learn."""
    reports, _, stdout = runs
    assert "bf16 autocast, channels_last" in stdout
    w0, w1 = weights(reports["ddp"], "bf16_nhwc", 0), weights(reports["ddp"], "bf16_nhwc", 1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    rows = report(reports["ddp"], 0)["runs"]["bf16_nhwc"]["history"]
    fp32 = report(reports["ddp"], 0)["runs"]["plain"]["history"]
    assert rows == report(reports["ddp"], 1)["runs"]["bf16_nhwc"]["history"]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert rows[-1]["train_loss"] == pytest.approx(fp32[-1]["train_loss"], abs=0.05)  # bf16 keeps ~3 significant digits


def test_torchrun_command_is_this_interpreters_torchrun_on_localhost():
    command = torchrun_command(3, "-m", "cvkit", "train", port=29512)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert command[3:] == [
        "--nproc_per_node",
        "3",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        "29512",
        "-m",
        "cvkit",
        "train",
    ]
    with pytest.raises(ValueError, match="positive integer"):
        torchrun_command(0)
