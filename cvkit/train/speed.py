"""The fast path: what :func:`cvkit.train.fit` turns on for a device, and why.

A GPU is fast only while it has queued work. The textbook loop starves it three ways:
the CPU decodes and augments one image at a time (2 cores on Colab cannot keep up), every
``loss.item()`` makes the CPU wait for the GPU to finish before it queues the next step, and
fp32 leaves the tensor cores idle. The cures, each one line of this module:

* data resident on the device, augmented there in batches (:class:`cvkit.data.DeviceLoader`);
* half precision autocast (:mod:`cvkit.train.precision`): bf16, or fp16 with a GradScaler;
* channels_last (NHWC) memory format, the layout tensor-core convolutions want, which saves
  the transposes cuDNN would otherwise do around every convolution;
* a fused optimizer: one kernel updates every parameter, and with fp16 the GradScaler's
  inf/NaN check stays on the GPU instead of costing a host sync per step;
* ``torch.backends.cudnn.benchmark``: cuDNN times its convolution algorithms once per shape
  and keeps the fastest;
* ``torch.compile`` (Triton kernels that fuse BatchNorm, activations and residual adds): it
  takes tens of seconds to compile, so it pays off only in long runs;
* no host sync inside a step: the loop records losses in a tensor on the device and looks at
  them every ``check_every`` steps.

Ideas collected from the fastest public CIFAR-10 trainers (Keller Jordan's airbench, 2024;
Page's "How to train your ResNet", 2018), written here as plain, separate switches.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Iterator

import torch

from cvkit.train.config import TrainConfig
from cvkit.train.precision import Precision, choose_precision

COMPILE_MIN_STEPS = 2000  # rule of thumb: compiling costs ~0.5-1 min, worth it for runs of this many steps


@dataclass(frozen=True)
class SpeedPlan:
    """The fast-path switches for one run, resolved from a :class:`TrainConfig` and a device.

    Attributes:
        device: where the model trains.
        precision: the autocast format (and whether a GradScaler is active).
        channels_last: convert the model and every 4-D batch to NHWC memory format.
        compile: wrap the model in ``torch.compile``.
        fused_optimizer: build the optimizer with ``fused=True`` (one kernel per step, no sync with fp16).
        cudnn_benchmark: let cuDNN autotune convolution algorithms during the run.
    """

    device: torch.device
    precision: Precision
    channels_last: bool
    compile: bool
    fused_optimizer: bool
    cudnn_benchmark: bool

    def describe(self) -> str:
        """One line for the training log, e.g. ``"cuda: bf16 autocast, channels_last, compiled, fused optimizer"``."""
        parts = [f"{self.precision.name} autocast" if self.precision.dtype is not None else "fp32"]
        if self.precision.scale_grads:
            parts.append("GradScaler")
        parts.append("channels_last" if self.channels_last else "NCHW")
        parts.append("compiled" if self.compile else "eager")
        if self.fused_optimizer:
            parts.append("fused optimizer")
        if self.cudnn_benchmark:
            parts.append("cudnn.benchmark")
        return f"{self.device.type}: " + ", ".join(parts)


def plan_speed(cfg: TrainConfig, device: torch.device, total_steps: int, *, dynamic_shapes: bool = False) -> SpeedPlan:
    """Resolve the ``"auto"`` options of ``cfg`` for ``device`` and a run of ``total_steps`` optimizer steps.

    * precision ``"auto"``: see :func:`cvkit.train.choose_precision` (bf16, fp16 + GradScaler, fp32 on CPU).
    * channels_last ``"auto"``: on CUDA only (on CPU, oneDNN's NCHW kernels are as fast or faster for
      small images; measured in ``benchmarks/README.md``).
    * compile ``"auto"``: on CUDA when Triton is installed and the run has at least
      :data:`COMPILE_MIN_STEPS` steps; never on CPU, where compiling would take longer than the
      short runs CPUs are used for; never for a model with ``dynamic_shapes`` (see
      :func:`has_dynamic_shapes`), which would recompile for each new shape.
    * fused optimizer and cudnn.benchmark: on CUDA.

    Raises:
        ValueError: a precision the device cannot run (see :func:`cvkit.train.choose_precision`).
    """
    cuda = device.type == "cuda"
    channels_last = cuda if cfg.channels_last == "auto" else bool(cfg.channels_last)
    if cfg.compile == "auto":
        compile_model = cuda and triton_available() and total_steps >= COMPILE_MIN_STEPS and not dynamic_shapes
    else:
        compile_model = bool(cfg.compile)
    return SpeedPlan(
        device=device,
        precision=choose_precision(cfg.precision, device),
        channels_last=channels_last,
        compile=compile_model,
        fused_optimizer=cuda,
        cudnn_benchmark=cuda,
    )


def has_dynamic_shapes(model: torch.nn.Module) -> bool:
    """Whether ``model``'s tensor shapes change from batch to batch, so that ``torch.compile`` would recompile again
    and again: torchvision's two-stage detectors (``GeneralizedRCNN``: Faster and Mask R-CNN, whose proposals and
    positive RoIs vary in number), or any model with a true ``dynamic_shapes`` attribute.

    Compiled on an H200, 08_2's Faster R-CNN and 09_2's Mask R-CNN had not finished one epoch after 6 minutes; 2 CPU
    cores train 08_2's in about 100 s (``benchmarks/README.md``).
    """
    if getattr(model, "dynamic_shapes", False):
        return True
    # a GeneralizedRCNN exists only if its module was imported: importing it here would cost every fit a second
    rcnn = sys.modules.get("torchvision.models.detection.generalized_rcnn")
    return rcnn is not None and isinstance(model, rcnn.GeneralizedRCNN)


def triton_available() -> bool:
    """Whether the Triton compiler (torch.compile's GPU backend) is installed."""
    return importlib.util.find_spec("triton") is not None


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    """Turn ``torch.backends.cudnn.benchmark`` on (when ``enabled``) for the ``with`` block, then restore it.

    Autotuning picks the fastest convolution algorithm for each input shape the first time
    it is seen; with the fixed batch shapes of training that costs one slow step.
    """
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous
