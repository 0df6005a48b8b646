"""A registry of named models, so notebooks, tests and the CLI build models by name.

Each entry records how to build the model and how to feed it, which lets one
parametrized test check every model in the kit (output shape, gradients reach every
parameter, no NaN), as timm does for its zoo::

    @register_model("lenet5", task="classification", input_shape=(1, 28, 28), output_shape=(10,),
                    reference="LeCun et al. 1998")
    def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module: ...

    model = create_model("lenet5", num_classes=10)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn as nn

TASKS = (
    "classification",
    "segmentation",
    "detection",
    "generation",
    "embedding",
    "captioning",
    "promptable-segmentation",
    "other",
)


@dataclass(frozen=True)
class ModelSpec:
    """How to build and feed one registered model.

    Attributes:
        name: registry key (lower case, e.g. ``"resnet20_cifar"``).
        builder: ``builder(**kwargs) -> nn.Module``.
        task: one of :data:`TASKS`.
        input_shape: (C, H, W) of one image for image-in models; ``None`` when ``example_inputs`` is given.
        output_shape: expected output shape without the batch axis (``None``: not checked).
        example_inputs: ``example_inputs(batch_size) -> tuple`` of forward arguments, for models that take
            more than one image tensor (a timestep, prompts, tokens, targets).
        smoke_kwargs: builder arguments that make a small instance for the smoke test.
        reduce: ``reduce(output) -> scalar tensor`` for the gradient check (default: sum of every floating tensor in the output).
        unused_parameters: names of parameters allowed to get no gradient from one forward (e.g. a
            distillation head only used in training with a teacher).
        description: one line for ``list_models`` tables.
        reference: the paper (authors, year) the model follows.
    """

    name: str
    builder: Callable[..., nn.Module]
    task: str
    input_shape: tuple[int, ...] | None = None
    output_shape: tuple[int, ...] | None = None
    example_inputs: Callable[[int], tuple] | None = None
    smoke_kwargs: dict[str, Any] = field(default_factory=dict)
    reduce: Callable[[Any], torch.Tensor] | None = None
    unused_parameters: tuple[str, ...] = ()
    description: str = ""
    reference: str = ""

    def inputs(self, batch_size: int = 2, generator: torch.Generator | None = None) -> tuple:
        """Forward arguments for a batch of ``batch_size`` random examples."""
        if self.example_inputs is not None:
            return tuple(self.example_inputs(batch_size))
        return (torch.rand(batch_size, *self.input_shape, generator=generator),)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    task: str,
    input_shape: tuple[int, ...] | None = None,
    output_shape: tuple[int, ...] | None = None,
    example_inputs: Callable[[int], tuple] | None = None,
    smoke_kwargs: dict[str, Any] | None = None,
    reduce: Callable[[Any], torch.Tensor] | None = None,
    unused_parameters: tuple[str, ...] = (),
    description: str = "",
    reference: str = "",
):
    """Decorator registering a model builder (function or class) under ``name``.

    Raises:
        ValueError: the name is taken, the task unknown, or neither ``input_shape`` nor
            ``example_inputs`` says how to feed the model.
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].builder.__module__})")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if input_shape is None and example_inputs is None:
        raise ValueError(f"model {name!r}: give input_shape=(C, H, W) or example_inputs=fn(batch_size)")

    def wrap(builder: Callable[..., nn.Module]):
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = ModelSpec(
            name,
            builder,
            task,
            input_shape,
            output_shape,
            example_inputs,
            dict(smoke_kwargs or {}),
            reduce,
            tuple(unused_parameters),
            description or (doc[0] if doc else ""),
            reference,
        )
        return builder

    return wrap


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
    """
    return get_spec(name).builder(**kwargs)


def model_factory(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    """A function of no arguments that builds a new registered model each call, e.g. one encoder per method compared.

    ``make_encoder = model_factory("conv_encoder", widths=(16, 32, 64))`` then ``make_encoder()`` gives fresh weights
    every time (``ProbeBench.run_baselines(make_encoder)``, ``SimCLR(make_encoder())``).

    Raises:
        KeyError: unknown name (at once, not at the first call).
    """
    spec = get_spec(name)

    def build() -> nn.Module:
        return spec.builder(**kwargs)

    build.__name__ = build.__qualname__ = f"make_{name}"
    build.__doc__ = f"create_model({name!r}, **{kwargs!r})"
    return build


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name]


def list_models(task: str | None = None) -> list[str]:
    """Registered model names, sorted; only those of ``task`` when given.

    Raises:
        ValueError: unknown task.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return sorted(n for n, s in _REGISTRY.items() if task is None or s.task == task)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; shared parameters counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
