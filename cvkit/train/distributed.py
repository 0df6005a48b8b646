"""Training on several processes: what :func:`cvkit.train.fit` does when ``torchrun`` starts it.

``torchrun --nproc_per_node N script.py`` (or ``-m cvkit train``) starts N copies of the same
program and tells each who it is through environment variables: ``RANK`` (0 .. N-1 over every
machine), ``LOCAL_RANK`` (its GPU on this machine), ``WORLD_SIZE`` (N), and ``MASTER_ADDR`` /
``MASTER_PORT`` (where process 0 listens). :func:`setup` reads them and joins the processes into
one ``torch.distributed`` process group: NCCL between GPUs, gloo between CPU processes.

Data parallelism (DistributedDataParallel, Li et al., "PyTorch Distributed", VLDB 2020): every
process holds a full copy of the model, computes the gradient of its share of each batch, and
the gradients are averaged across processes (an all-reduce overlapped with the backward pass)
before every process takes the same optimizer step, so the copies never drift apart. With the
per-process shares of one global batch of B images, one step is the step one process would
take on all B images (up to the order of floating-point sums), N times as fast at best.

Everything here is a no-op in a single process: :func:`setup` then returns ``world_size == 1``
and the helpers return their input.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def torchrun_command(nproc: int, *args: str, port: int | None = None) -> list[str]:
    """The command line that starts ``nproc`` processes on this machine with torchrun.

    ``[python, -m, torch.distributed.run, --nproc_per_node, N, --master_addr, 127.0.0.1, --master_port, P, *args]``:
    the same as ``torchrun --nproc_per_node N ...`` with this interpreter (so a virtual environment's torch is used
    whether or not its ``bin/`` is on ``PATH``), process 0 listening on 127.0.0.1 only.

    Args:
        nproc: processes to start (>= 1): one per GPU, or a few on a CPU.
        *args: the program and its arguments, e.g. ``"-m", "cvkit", "train", "--epochs", "2"`` or a script path.
        port: the rendezvous port; ``None`` picks a free one on 127.0.0.1.

    Raises:
        ValueError: ``nproc`` is not a positive integer.
    """
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer (processes to start), got {nproc!r}")
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        *args,
    ]


@dataclass(frozen=True)
class ProcessInfo:
    """Who this process is among the processes training together.

    Attributes:
        rank: 0 .. world_size - 1; process 0 alone prints, shows progress and writes files.
        world_size: number of processes (1: an ordinary single-process run).
        local_rank: index among the processes on this machine (its GPU index on CUDA).
        backend: ``"nccl"``, ``"gloo"``, or ``None`` in a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on process 0 (and in a single process)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when two or more processes train together."""
        return self.world_size > 1

    def describe(self) -> str:
        """E.g. ``"2 processes (DDP over gloo)"``; empty in a single process."""
        return f"{self.world_size} processes (DDP over {self.backend})" if self.distributed else ""


def launched_by_torchrun() -> bool:
    """Whether the environment names this process's place in a group of two or more (``torchrun`` sets it)."""
    return all(v in os.environ for v in TORCHRUN_VARIABLES) and int(os.environ["WORLD_SIZE"]) > 1


def process_info() -> ProcessInfo:
    """This process's :class:`ProcessInfo`, from the initialised process group (or a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessInfo()
    return ProcessInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend())


def setup(device: torch.device) -> ProcessInfo:
    """Join the process group ``torchrun`` describes, once; return this process's place in it.

    Called by :func:`cvkit.train.fit` (and ``cvkit train``) before anything else. Does nothing
    when the group is already initialised (a second ``fit`` in the same script, or a script
    that called ``torch.distributed.init_process_group`` itself) or when the environment
    describes a single process.

    Args:
        device: where this process computes; CUDA selects NCCL (and makes ``device`` the
            current GPU), anything else gloo.

    Returns:
        ProcessInfo: rank, world size, local rank and backend.

    Raises:
        ValueError: under ``torchrun`` on CUDA, ``device`` has no index or names another
            process's GPU (each process must own one GPU: ``cuda:LOCAL_RANK``, which
            :func:`cvkit.runtime.pick_device` returns under ``torchrun``).
    """
    if dist.is_available() and dist.is_initialized():
        return process_info()
    if not launched_by_torchrun():
        return ProcessInfo()
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if device.index is None:
            raise ValueError(
                f"under torchrun each process needs its own GPU: use device='cuda:{local_rank}' "
                "(or device=None), not 'cuda'"
            )
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    atexit.register(shutdown)
    return process_info()


def shutdown() -> None:
    """Leave the process group (at exit; safe to call twice or in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True on process 0 of a ``torchrun`` group, and in an ordinary single process.

    Use it around anything that should happen once: printing, plotting, writing files::

        history = fit(model, train, val, epochs=5)
        if is_main_process():
            history.plot().savefig("history.png")
    """
    return process_info().is_main


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (``op="sum"``) or maximum (``op="max"``) of ``tensor`` over every process, in place; returns it.

    A single process returns ``tensor`` unchanged. On NCCL the tensor must be on this process's GPU.

    Raises:
        ValueError: ``op`` is not ``"sum"`` or ``"max"``.
    """
    if op not in ("sum", "max"):
        raise ValueError(f"op must be 'sum' or 'max', got {op!r}")
    if process_info().distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return tensor


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of process 0, obj of process 1, ...]`` on every process (``[obj]`` in a single process); pickled."""
    info = process_info()
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Process 0's ``obj`` on every process (the object itself in a single process)."""
    if not process_info().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait until every process gets here (nothing in a single process)."""
    info = process_info()
    if info.distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_buffers(model: nn.Module) -> None:
    """Copy process 0's buffers (BatchNorm running statistics) into every process's model.

    DistributedDataParallel does this at the start of every training forward; after an epoch's
    last step each process still holds the statistics of its own last shard, so :func:`fit` calls
    this before evaluating and saving, and every process evaluates (and saves) the same model.
    """
    if process_info().distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def wrap_model(
    model: nn.Module, device: torch.device, *, sync_batchnorm: bool = False, find_unused_parameters: bool = False
) -> nn.Module:
    """The module to train: ``model`` itself in one process, a DistributedDataParallel wrapper of it otherwise.

    The wrapper shares ``model``'s parameters (save and load ``model``'s state dict, never the
    wrapper's, whose keys start with ``module.``). On construction it copies process 0's
    parameters and buffers to every process, so the copies start equal whatever their seeds.

    Args:
        model: on ``device`` already.
        device: this process's device (its GPU on CUDA).
        sync_batchnorm: replace every BatchNorm layer of ``model`` (in place) with
            ``torch.nn.SyncBatchNorm``, which normalises with the statistics of the global
            batch instead of this process's share (one all-reduce per BatchNorm layer per step).
            Without it each process normalises its B / N images with their own statistics, as
            torchvision's reference scripts do by default: a different (noisier) model from a
            one-process run with batch B, and the usual choice when B / N is 32 or more.
        find_unused_parameters: let DDP handle models whose forward leaves some parameters without
            a gradient (slower; DDP's error message says when it is needed).

    Raises:
        ValueError: ``sync_batchnorm`` on a device other than CUDA (torch's SyncBatchNorm runs on GPUs only).
    """
    info = process_info()
    if not info.distributed:
        return model
    if sync_batchnorm:
        if device.type != "cuda":
            raise ValueError(
                f"sync_batchnorm=True needs CUDA GPUs (torch's SyncBatchNorm does not run on {device.type}); "
                "use sync_batchnorm=False, or a model without BatchNorm (GroupNorm, LayerNorm) "
                "for exact equivalence on CPU"
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def is_sharded(loader: Any) -> bool:
    """Whether ``loader`` gives each process a different share of the data.

    True for a :class:`cvkit.data.DeviceLoader` split among two or more processes and for a
    ``DataLoader`` whose sampler is a ``DistributedSampler`` of two or more replicas.
    """
    if getattr(loader, "num_shards", 1) > 1:
        return True
    sampler = getattr(loader, "sampler", None)
    return isinstance(sampler, torch.utils.data.DistributedSampler) and sampler.num_replicas > 1
