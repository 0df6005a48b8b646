"""Mixed precision: which autocast dtype a device supports, and whether gradients need scaling.

Half precision roughly doubles a GPU's arithmetic rate (tensor cores) and halves the memory
traffic of activations. Two 16-bit formats exist:

* **bf16** keeps fp32's 8 exponent bits, so gradients do not underflow: no loss scaling.
  Tensor cores run it from Ampere on (compute capability 8.0: A100, RTX 30xx, L4, H100).
* **fp16** has only 5 exponent bits: small gradients flush to zero unless the loss is
  multiplied by a large factor before ``backward`` and the gradients divided by it before
  the step (a ``GradScaler``; Micikevicius et al., "Mixed Precision Training", ICLR 2018).
  It is the fast format of older GPUs such as Colab's T4 (compute capability 7.5), which
  *emulates* bf16 slowly -- plain ``torch.cuda.is_bf16_supported()`` says True there, so we
  ask with ``including_emulation=False``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

PRECISION_NAMES = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """The numeric format of a run.

    Attributes:
        name: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        dtype: the autocast dtype (``None`` for fp32: no autocast).
        scale_grads: True for fp16, whose small gradients underflow without a GradScaler
            (Micikevicius et al., "Mixed Precision Training", 2018).
    """

    name: str
    dtype: torch.dtype | None
    scale_grads: bool

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        """The autocast context for ``device`` (a no-op for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler:
        """A ``GradScaler`` that is active only when this precision needs one (fp16 on CUDA).

        A disabled scaler passes ``scale(loss)``, ``step`` and ``update`` straight through,
        so the training loop is the same code for every precision.
        """
        return torch.amp.GradScaler(device.type, enabled=self.scale_grads)


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` is a GPU with bf16 tensor cores (CUDA compute capability >= 8.0, or ROCm).

    Plain ``torch.cuda.is_bf16_supported()`` also answers True where bf16 is only emulated
    (the T4), where it is several times slower than fp16; we ask without emulation.
    """
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Resolve a precision option for a device.

    ``"auto"``: bf16 on CUDA GPUs with bf16 tensor cores (Ampere and later), fp16 with
    gradient scaling on older CUDA GPUs (the T4 on Colab), fp32 on CPU and MPS.
    (bf16 autocast also runs on CPUs; it is faster only on CPUs with AVX512-BF16 or AMX,
    so on CPU it is opt-in: ``precision="bf16"``.)

    Args:
        requested: one of ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``.
        device: where the model runs.

    Returns:
        Precision: name, autocast dtype and whether gradients are scaled.

    Raises:
        ValueError: unknown option, ``"fp16"`` on CPU, or ``"bf16"`` on a GPU without bf16 tensor cores.
    """
    if requested == "auto":
        if device.type == "cuda":
            requested = "bf16" if has_native_bf16(device) else "fp16"
        else:
            requested = "fp32"
    if requested == "fp32":
        return Precision("fp32", None, False)
    if requested == "bf16":
        if device.type == "cuda" and not has_native_bf16(device):
            raise ValueError(
                f"{torch.cuda.get_device_name(device)} has no bf16 tensor cores (they came with compute "
                "capability 8.0, Ampere); use precision='fp16' or 'auto'"
            )
        return Precision("bf16", torch.bfloat16, False)
    if requested == "fp16":
        if device.type == "cpu":
            raise ValueError("precision='fp16' needs a GPU; on CPU use 'fp32' (or 'bf16' on CPUs with AMX/AVX512-BF16)")
        return Precision("fp16", torch.float16, device.type == "cuda")
    raise ValueError(f"precision must be one of {PRECISION_NAMES}, got {requested!r}")
