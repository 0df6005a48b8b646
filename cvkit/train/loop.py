"""The training loop: read it top to bottom.

:func:`fit` trains any ``nn.Module`` with any iterable of batches. What it does, in order,
for each epoch: shuffle (seeded), forward under autocast, backward (scaled for fp16),
clip, optimizer step, learning-rate step; every ``check_every`` steps one host sync
refreshes the progress bar and checks the loss for NaN/inf; after the epoch it evaluates,
records a row of :class:`History`, and writes a checkpoint. A run interrupted at any
point and resumed from its checkpoint ends with the same weights as an uninterrupted one.

The speed switches (half precision, channels_last, a fused optimizer, cudnn.benchmark,
torch.compile) are chosen for the device by :func:`cvkit.train.speed.plan_speed` and printed
at the start; between two checks the loop never waits for the GPU, so the CPU runs ahead
and queues the next steps while the GPU computes (see :mod:`cvkit.train.speed`).

What a step computes is a function, so the same loop trains classifiers (the default,
:func:`classification_step`), segmenters, autoencoders or diffusion models::

    def step(model, batch):
        x, _ = batch
        recon = model(x)
        return StepOutput(loss=F.mse_loss(recon, x), count=x.shape[0])

    fit(model, loader, step=step, epochs=3)

Started by ``torchrun --nproc_per_node N`` (see :mod:`cvkit.train.distributed`), the same call
trains with DistributedDataParallel on N processes: a :class:`cvkit.data.DeviceLoader` gives each
process its share of every global batch, losses and accuracies are summed over the processes (so
every process records the same :class:`History`), and process 0 alone shows progress, prints and
writes checkpoints. In one process nothing of this happens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cvkit.runtime import pick_device, seed_everything
from cvkit.train import distributed
from cvkit.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from cvkit.train.config import TrainConfig
from cvkit.train.history import History
from cvkit.train.precision import choose_precision
from cvkit.train.speed import SpeedPlan, cudnn_benchmark, has_dynamic_shapes, plan_speed


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


class TrainingOutOfMemoryError(RuntimeError):
    """The GPU ran out of memory; the message gives the batch size and what to try."""


@dataclass
class StepOutput:
    """What one training or evaluation step returns.

    Attributes:
        loss: scalar tensor, the mean loss over the batch (what ``backward`` is called on).
        count: number of examples in the batch (weights the epoch's mean loss).
        correct: scalar tensor, number of correct predictions (``None`` when accuracy does
            not apply); kept on the device so no host sync happens per step.
    """

    loss: torch.Tensor
    count: int
    correct: torch.Tensor | None = None


StepFn = Callable[[nn.Module, Any], StepOutput]


def classification_step(model: nn.Module, batch: Sequence[torch.Tensor], label_smoothing: float = 0.0) -> StepOutput:
    """Cross-entropy on ``(images (B, C, H, W), labels (B,) int64)``; counts correct top-1 predictions.

    Raises:
        ValueError: the model's output is not (B, num_classes) logits.
    """
    images, labels = batch[0], batch[1]
    logits = model(images)
    if logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"classification_step expects logits of shape (B, num_classes) = ({labels.shape[0]}, K), "
            f"got {tuple(logits.shape)}; end the model with a flatten and a linear layer, or pass step=..."
        )
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    correct = (logits.argmax(dim=1) == labels).sum()
    return StepOutput(loss, labels.shape[0], correct)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    config: TrainConfig | None = None,
    *,
    step: StepFn | None = None,
    callbacks: Sequence[Callable[[int, History], None]] = (),
    **options: Any,
) -> History:
    """Train ``model`` and return its per-epoch :class:`History`.

    Args:
        model: any ``nn.Module``; moved to the chosen device in place.
        train_loader: iterable of batches (a ``DataLoader``, a :class:`cvkit.data.DeviceLoader`, a list);
            tensors in a batch are moved to the device. ``set_epoch(epoch)`` is called when it exists.
        val_loader: batches for evaluation after every epoch (``None``: no validation).
        config: a :class:`TrainConfig`; ``options`` override its fields (``fit(m, dl, epochs=3, lr=1e-3)``).
        step: ``step(model, batch) -> StepOutput`` (default: :func:`classification_step`). Under
            ``torchrun`` it receives the DistributedDataParallel wrapper: call it, and reach the
            model's own attributes through ``.module``.
        callbacks: ``callback(epoch, history)`` called after each epoch is recorded and saved (on
            every process under ``torchrun``; guard file writes with
            :func:`cvkit.train.distributed.is_main_process`).

    Under ``torchrun`` (environment ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``): joins the process
    group (NCCL on CUDA, gloo on CPU), each process on its own GPU (``cuda:LOCAL_RANK``);
    wraps the model in DistributedDataParallel (``sync_batchnorm``, ``find_unused_parameters``
    in :class:`TrainConfig`); weights unequal shares of a batch (:meth:`DeviceLoader.shard_weights`)
    so that a step is the one-process step on the global batch; sums the metrics over the
    processes; seeds each process's global generator (dropout) with ``seed + rank`` and saves
    every process's random state in the checkpoint, so a resumed run equals an uninterrupted
    one; process 0 alone prints, shows progress and writes checkpoints. ``train_loader`` should
    be sharded (a :class:`cvkit.data.DeviceLoader`, or a ``DataLoader`` with a
    ``DistributedSampler``), otherwise every process trains on the same batches.

    Returns:
        History: one row per epoch (including epochs restored from a checkpoint).

    Raises:
        TypeError: an unknown option name.
        ValueError: resuming a checkpoint of another number of epochs (the schedule spans them
            all); under ``torchrun``, the processes do not all see the same checkpoint, or
            ``sync_batchnorm`` off CUDA.
        NonFiniteLossError: the loss became NaN/inf (message: epoch and step, last good checkpoint).
        TrainingOutOfMemoryError: CUDA out of memory (message: batch size and what to try).
        ValueError: an empty ``train_loader`` or bad options (see :class:`TrainConfig`).
    """
    cfg = (config or TrainConfig()).updated(**options) if options else (config or TrainConfig())
    step = step or (lambda m, b: classification_step(m, b, cfg.label_smoothing))
    device = pick_device(cfg.device)
    proc = distributed.setup(device)  # under torchrun: join the process group (before len(), so a DeviceLoader shards)
    steps_per_epoch = _length(train_loader)
    plan = plan_speed(cfg, device, cfg.epochs * steps_per_epoch, dynamic_shapes=has_dynamic_shapes(model))
    verbose = cfg.verbose and proc.is_main

    seed_everything((cfg.seed + proc.rank) % 2**32)  # process 0 (or the only one): cfg.seed; others: own dropout masks
    model.to(device)
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg, fused=plan.fused_optimizer)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = plan.precision.grad_scaler(device)  # active for fp16 only
    history = History()
    start_epoch = 0

    checkpoint = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    if checkpoint is not None and cfg.resume and _every_process_finds(checkpoint, proc):
        state = load_checkpoint(checkpoint, map_location=device)
        _check_same_schedule(state, cfg, checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_state_dict(state["history"])
        start_epoch = state["epoch"]
        _restore_rng(state, proc, cfg, verbose)
        if verbose:
            print(f"resumed from {checkpoint} after epoch {start_epoch}/{cfg.epochs}")

    if verbose and start_epoch < cfg.epochs:
        print(f"training on {plan.describe()}" + (f", {proc.describe()}" if proc.distributed else ""))
    # one process: the model itself; several: a DistributedDataParallel wrapper sharing its parameters
    runner = distributed.wrap_model(
        model, device, sync_batchnorm=cfg.sync_batchnorm, find_unused_parameters=cfg.find_unused_parameters
    )
    if proc.distributed:
        model = runner.module  # the same model (SyncBatchNorm layers swapped in when asked)
        if verbose and not distributed.is_sharded(train_loader):
            print(
                f"warning: train_loader is not split among the {proc.world_size} processes, so each trains on "
                "the same batches; use a cvkit.data.DeviceLoader or a DataLoader with a DistributedSampler"
            )
    runner = torch.compile(runner) if plan.compile else runner  # shares its parameters with model
    evaluator = model if proc.distributed else runner  # no collective inside evaluation: shards may differ in length
    best = max((r.get("val_accuracy", -math.inf) for r in history.rows), default=-math.inf)

    with cudnn_benchmark(plan.cudnn_benchmark):
        for epoch in range(start_epoch, cfg.epochs):
            tic = time.perf_counter()
            _set_epoch(train_loader, epoch)
            train = _train_one_epoch(
                runner, train_loader, optimizer, scheduler, scaler, step, plan, cfg, epoch, steps_per_epoch, proc
            )
            distributed.broadcast_buffers(model)  # process 0's BatchNorm statistics everywhere (as DDP's next forward)
            row: dict[str, Any] = {"epoch": epoch + 1, **train}
            if val_loader is not None:
                val = evaluate(
                    evaluator,
                    val_loader,
                    step=step,
                    device=device,
                    precision=plan.precision.name,
                    channels_last=plan.channels_last,
                )
                row.update({f"val_{k}": v for k, v in val.items()})
            row["lr"] = optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - tic
            if proc.distributed:  # the metrics agree already (summed over the processes); the times: process 0's clock
                times = ("train_seconds", "images_per_second", "seconds")
                row.update(distributed.broadcast_object({k: row[k] for k in times}))
            history.append(row)
            if verbose:
                print(_summary(row, cfg.epochs))

            if checkpoint is not None:
                rngs = distributed.gather_objects(
                    rng_state()
                )  # every process's generators (dropout differs per process)
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "history": history.state_dict(),
                    "rng": rngs[0],
                    "epoch": epoch + 1,
                    "config": cfg.to_dict(),
                    "world_size": proc.world_size,
                }
                if proc.distributed:
                    state["rng_per_rank"] = rngs
                is_best = row.get("val_accuracy", -math.inf) > best
                best = max(best, row.get("val_accuracy", -math.inf))
                if proc.is_main:
                    save_checkpoint(state, checkpoint)
                    if is_best:
                        save_checkpoint(state, checkpoint.with_name("best.pt"))
                distributed.barrier()  # nobody runs ahead (into a callback that ends the run) while process 0 writes
            for callback in callbacks:
                callback(epoch + 1, history)
    return history


def _train_one_epoch(
    runner,
    loader,
    optimizer,
    scheduler,
    scaler,
    step,
    plan: SpeedPlan,
    cfg,
    epoch,
    steps_per_epoch,
    proc: distributed.ProcessInfo,
) -> dict[str, float]:
    """One pass over ``loader``; returns the epoch's mean loss, accuracy, training seconds and throughput.

    Under torchrun the loss, accuracy and image count are sums over every process's share.
    """
    runner.train()
    device = plan.device
    meter = _EpochMeter(steps_per_epoch, device, summed_over_processes=proc.distributed)
    weights = loader.shard_weights() if proc.distributed and hasattr(loader, "shard_weights") else None
    bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress and proc.is_main)
    tic = time.perf_counter()
    for i, batch in enumerate(loader):
        if i == steps_per_epoch:
            raise ValueError(f"train_loader yielded more batches than its len() ({steps_per_epoch}); fix its __len__")
        batch = to_device(batch, device, plan.channels_last)
        try:
            with plan.precision.autocast(device):
                out = step(runner, batch)
            optimizer.zero_grad(set_to_none=True)
            loss = out.loss if weights is None else out.loss * weights[i]  # unequal shares: DeviceLoader.shard_weights
            scaler.scale(loss).backward()
            if cfg.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(runner.parameters(), cfg.grad_clip)
            scaler.step(optimizer)  # fp16: skips the step on inf/NaN gradients, decided on the GPU
            scaler.update()
        except torch.OutOfMemoryError as exc:
            raise _oom_error(batch, device, epoch, i) from exc
        if scheduler is not None:
            scheduler.step()
        meter.record(i, out)  # a copy queued on the device, not a wait

        if (i + 1) % cfg.check_every == 0 or i + 1 == steps_per_epoch:
            meter.flush(epoch, cfg)  # the one host sync of these check_every steps
            if bar is not None:
                bar.set_postfix(meter.postfix(), refresh=False)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    meter.flush(epoch, cfg)
    if meter.seen == 0:
        raise ValueError("train_loader produced no batches; check its length and drop_last")
    seconds = time.perf_counter() - tic  # after the flush, so the GPU has finished the epoch
    result = {"train_loss": meter.loss_sum / meter.seen}
    if meter.has_accuracy:
        result["train_accuracy"] = meter.correct_sum / meter.seen
    result["train_seconds"] = seconds
    result["images_per_second"] = meter.seen / max(seconds, 1e-9)
    return result


class _EpochMeter:
    """Per-step losses and correct counts kept on the device, read by the host in chunks.

    ``record`` writes step ``i``'s loss into slot ``i`` of a device tensor (no sync);
    ``flush`` copies the slots written since the last flush to the host in one transfer,
    checks them for NaN/inf (naming the first bad step) and adds them to the running sums.
    With ``summed_over_processes`` (torchrun), ``flush`` first sums each step's loss * count,
    correct predictions and count over the processes (one all-reduce), so every process sees
    the global numbers, and all stop together at a NaN.
    """

    def __init__(self, steps: int, device: torch.device, summed_over_processes: bool = False) -> None:
        self.losses = torch.zeros(steps, device=device)  # (steps,) mean loss of each step
        self.corrects = torch.zeros(steps, device=device)  # (steps,) correct predictions of each step
        self.counts: list[int] = []  # examples in each step (this process's)
        self.flushed = 0  # steps already read by the host
        self.seen = 0  # examples in the flushed steps (every process's)
        self.loss_sum = 0.0  # sum over flushed steps of loss * count
        self.correct_sum = 0.0
        self.has_accuracy = False
        self.summed = summed_over_processes

    def record(self, i: int, out: StepOutput) -> None:
        self.losses[i] = out.loss.detach()
        if out.correct is not None:
            self.corrects[i] = out.correct.detach()
            self.has_accuracy = True
        self.counts.append(int(out.count))

    def flush(self, epoch: int, cfg: TrainConfig) -> None:
        start, stop = self.flushed, len(self.counts)
        if start == stop:
            return
        counts = self.counts[start:stop]
        if not self.summed:
            losses, corrects = torch.stack([self.losses[start:stop], self.corrects[start:stop]]).tolist()  # one sync
        else:
            n = torch.tensor(counts, dtype=self.losses.dtype, device=self.losses.device)  # (k,)
            block = torch.stack([self.losses[start:stop] * n, self.corrects[start:stop], n])  # (3, k)
            sums, corrects, totals = distributed.all_reduce(block).tolist()  # one all-reduce, one sync
            counts = [round(t) for t in totals]
            losses = [s / t if t else 0.0 for s, t in zip(sums, totals)]  # each step's mean over the global batch
        for offset, (loss, count) in enumerate(zip(losses, counts)):
            if not math.isfinite(loss):
                _raise_non_finite(epoch, start + offset, cfg)
            self.loss_sum += loss * count
        self.correct_sum += sum(corrects)
        self.seen += sum(counts)
        self.flushed = stop

    def postfix(self) -> dict[str, str]:
        seen = max(self.seen, 1)
        postfix = {"loss": f"{self.loss_sum / seen:.4f}"}
        if self.has_accuracy:
            postfix["acc"] = f"{self.correct_sum / seen:.3f}"
        return postfix


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    step: StepFn | None = None,
    device: str | torch.device | None = None,
    precision: str = "auto",
    channels_last: bool = False,
) -> dict[str, float]:
    """Mean loss (and accuracy, when the step counts correct predictions) over ``loader``.

    The model is put in eval mode (BatchNorm uses running statistics, dropout is off) and
    restored to its previous mode afterwards. Under ``torchrun``, with a loader split among the
    processes (:func:`cvkit.train.distributed.is_sharded`), the sums are taken over every
    process, so each returns the same numbers; call it on every process then.

    Returns:
        ``{"loss": float, "accuracy": float}`` (``accuracy`` only when the step reports ``correct``).

    Raises:
        ValueError: the loader is empty.
    """
    step = step or classification_step
    device = pick_device(device) if not isinstance(device, torch.device) else device
    prec = choose_precision(precision, device)
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=device)
    total_correct = torch.zeros((), device=device)
    seen, has_accuracy = 0, False
    try:
        for batch in loader:
            batch = to_device(batch, device, channels_last)
            with prec.autocast(device):
                out = step(model, batch)
            total_loss += out.loss.float() * out.count
            seen += out.count
            if out.correct is not None:
                total_correct += out.correct
                has_accuracy = True
    finally:
        model.train(was_training)
    if distributed.is_sharded(loader) and distributed.process_info().distributed:
        count = torch.tensor(float(seen), device=device)
        totals = torch.stack([total_loss.float(), total_correct.float(), count])  # (3,)
        total_loss, total_correct, seen_all = distributed.all_reduce(totals)
        seen = round(seen_all.item())
    if seen == 0:
        raise ValueError("the evaluation loader produced no batches")
    result = {"loss": (total_loss / seen).item()}
    if has_accuracy:
        result["accuracy"] = (total_correct / seen).item()
    return result


@torch.no_grad()
def predict(
    model: nn.Module, images: torch.Tensor, batch_size: int = 512, device: str | torch.device | None = None
) -> torch.Tensor:
    """Run ``model`` over (N, C, H, W) ``images`` in eval mode, in batches; returns its outputs on the CPU (N, ...)."""
    device = pick_device(device) if not isinstance(device, torch.device) else device
    was_training = model.training
    model.eval()
    try:
        outs = [
            model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, images.shape[0], batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(outs)


def to_device(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move every tensor in a (nested) batch to ``device`` (non-blocking); 4-D float tensors optionally to channels_last."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4 and batch.is_floating_point():
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (list, tuple)):
        moved = [to_device(b, device, channels_last) for b in batch]
        return type(batch)(moved) if isinstance(batch, list) else tuple(moved)
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def make_optimizer(model: nn.Module, cfg: TrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """The optimizer :func:`fit` uses: AdamW or SGD (Nesterov), weight decay on weights only.

    Args:
        model: its trainable parameters are optimized; matrices and kernels (``dim > 1``) get
            ``cfg.weight_decay``, biases and norm scales none (decaying them hurts; He et al.
            2019, "Bag of Tricks", section 3.1).
        cfg: ``optimizer``, ``lr``, ``weight_decay`` and ``momentum`` are read.
        fused: one kernel for the whole update (what :func:`fit` asks for on CUDA); with a
            GradScaler it also keeps the inf/NaN check on the device.

    Returns:
        torch.optim.AdamW (betas ``(momentum, 0.999)``) or torch.optim.SGD.

    Raises:
        ValueError: the model has no trainable parameters.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if fused else {}
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), **extra)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, **extra)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule :func:`fit` steps once per batch.

    ``"onecycle"``: rises from ``cfg.lr / 25`` to ``cfg.lr`` over ``cfg.warmup_fraction`` of the steps,
    then falls to ``cfg.lr / 250000``, both halves cosine-shaped (torch's ``OneCycleLR``; Smith & Topin
    2019, "Super-Convergence"); ``"cosine"``: cosine decay from ``cfg.lr`` to 0 (Loshchilov & Hutter
    2017, SGDR); ``"none"``: constant (returns ``None``).

    Raises:
        ValueError: ``steps_per_epoch`` < 1.
    """
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    total = cfg.epochs * steps_per_epoch
    if cfg.scheduler == "onecycle":
        pct_start = max(cfg.warmup_fraction, 1e-3)
        if math.isclose(pct_start * total, 1.0):
            # OneCycleLR's warm-up ends at step pct_start * total - 1; a warm-up of exactly one step
            # would end at step 0 and divide by zero, so such tiny runs warm up for 1.5 steps instead
            pct_start = 1.5 / total
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct_start, cycle_momentum=False
        )
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None


def _set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a loader (or its ``DistributedSampler``) which epoch comes, so a resumed run draws the same order."""
    for target in (loader, getattr(loader, "sampler", None)):
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)
            return


def _every_process_finds(checkpoint: Path, proc: distributed.ProcessInfo) -> bool:
    """Whether ``checkpoint`` exists; under torchrun every process must find it (or none).

    Raises:
        ValueError: some processes find it and others do not (a folder not shared between machines).
    """
    found = checkpoint.is_file()
    if proc.distributed:
        everyone = distributed.gather_objects(found)
        if len(set(everyone)) > 1:
            missing = [rank for rank, f in enumerate(everyone) if not f]
            raise ValueError(
                f"processes {missing} do not see {checkpoint}, the others do; "
                "put checkpoint_dir on a file system every machine of the run shares"
            )
    return found


def _check_same_schedule(state: dict[str, Any], cfg: TrainConfig, checkpoint: Path) -> None:
    """Refuse to resume a learning-rate schedule planned for another number of epochs.

    Raises:
        ValueError: ``"onecycle"`` or ``"cosine"`` and the checkpoint's run had other ``epochs``.
    """
    saved = state.get("config", {}).get("epochs", cfg.epochs)
    if cfg.scheduler != "none" and saved != cfg.epochs:
        raise ValueError(
            f"{checkpoint} is from a run of {saved} epochs, this one asks for {cfg.epochs}; its {cfg.scheduler!r} "
            f"learning-rate schedule spans all {saved} epochs, so resume with epochs={saved}, or start over in "
            "another checkpoint_dir (or with resume=False, which overwrites it)"
        )


def _restore_rng(state: dict[str, Any], proc: distributed.ProcessInfo, cfg: TrainConfig, verbose: bool) -> None:
    """Restore this process's random generators from a checkpoint (each process its own under torchrun)."""
    saved = state.get("rng_per_rank") or [state["rng"]]
    if len(saved) != proc.world_size and verbose:
        print(
            f"note: the checkpoint was written by {len(saved)} process(es) and resumes on {proc.world_size}: "
            "random draws from the global generator (dropout) differ from an uninterrupted run"
        )
    if proc.rank < len(saved):
        restore_rng_state(saved[proc.rank])
    else:
        seed_everything((cfg.seed + proc.rank + 1_000_003 * state["epoch"]) % 2**32)


def _length(loader: Iterable) -> int:
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError(
            f"train_loader must have a length (got {type(loader).__name__}); wrap generators in a list"
        ) from exc
    if n == 0:
        raise ValueError("train_loader is empty; check the dataset size, batch_size and drop_last")
    return n


def _raise_non_finite(epoch: int, index: int, cfg: TrainConfig) -> None:
    where = f"epoch {epoch + 1}, step {index + 1}"
    saved = f"; the last good weights are in {cfg.checkpoint_dir}/last.pt" if cfg.checkpoint_dir and epoch > 0 else ""
    raise NonFiniteLossError(
        f"the training loss became NaN or infinite at {where} (lr={cfg.lr}, precision={cfg.precision}){saved}. "
        "Try a smaller lr, grad_clip=1.0, or precision='fp32'; check the inputs for NaN."
    )


def _oom_error(batch: Any, device: torch.device, epoch: int, index: int) -> TrainingOutOfMemoryError:
    size = _batch_size(batch)
    detail = ""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        used = torch.cuda.memory_allocated(device) / 2**30
        detail = f" ({used:.1f} of {total:.1f} GiB allocated)"
        torch.cuda.empty_cache()
    smaller = max(size // 2, 1) if size else "a smaller value"
    return TrainingOutOfMemoryError(
        f"{device.type} ran out of memory at epoch {epoch + 1}, step {index + 1} with batch size {size}{detail}. "
        f"Try batch_size={smaller}, precision='bf16' or 'fp16', or a smaller model; "
        "if memory stays taken, restart the kernel."
    )


def _batch_size(batch: Any) -> int | None:
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else None
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _batch_size(next(iter(batch.values())))
    return None


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _summary(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']:>3}/{epochs}"]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        if key in row:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['images_per_second']:.0f} img/s")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)
