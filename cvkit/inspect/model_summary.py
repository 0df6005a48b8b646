r"""Model summary: per-layer output shape, parameters and multiply-accumulates (MACs) of any ``nn.Module``.

``summary(model, (3, 224, 224))`` runs one forward pass on a zero image of batch size 1
and returns a :class:`ModelSummary` table that prints as text, renders as Markdown in a
notebook, and can be collapsed to the stages of a network with ``depth=1``. A model built
on the meta device (``with torch.device("meta"): model = ...``) is summarised without
computing anything: only shapes flow, so even ResNet-152 takes a moment.

What is counted as a MAC (one multiplication and one addition), per image:

* convolution: every output value is a dot product over :math:`C_{in}/g \cdot k_h k_w` inputs,
  so :math:`\mathrm{MACs} = H_{out} W_{out} C_{out} \cdot (C_{in}/g) k_h k_w`
  (a transposed convolution: every *input* value is spread over :math:`(C_{out}/g) k_h k_w` outputs);
* matrix products (``nn.Linear``, ``matmul``, ``bmm``, attention's :math:`QK^\top` and :math:`AV`):
  :math:`n \cdot k \cdot m` for an (n, k) by (k, m) product.

Biases, normalization, activations, pooling and additions are not counted: this is the
convention of the "FLOPs" columns of the ResNet paper (3.8 x 10^9 for ResNet-50) and of the
"GFLOPS" in torchvision's model documentation, which are multiply-accumulates (twice that
many floating-point operations). The counting is PyTorch's own ``torch.utils.flop_counter.FlopCounterMode``
(its FLOPs are two per MAC for exactly these operators), which sees the aten operators dispatched during the
forward pass, so functional calls (``F.conv2d`` in a custom forward, ``q @ k.transpose(-2, -1)``) are counted
too; forward hooks attribute them to the innermost module that was running. :func:`count_macs` is the one-line
total for any forward call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def _prod(values: Sequence[int]) -> int:
    return int(math.prod(int(v) for v in values))


def conv_macs(
    input_shape: Sequence[int], weight_shape: Sequence[int], output_shape: Sequence[int], transposed: bool = False
) -> int:
    """MACs of one convolution call (any number of spatial dimensions, the whole batch).

    Args:
        input_shape: ``(N, C_in, *spatial_in)``.
        weight_shape: ``(C_out, C_in / groups, *kernel)`` for a convolution, ``(C_in, C_out / groups, *kernel)``
            transposed.
        output_shape: ``(N, C_out, *spatial_out)``.
        transposed: a transposed convolution.

    Returns:
        int: ``prod(output_shape) * C_in/groups * prod(kernel)``, or for a transposed convolution
        ``prod(input_shape) * C_out/groups * prod(kernel)``.
    """
    per_value = int(weight_shape[1]) * _prod(weight_shape[2:])
    return (_prod(input_shape) if transposed else _prod(output_shape)) * per_value


def count_macs(model: nn.Module | Callable[..., Any], *inputs: Any) -> int:
    """Multiply-accumulates of one call ``model(*inputs)``, for the whole batch, without gradients.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (its FLOPs / 2): convolutions, matrix products and
    scaled dot-product attention, as :func:`summary` counts them. Works on the meta device (shapes only).

    Args:
        model: any callable, usually an ``nn.Module``.
        *inputs: its forward arguments, e.g. a (B, C, H, W) float tensor.

    Returns:
        int, the MACs of the call (divide by B for MACs per image).

    Raises:
        TypeError: ``model`` is not callable.
    """
    if not callable(model):
        raise TypeError(f"model must be callable (an nn.Module or a function), got {type(model).__name__}")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() // 2


@dataclass
class LayerRow:
    """One row of a :class:`ModelSummary`: one call of one module.

    Attributes:
        name: module path in the model (``"layer1.0.conv1.conv"``); ``""`` for the model itself.
        type: the module's class name.
        depth: number of dots in ``name`` plus one (0 for the model itself).
        output_shape: shape of the first tensor the call returned (batch axis included).
        params: parameters of this module not already counted in an earlier row (shared weights count once);
            in a collapsed summary, those of its whole subtree.
        macs: multiply-accumulates done by the call (its whole subtree in a collapsed summary).
        is_leaf: the module has no children.
    """

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...] = ()
    params: int = 0
    macs: int = 0
    is_leaf: bool = True
    # bookkeeping for collapsing: MACs and params of the subtree, and own (exclusive) MACs
    subtree_macs: int = 0
    subtree_params: int = 0
    own_macs: int = 0


@dataclass
class ModelSummary:
    """Per-layer table and totals for one model and input size.

    Attributes:
        rows: the table rows, in the order the modules were called.
        input_shape: the input's shape (batch axis included).
        total_params: parameters of the model (shared ones once).
        trainable_params: those with ``requires_grad``.
        total_macs: all MACs of the forward pass for the whole batch.
        batch_size: N of the input (MACs per image = ``total_macs / batch_size``).
        depth: ``None`` for the leaf view, d for the view collapsed to depth d.
    """

    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    total_params: int
    trainable_params: int
    total_macs: int
    batch_size: int = 1
    depth: int | None = None
    model_name: str = ""
    _all_rows: list[LayerRow] = field(default_factory=list, repr=False)

    @property
    def macs_per_image(self) -> float:
        """Total MACs divided by the batch size."""
        return self.total_macs / self.batch_size

    def __getitem__(self, name: str) -> LayerRow:
        """The first row of the module called ``name`` (any depth, even when collapsed away).

        Raises:
            KeyError: no module of that name ran.
        """
        for row in [*self.rows, *self._all_rows]:  # a collapsed row (subtree totals) first
            if row.name == name:
                return row
        raise KeyError(
            f"no module named {name!r} ran in the forward pass; names look like {[r.name for r in self.rows[:3]]}"
        )

    def collapse(self, depth: int) -> "ModelSummary":
        """The same model with every module deeper than ``depth`` folded into its ancestor at ``depth``.

        Rows are the modules at exactly ``depth`` (and shallower leaves), each with the params and
        MACs of its whole subtree; ``depth=1`` gives one row per stage of a ResNet.

        Raises:
            ValueError: ``depth`` < 1.
        """
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        rows = []
        for r in self._all_rows:
            if (
                r.depth == depth
                or (r.depth < depth and r.is_leaf)
                or (0 < r.depth < depth and (r.own_macs or r.params))
            ):
                subtree = r.depth == depth
                rows.append(
                    replace(
                        r,
                        params=r.subtree_params if subtree else r.params,
                        macs=r.subtree_macs if subtree else r.own_macs,
                    )
                )
        return replace(self, rows=rows, depth=depth)

    # -- rendering ---------------------------------------------------------------------------
    def _table(self) -> tuple[list[str], list[list[str]], list[str]]:
        header = ["layer", "type", "output shape", "params", "MACs"]
        body = [
            [r.name or "(model)", r.type, "x".join(str(s) for s in r.output_shape), f"{r.params:,}", f"{r.macs:,}"]
            for r in self.rows
        ]
        total = ["total", "", "", f"{self.total_params:,}", f"{self.total_macs:,}"]
        return header, body, total

    def to_markdown(self) -> str:
        """The table as Markdown, with a totals row and a line of totals in millions/billions."""
        header, body, total = self._table()
        lines = ["| " + " | ".join(header) + " |", "|---|---|---|---:|---:|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        lines.append("| **" + "** | **".join(c or " " for c in total) + "** |")
        lines.append("")
        lines.append(self.totals_line())
        return "\n".join(lines)

    def totals_line(self) -> str:
        """One line: parameters (M), MACs per image (G), input shape."""
        macs = self.macs_per_image
        macs_text = f"{macs / 1e9:.3f} G" if macs >= 1e8 else f"{macs / 1e6:.3f} M"
        return (
            f"{self.total_params / 1e6:.3f} M parameters ({self.trainable_params:,} trainable), "
            f"{macs_text} MACs per image, input {tuple(self.input_shape)}"
        )

    def __str__(self) -> str:
        header, body, total = self._table()
        widths = [max(len(r[i]) for r in [header, *body, total]) for i in range(len(header))]
        fmt = lambda row: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        return "\n".join([fmt(header), rule, *(fmt(r) for r in body), rule, fmt(total), self.totals_line()])

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"ModelSummary({len(self.rows)} rows, {self.totals_line()})"


def summary(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    inputs: torch.Tensor | tuple | None = None,
    depth: int | None = None,
    device: str | torch.device | None = None,
) -> ModelSummary:
    """Run one forward pass and tabulate every layer's output shape, parameters and MACs.

    Args:
        model: any ``nn.Module``; it is run in eval mode (BatchNorm uses running statistics, so a
            batch of one works) and put back in its previous mode.
        input_size: (C, H, W) of one image (a zero batch of one is made), or (N, C, H, W).
        inputs: the forward arguments instead (a tensor or a tuple), for models with other inputs.
        depth: ``None`` lists the leaf layers; ``d`` collapses every module deeper than d into its
            ancestor (``depth=1``: the top-level children, e.g. the stages of a ResNet).
        device: where to run (``None``: where the model's parameters are, else the CPU).

    Returns:
        ModelSummary: ``rows``, ``total_params``, ``total_macs``; ``print`` it or display it in a notebook.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: neither or both of ``input_size`` and ``inputs`` are given, or ``input_size`` is
            not 3 or 4 positive ints.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if (input_size is None) == (inputs is None):
        raise ValueError("give exactly one of input_size=(C, H, W) and inputs=<tensor or tuple of forward arguments>")
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    if input_size is not None:
        size = tuple(int(s) for s in input_size)
        if len(size) not in (3, 4) or min(size) < 1:
            raise ValueError(f"input_size must be (C, H, W) or (N, C, H, W) of positive ints, got {tuple(input_size)}")
        size = size if len(size) == 4 else (1, *size)
        first_param = next(model.parameters(), None)
        dtype = first_param.dtype if first_param is not None and first_param.is_floating_point() else torch.float32
        args: tuple = (torch.zeros(size, device=device, dtype=dtype),)
    else:
        args = inputs if isinstance(inputs, tuple) else (inputs,)
    first_tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
    input_shape = tuple(first_tensor.shape) if first_tensor is not None else ()
    batch = input_shape[0] if input_shape else 1

    names = {m: n for n, m in model.named_modules()}
    counter = FlopCounterMode(display=False)

    def macs_so_far() -> int:
        return counter.get_total_flops() // 2  # FLOPs count a multiply and an add: two per MAC

    rows: list[LayerRow] = []
    stack: list[tuple[LayerRow, int, list[int]]] = []  # (row, MAC counter at entry, children's MACs)
    seen_params: set[int] = set()

    def pre_hook(module, _args):
        name = names.get(module, "?")
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        row = LayerRow(
            name,
            type(module).__name__,
            0 if name == "" else name.count(".") + 1,
            params=sum(p.numel() for p in own),
            is_leaf=next(module.children(), None) is None,
        )
        rows.append(row)
        stack.append((row, macs_so_far(), [0]))

    def post_hook(module, _args, output):
        row, start, children = stack.pop()
        row.subtree_macs = macs_so_far() - start
        row.own_macs = row.subtree_macs - children[0]
        row.macs = row.own_macs
        out = _first_tensor(output)
        row.output_shape = tuple(out.shape) if out is not None else ()
        if stack:
            stack[-1][2][0] += row.subtree_macs

    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(*args)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    # subtree params: a row's own params plus those of every later row nested under it in the same call
    for i, row in enumerate(rows):
        total = row.params
        prefix = row.name + "." if row.name else ""
        for later in rows[i + 1 :]:
            if later.depth <= row.depth or not later.name.startswith(prefix):
                break
            total += later.params
        row.subtree_params = total
    leaves = [r for r in rows if r.is_leaf or r.params or r.own_macs]
    result = ModelSummary(
        rows=leaves,
        input_shape=input_shape,
        total_params=sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()),
        trainable_params=sum(p.numel() for p in {id(p): p for p in model.parameters() if p.requires_grad}.values()),
        total_macs=macs_so_far(),
        batch_size=batch,
        model_name=type(model).__name__,
        _all_rows=rows,
    )
    return result.collapse(depth) if depth is not None else result


def _first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None
