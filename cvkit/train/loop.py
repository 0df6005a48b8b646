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
from cvkit.train.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from cvkit.train.config import TrainConfig
from cvkit.train.history import History
from cvkit.train.precision import choose_precision
from cvkit.train.speed import SpeedPlan, cudnn_benchmark, plan_speed


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
        step: ``step(model, batch) -> StepOutput`` (default: :func:`classification_step`).
        callbacks: ``callback(epoch, history)`` called after each epoch is recorded and saved.

    Returns:
        History: one row per epoch (including epochs restored from a checkpoint).

    Raises:
        TypeError: an unknown option name.
        NonFiniteLossError: the loss became NaN/inf (message: epoch and step, last good checkpoint).
        TrainingOutOfMemoryError: CUDA out of memory (message: batch size and what to try).
        ValueError: an empty ``train_loader`` or bad options (see :class:`TrainConfig`).
    """
    cfg = (config or TrainConfig()).updated(**options) if options else (config or TrainConfig())
    step = step or (lambda m, b: classification_step(m, b, cfg.label_smoothing))
    device = pick_device(cfg.device)
    steps_per_epoch = _length(train_loader)
    plan = plan_speed(cfg, device, cfg.epochs * steps_per_epoch)

    seed_everything(cfg.seed)
    model.to(device)
    if plan.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg, fused=plan.fused_optimizer)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = plan.precision.grad_scaler(device)  # active for fp16 only
    history = History()
    start_epoch = 0

    checkpoint = Path(cfg.checkpoint_dir) / "last.pt" if cfg.checkpoint_dir else None
    if checkpoint is not None and cfg.resume and checkpoint.is_file():
        state = load_checkpoint(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        history = History.from_state_dict(state["history"])
        restore_rng_state(state["rng"])
        start_epoch = state["epoch"]
        if cfg.verbose:
            print(f"resumed from {checkpoint} after epoch {start_epoch}/{cfg.epochs}")

    if cfg.verbose and start_epoch < cfg.epochs:
        print(f"training on {plan.describe()}")
    runner = torch.compile(model) if plan.compile else model  # shares its parameters with model
    best = max((r.get("val_accuracy", -math.inf) for r in history.rows), default=-math.inf)

    with cudnn_benchmark(plan.cudnn_benchmark):
        for epoch in range(start_epoch, cfg.epochs):
            tic = time.perf_counter()
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)
            train = _train_one_epoch(runner, train_loader, optimizer, scheduler, scaler, step, plan, cfg, epoch, steps_per_epoch)
            row: dict[str, Any] = {"epoch": epoch + 1, **train}
            if val_loader is not None:
                val = evaluate(runner, val_loader, step=step, device=device, precision=plan.precision.name, channels_last=plan.channels_last)
                row.update({f"val_{k}": v for k, v in val.items()})
            row["lr"] = optimizer.param_groups[0]["lr"]
            row["seconds"] = time.perf_counter() - tic
            history.append(row)
            if cfg.verbose:
                print(_summary(row, cfg.epochs))

            if checkpoint is not None:
                state = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(),
                    "history": history.state_dict(),
                    "rng": rng_state(),
                    "epoch": epoch + 1,
                    "config": cfg.to_dict(),
                }
                save_checkpoint(state, checkpoint)
                if row.get("val_accuracy", -math.inf) > best:
                    best = row["val_accuracy"]
                    save_checkpoint(state, checkpoint.with_name("best.pt"))
            for callback in callbacks:
                callback(epoch + 1, history)
    return history


def _train_one_epoch(runner, loader, optimizer, scheduler, scaler, step, plan: SpeedPlan, cfg, epoch, steps_per_epoch) -> dict[str, float]:
    """One pass over ``loader``; returns the epoch's mean loss, accuracy, training seconds and throughput."""
    runner.train()
    device = plan.device
    meter = _EpochMeter(steps_per_epoch, device)
    bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
    tic = time.perf_counter()
    for i, batch in enumerate(loader):
        if i == steps_per_epoch:
            raise ValueError(f"train_loader yielded more batches than its len() ({steps_per_epoch}); fix its __len__")
        batch = to_device(batch, device, plan.channels_last)
        try:
            with plan.precision.autocast(device):
                out = step(runner, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out.loss).backward()
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
    """

    def __init__(self, steps: int, device: torch.device) -> None:
        self.losses = torch.zeros(steps, device=device)  # (steps,) mean loss of each step
        self.corrects = torch.zeros(steps, device=device)  # (steps,) correct predictions of each step
        self.counts: list[int] = []  # examples in each step
        self.flushed = 0  # steps already read by the host
        self.loss_sum = 0.0  # sum over flushed steps of loss * count
        self.correct_sum = 0.0
        self.has_accuracy = False

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
        losses, corrects = torch.stack([self.losses[start:stop], self.corrects[start:stop]]).tolist()  # one sync
        for offset, (loss, count) in enumerate(zip(losses, self.counts[start:stop])):
            if not math.isfinite(loss):
                _raise_non_finite(epoch, start + offset, cfg)
            self.loss_sum += loss * count
        self.correct_sum += sum(corrects)
        self.flushed = stop

    @property
    def seen(self) -> int:
        return sum(self.counts[: self.flushed])

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
    restored to its previous mode afterwards.

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
    if seen == 0:
        raise ValueError("the evaluation loader produced no batches")
    result = {"loss": (total_loss / seen).item()}
    if has_accuracy:
        result["accuracy"] = (total_correct / seen).item()
    return result


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512, device: str | torch.device | None = None) -> torch.Tensor:
    """Run ``model`` over (N, C, H, W) ``images`` in eval mode, in batches; returns its outputs on the CPU (N, ...)."""
    device = pick_device(device) if not isinstance(device, torch.device) else device
    was_training = model.training
    model.eval()
    try:
        outs = [model(images[i : i + batch_size].to(device)).float().cpu() for i in range(0, images.shape[0], batch_size)]
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


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
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
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total, pct_start=pct_start, cycle_momentum=False)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None


def _length(loader: Iterable) -> int:
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError(f"train_loader must have a length (got {type(loader).__name__}); wrap generators in a list") from exc
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
