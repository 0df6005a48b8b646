"""Training utilities: the loop (:func:`fit`), evaluation, mixed precision, checkpoints and history.

Typical use in a notebook::

    from cvkit.data import DeviceLoader, load_fashion_mnist, flip_and_translate
    from cvkit.train import fit

    train = DeviceLoader.from_dataset(load_fashion_mnist("train"), 256, augment=flip_and_translate())
    test = DeviceLoader.from_dataset(load_fashion_mnist("test"), 1024, shuffle=False)
    history = fit(model, train, test, epochs=5, lr=3e-3, checkpoint_dir="checkpoints/lenet")
    cvkit.viz.plot_history(history)

The same script runs on several GPUs (or CPU processes) with ``torchrun --nproc_per_node N script.py``;
see :mod:`cvkit.train.distributed` and ``cvkit train`` (:mod:`cvkit.course.train_job`).
"""

from cvkit.train.checkpoint import load_checkpoint, save_checkpoint
from cvkit.train.config import TrainConfig
from cvkit.train.distributed import ProcessInfo, is_main_process, process_info
from cvkit.train.experiments import ExperimentLog, RunSummary
from cvkit.train.history import History
from cvkit.train.loop import (
    NonFiniteLossError,
    StepOutput,
    TrainingOutOfMemoryError,
    classification_step,
    evaluate,
    fit,
    make_optimizer,
    make_scheduler,
    predict,
    to_device,
)
from cvkit.train.precision import Precision, choose_precision, has_native_bf16
from cvkit.train.speed import SpeedPlan, plan_speed

__all__ = [
    "ExperimentLog",
    "History",
    "NonFiniteLossError",
    "Precision",
    "ProcessInfo",
    "RunSummary",
    "SpeedPlan",
    "StepOutput",
    "TrainConfig",
    "TrainingOutOfMemoryError",
    "choose_precision",
    "classification_step",
    "evaluate",
    "fit",
    "has_native_bf16",
    "is_main_process",
    "load_checkpoint",
    "make_optimizer",
    "make_scheduler",
    "plan_speed",
    "predict",
    "process_info",
    "save_checkpoint",
    "to_device",
]
