"""Mixed precision: which autocast dtype a device supports, and whether gradients need scaling."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


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


def choose_precision(requested: str, device: torch.device) -> Precision:
    """Resolve a precision option for a device.

    ``"auto"``: bf16 on CUDA GPUs that support it (Ampere and later), fp16 with gradient
    scaling on older CUDA GPUs (the T4 on Colab), fp32 on CPU and MPS.

    Raises:
        ValueError: unknown option, ``"fp16"`` on CPU, or ``"bf16"`` on a GPU without bf16.
    """
    if requested == "auto":
        if device.type == "cuda":
            requested = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            requested = "fp32"
    if requested == "fp32":
        return Precision("fp32", None, False)
    if requested == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"{torch.cuda.get_device_name(device)} has no bf16 support; use precision='fp16' or 'auto'")
        return Precision("bf16", torch.bfloat16, False)
    if requested == "fp16":
        if device.type == "cpu":
            raise ValueError("precision='fp16' needs a GPU; on CPU use 'fp32' (or 'bf16' on CPUs with AMX/AVX512-BF16)")
        return Precision("fp16", torch.float16, device.type == "cuda")
    raise ValueError(f"precision must be one of 'auto', 'fp32', 'bf16', 'fp16', got {requested!r}")
