"""The settings of a training run, as one small typed record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("onecycle", "cosine", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig:
    """Everything :func:`cvkit.train.fit` needs besides the model and the data.

    Raises:
        ValueError: on construction, for an unknown option or an out-of-range number.
    """

    epochs: int = 5  # passes over the training data
    lr: float = 3e-3  # peak learning rate (reached after warm-up with "onecycle")
    optimizer: Literal["adamw", "sgd"] = "adamw"  # AdamW (Loshchilov & Hutter 2019) or SGD with Nesterov momentum
    weight_decay: float = 5e-4  # decoupled (AdamW) or L2 (SGD) weight decay
    momentum: float = 0.9  # SGD momentum; AdamW's beta1
    scheduler: Literal["onecycle", "cosine", "none"] = "onecycle"  # learning-rate schedule, stepped every batch
    warmup_fraction: float = 0.2  # "onecycle": fraction of steps spent warming up
    label_smoothing: float = 0.0  # for the default cross-entropy step
    grad_clip: float | None = None  # max global L2 norm of gradients (None: no clipping)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = (
        "auto"  # "auto": bf16 on GPUs that have it, fp16 + GradScaler on others (T4), fp32 on CPU
    )
    channels_last: bool | Literal["auto"] = "auto"  # NHWC memory format ("auto": on CUDA only)
    compile: bool | Literal["auto"] = (
        "auto"  # torch.compile the model ("auto": on CUDA with Triton, for runs of >= 2000 steps; never on CPU)
    )
    seed: int = 0  # seeds torch, NumPy and Python before building the optimizer
    device: str | None = None  # None: cuda, then mps, then cpu
    checkpoint_dir: str | None = None  # save last.pt (and best.pt) here after every epoch
    resume: bool = True  # continue from checkpoint_dir/last.pt when it exists
    check_every: int = (
        25  # steps between host syncs (progress bar, NaN/inf check); the steps in between never wait for the GPU
    )
    progress: bool = True  # show a tqdm progress bar per epoch (process 0 only under torchrun)
    verbose: bool = True  # print one summary line per epoch (process 0 only under torchrun)
    sync_batchnorm: bool = (
        False  # under torchrun: BatchNorm over the global batch (SyncBatchNorm, CUDA only), else per process
    )
    find_unused_parameters: bool = False  # under torchrun: let DDP train models whose forward leaves parameters unused

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.compile not in (True, False, "auto"):
            raise ValueError(f"compile must be True, False or 'auto', got {self.compile!r}")
        if self.channels_last not in (True, False, "auto"):
            raise ValueError(f"channels_last must be True, False or 'auto', got {self.channels_last!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {self.check_every}")
        for name in ("sync_batchnorm", "find_unused_parameters"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive or None, got {self.grad_clip}")

    def updated(self, **changes: Any) -> "TrainConfig":
        """A copy with some fields changed.

        Raises:
            TypeError: a name is not a field of TrainConfig (the message lists the fields).
        """
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise TypeError(f"unknown training option(s) {unknown}; TrainConfig has {sorted(names)}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in checkpoints)."""
        return asdict(self)
