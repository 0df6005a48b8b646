r"""Analytic receptive fields of conv nets: from a list of layers, or from any traceable model's graph.

A unit's receptive field is the block of input pixels that can influence it.
Per axis, follow the first unit's field :math:`[a, b]` (input pixel coordinates, negative
inside the padding) and the jump :math:`j` between neighbouring units through every layer
(Araujo, Norris & Sim, "Computing receptive fields of convolutional neural networks",
Distill 2019). A layer with kernel :math:`k`, stride :math:`s`, padding :math:`p` and
dilation :math:`d` (effective kernel :math:`k_e = d(k - 1) + 1`) maps

.. math:: a' = a - p\,j, \qquad b' = b + (k_e - 1 - p)\,j, \qquad j' = s\,j,

so the size is :math:`r = b - a + 1`, the *effective stride* is :math:`S = j` and the
*effective padding* is :math:`P = -a`; unit :math:`u` sees :math:`[uS - P,\; uS - P + r - 1]`.
Where paths meet (a residual addition, an Inception concatenation) the field is the union
over the paths: :math:`a = \min_i a_i,\ b = \max_i b_i` (the jumps agree, or the shapes
could not be added). Global operations (global pooling, a fully connected layer, the gate of
a squeeze-and-excitation block) make every later unit see the whole input.

:func:`receptive_field_chain` applies the recurrence to a plain chain of layers given as numbers (lecture 02);
:func:`receptive_fields` traces any model with ``torch.fx`` (so branches and residuals are seen, not only a chain of
layers), runs it once to learn every tensor's shape, and applies the rules of :mod:`cvkit.conv.rules` node by node.
The measured twin is :func:`cvkit.conv.empirical.empirical_receptive_field`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

from cvkit.conv.rules import Geometry, ReceptiveFieldError, node_shape, op_label, walk


# -- one row of the result --------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of the units of one layer's output.

    Attributes:
        name: the module path (``"layer4.2.conv3"``), a container (``"layer4"``), or
            ``"<module>.<op>"`` for a function such as a residual addition (``"layer1.0.add"``).
        op: what the layer does (``"Conv2d 3x3/2"``, ``"add"``, ...).
        output_shape: (N, C, H, W) of its output.
        size: (rows, cols) of input pixels one unit sees, padding included.
        stride: effective stride (rows, cols): input pixels between neighbouring units (0 after a global op).
        padding: effective padding (rows, cols): how far unit 0's field reaches before pixel 0.
        is_global: every unit sees the whole input.
        grid: (H, W) of the output's grid of units (``None`` when global); it is
            ``output_shape[-2:]`` for NCHW outputs and ``output_shape[1:3]`` for channels-last ones.
    """

    name: str
    op: str
    output_shape: tuple[int, ...]
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    is_global: bool = False
    grid: tuple[int, int] | None = None

    def box(self, y: int, x: int, clip: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
        """The input-pixel box seen by unit (y, x), ``xyxy`` with exclusive ends.

        Args:
            y, x: the unit's row and column in this layer's output.
            clip: (H, W) of the image to clip to (``None``: may extend into the padding).

        Returns:
            (x1, y1, x2, y2) ints: columns x1..x2-1 and rows y1..y2-1.
        """
        y1 = y * self.stride[0] - self.padding[0]
        x1 = x * self.stride[1] - self.padding[1]
        y2, x2 = y1 + self.size[0], x1 + self.size[1]
        if clip is not None:
            y1, x1, y2, x2 = max(y1, 0), max(x1, 0), min(y2, clip[0]), min(x2, clip[1])
        return (x1, y1, x2, y2)

    def center(self, y: int, x: int) -> tuple[float, float]:
        """Input (row, col) of the centre of unit (y, x)'s field."""
        return (
            y * self.stride[0] - self.padding[0] + (self.size[0] - 1) / 2,
            x * self.stride[1] - self.padding[1] + (self.size[1] - 1) / 2,
        )


@dataclass
class ReceptiveFieldTable:
    """Receptive fields of every layer of a model, in execution order.

    ``table["layer4"]`` gives one :class:`ReceptiveField`; ``table.rows`` lists the layers
    (leaf modules and merges), ``table.containers`` the outputs of container modules
    (stages, blocks). Prints as text and renders as Markdown in a notebook.
    """

    rows: list[ReceptiveField]
    containers: dict[str, ReceptiveField]
    input_shape: tuple[int, ...]

    def __getitem__(self, name: str) -> ReceptiveField:
        """The field of a layer or container by name.

        Raises:
            KeyError: no such layer (the message shows some names).
        """
        for row in self.rows:
            if row.name == name:
                return row
        if name in self.containers:
            return self.containers[name]
        raise KeyError(
            f"no layer named {name!r}; layers look like {[r.name for r in self.rows[:4]]}, containers like {list(self.containers)[:4]}"
        )

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def last(self, kind: Literal["conv", "spatial"] = "spatial") -> ReceptiveField:
        """The last convolution (``"conv"``) or the last layer whose units still have their own field (``"spatial"``).

        Raises:
            ValueError: unknown kind, or no such layer.
        """
        if kind not in ("conv", "spatial"):
            raise ValueError(f"kind must be 'conv' or 'spatial', got {kind!r}")
        for row in reversed(self.rows):
            if (kind == "conv" and row.op.startswith("Conv")) or (kind == "spatial" and not row.is_global):
                return row
        raise ValueError(f"the model has no {kind} layer")

    def select(self, names: Sequence[str]) -> "ReceptiveFieldTable":
        """A table of just these layers or containers, in the given order."""
        return ReceptiveFieldTable([self[n] for n in names], {}, self.input_shape)

    def to_markdown(self, only: Literal["all", "conv", "spatial"] = "all") -> str:
        """Markdown table: layer, op, output shape, RF size, effective stride, effective padding."""
        lines = ["| layer | op | output | RF size | eff. stride | eff. padding |", "|---|---|---|---:|---:|---:|"]
        for r in self.rows:
            if (only == "conv" and not r.op.startswith("Conv")) or (only == "spatial" and r.is_global):
                continue
            size, stride, pad = (
                ("global", "-", "-") if r.is_global else (_fmt_pair(r.size), _fmt_pair(r.stride), _fmt_pair(r.padding))
            )
            lines.append(
                f"| {r.name} | {r.op} | {'x'.join(map(str, r.output_shape[1:]))} | {size} | {stride} | {pad} |"
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        width = max(len(r.name) for r in self.rows)
        lines = [f"{'layer'.ljust(width)}  {'op':<22} {'RF size':>9} {'stride':>7} {'padding':>8}"]
        for r in self.rows:
            size, stride, pad = (
                ("global", "-", "-") if r.is_global else (_fmt_pair(r.size), _fmt_pair(r.stride), _fmt_pair(r.padding))
            )
            lines.append(f"{r.name.ljust(width)}  {r.op:<22} {size:>9} {stride:>7} {pad:>8}")
        return "\n".join(lines)


def _fmt_pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def receptive_field_chain(layers: Sequence[tuple[int, int] | tuple[int, int, int]]) -> list[dict[str, int]]:
    r"""Receptive field, effective stride (jump) and effective padding after each layer of a plain chain.

    With :math:`r_0 = 1, j_0 = 1`: :math:`r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}` and :math:`j_l = j_{l-1} s_l`
    (Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019, eq. 1-2).

    Args:
        layers: ``(kernel_size, stride)`` or ``(kernel_size, stride, dilation)`` per layer, input first.

    Returns:
        one dict per layer with ``size`` (pixels), ``jump`` (input pixels between neighbouring units)
        and ``padding`` (effective padding in input pixels, assuming each layer pads ``d (k - 1) // 2``).

    Raises:
        ValueError: a kernel, stride or dilation below 1.
    """
    size, jump, pad = 1, 1, 0
    rows = []
    for layer in layers:
        k, s, d = (*layer, 1)[:3]
        if min(k, s, d) < 1:
            raise ValueError(f"kernel, stride and dilation must be >= 1, got {layer}")
        pad += (d * (k - 1) // 2) * jump
        size += (k - 1) * d * jump
        jump *= s
        rows.append({"size": size, "jump": jump, "padding": pad})
    return rows


# -- public entry points --------------------------------------------------------------------------
def receptive_fields(model: nn.Module, input_size: Sequence[int] = (3, 224, 224)) -> ReceptiveFieldTable:
    """Analytic receptive field of every layer of a conv net, branches and residuals included.

    Args:
        model: an ``nn.Module`` that ``torch.fx.symbolic_trace`` can trace (torchvision's
            classification CNNs and the kit's models can); its first input is the image.
        input_size: (C, H, W) of the image, used to learn every tensor's shape (the sizes, strides
            and paddings do not depend on it, except where a pool adapts to it).

    Returns:
        ReceptiveFieldTable: per layer (in execution order) its RF size, effective stride and
        effective padding; ``table["layer4"]`` also works for containers.

    Raises:
        ReceptiveFieldError: the model cannot be traced, or uses an operation the rules do not
            cover (upsampling, indexing a single row, ...); the message names the node.
        ValueError: ``input_size`` is not (C, H, W).
    """
    size = tuple(int(s) for s in input_size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"input_size must be (C, H, W) of positive ints, got {tuple(input_size)}")
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure gets the same advice
        raise ReceptiveFieldError(
            f"torch.fx could not trace {type(model).__name__} ({type(exc).__name__}: {str(exc)[:200]}); "
            "measure the field with empirical_receptive_field instead"
        ) from exc
    was_training = model.training
    gm.eval()
    first = next(model.parameters(), None)
    x = torch.zeros(
        1,
        *size,
        dtype=first.dtype if first is not None else torch.float32,
        device=first.device if first is not None else "cpu",
    )
    with torch.no_grad():
        ShapeProp(gm).propagate(x)
    model.train(was_training)
    geo, modules = walk(gm)

    rows: list[ReceptiveField] = []
    last_in: dict[str, ReceptiveField] = {}  # container module -> the field of its last node
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        g, shape = geo.get(node), node_shape(node)
        if g is None or shape is None or node.op in ("placeholder", "output"):
            continue
        stack = [k.split("@")[0] for k in node.meta.get("nn_module_stack", {})]
        if node.op == "call_module":
            name = node.target
        else:  # a function inside some module: "<module>.<op>", numbered when repeated
            label = op_label(node, None)
            base = f"{stack[-1]}.{label}" if stack else label
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base] - 1}"
        row = _row(name, op_label(node, modules.get(node.target) if node.op == "call_module" else None), shape, g)
        if node.op == "call_module" or _is_merge(node) or _is_window(node):
            rows.append(row)
        for scope in stack:
            last_in[scope] = _renamed(row, scope)
    return ReceptiveFieldTable(rows, last_in, tuple(x.shape))


def _renamed(row: ReceptiveField, name: str) -> ReceptiveField:
    """The same field under another name (a container takes its last layer's field)."""
    return ReceptiveField(name, row.op, row.output_shape, row.size, row.stride, row.padding, row.is_global, row.grid)


def _is_window(node: fx.Node) -> bool:
    """A functional convolution or pooling (``F.conv2d`` in a custom forward, or a bare ``nn.Conv2d`` traced)."""
    return node.op == "call_function" and node.target in (
        F.conv2d,
        torch.conv2d,
        F.max_pool2d,
        torch.max_pool2d,
        F.avg_pool2d,
    )


def _is_merge(node: fx.Node) -> bool:
    return sum(1 for n in node.all_input_nodes if n.op != "get_attr") > 1 and (
        node.target in (operator.add, operator.iadd, operator.mul, torch.add, torch.cat, torch.mul, torch.stack)
        or node.target in ("add", "add_", "mul", "mul_")
    )


def _row(name: str, op: str, shape, g: Geometry) -> ReceptiveField:
    size = (g.b[0] - g.a[0] + 1, g.b[1] - g.a[1] + 1)
    grid = None if g.constant else (int(shape[g.dims[0]]), int(shape[g.dims[1]]))
    return ReceptiveField(name, op, tuple(shape), size, tuple(g.j), (-g.a[0], -g.a[1]), g.constant, grid)


__all__ = ["ReceptiveField", "ReceptiveFieldError", "ReceptiveFieldTable", "receptive_field_chain", "receptive_fields"]
