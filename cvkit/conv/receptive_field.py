r"""Receptive fields of conv nets: analytic (from the graph) and empirical (from input gradients).

**Analytic.** A unit's receptive field is the block of input pixels that can influence it.
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

:func:`receptive_fields` traces the model with ``torch.fx`` (so branches and residuals are
seen, not only a chain of layers), runs it once to learn every tensor's shape, and applies the
rules above node by node.

**Empirical.** :func:`empirical_receptive_field` back-propagates from one unit to the input
image: the pixels with a non-zero gradient are the ones that unit depends on. In
``mode="support"`` it does so on a copy of the model made linear and positive (max-pools
become average pools of the same geometry, weights become small positive numbers, inputs
positive), so no ReLU or max-pool hides part of the field and the support's bounding box
is exactly the analytic field clipped to the image. In ``mode="gradient"`` it uses the
model as it is: the gradient magnitude is the *effective* receptive field (Luo et al.,
NeurIPS 2016), which concentrates in the centre of the analytic one.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from cvkit.hooks import get_module


class ReceptiveFieldError(ValueError):
    """The analytic receptive field cannot be computed for this model (an unsupported operation, or tracing failed)."""


# -- geometry of one tensor -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Geo:
    """Per axis (rows, cols): unit 0 sees input pixels a..b; unit u sees a + u j .. b + u j.

    ``j == (0, 0)`` means every unit sees the same pixels (after a global operation);
    ``dims`` are the negative indices of the (H, W) axes in the tensor (``None`` when constant).
    """

    a: tuple[int, int]
    b: tuple[int, int]
    j: tuple[int, int]
    dims: tuple[int, int] | None

    @property
    def constant(self) -> bool:
        return self.dims is None


_INPUT = _Geo((0, 0), (0, 0), (1, 1), (-2, -1))


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1])) if len(v) else (0, 0)
    return (int(v), int(v))


def _window(g: _Geo, k, s, p, d=1) -> _Geo:
    """A sliding window (conv or pool) of kernel k, stride s, padding p, dilation d on both axes."""
    k, s, p, d = _pair(k), _pair(s), _pair(p), _pair(d)
    a, b, j = [], [], []
    for ax in range(2):
        ke = d[ax] * (k[ax] - 1) + 1  # effective kernel size
        a.append(g.a[ax] - p[ax] * g.j[ax])
        b.append(g.b[ax] + (ke - 1 - p[ax]) * g.j[ax])
        j.append(g.j[ax] * s[ax])
    return _Geo(tuple(a), tuple(b), tuple(j), g.dims)


def _to_constant(g: _Geo, spatial: tuple[int, int]) -> _Geo:
    """Every unit now sees what all units of ``g`` (a map of size ``spatial``) saw together."""
    if g.constant:
        return g
    b = tuple(g.b[ax] + (spatial[ax] - 1) * g.j[ax] for ax in range(2))
    return _Geo(g.a, b, (0, 0), None)


def _union(geos: Sequence[_Geo]) -> _Geo:
    """Where paths meet: the union of their fields (all constant, or all with the same jumps)."""
    constant = any(g.constant for g in geos)
    if not constant and len({g.j for g in geos}) > 1:
        raise ReceptiveFieldError(f"paths with different effective strides {[g.j for g in geos]} meet; the shapes cannot align")
    a = tuple(min(g.a[ax] for g in geos) for ax in range(2))
    b = tuple(max(g.b[ax] for g in geos) for ax in range(2))
    if constant:
        return _Geo(a, b, (0, 0), None)
    return _Geo(a, b, geos[0].j, geos[0].dims)


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
        return (y * self.stride[0] - self.padding[0] + (self.size[0] - 1) / 2, x * self.stride[1] - self.padding[1] + (self.size[1] - 1) / 2)


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
        raise KeyError(f"no layer named {name!r}; layers look like {[r.name for r in self.rows[:4]]}, containers like {list(self.containers)[:4]}")

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
            size, stride, pad = ("global", "-", "-") if r.is_global else (_fmt_pair(r.size), _fmt_pair(r.stride), _fmt_pair(r.padding))
            lines.append(f"| {r.name} | {r.op} | {'x'.join(map(str, r.output_shape[1:]))} | {size} | {stride} | {pad} |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        width = max(len(r.name) for r in self.rows)
        lines = [f"{'layer'.ljust(width)}  {'op':<22} {'RF size':>9} {'stride':>7} {'padding':>8}"]
        for r in self.rows:
            size, stride, pad = ("global", "-", "-") if r.is_global else (_fmt_pair(r.size), _fmt_pair(r.stride), _fmt_pair(r.padding))
            lines.append(f"{r.name.ljust(width)}  {r.op:<22} {size:>9} {stride:>7} {pad:>8}")
        return "\n".join(lines)


def _fmt_pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


# -- the graph walk -----------------------------------------------------------------------------
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "prod", "norm"}
_RESHAPES = {"view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as"}


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else None


def _spatial(g: _Geo, shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[g.dims[0]], shape[g.dims[1]])


def _positive(dims: tuple[int, int], ndim: int) -> tuple[int, int]:
    return (dims[0] % ndim, dims[1] % ndim)


def _negative(dims: Sequence[int], ndim: int) -> tuple[int, int]:
    return (dims[0] - ndim, dims[1] - ndim)


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _reduce_dims(node: fx.Node, ndim: int) -> list[int] | None:
    """Dims a reduction removes (positive), or None for a full reduction."""
    dim = _arg(node, 1, "dim", None)
    if dim is None:
        return None
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [d % ndim for d in dims]


def _op_label(node: fx.Node, module: nn.Module | None) -> str:
    if module is not None:
        name = type(module).__name__
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
            kk = f"{k[0]}x{k[1]}"
            d = _pair(getattr(module, "dilation", 1))
            return f"{name} {kk}/{s[0]}" + (f" d{d[0]}" if d[0] > 1 else "")
        return name
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _walk(gm: fx.GraphModule) -> tuple[dict[fx.Node, _Geo | None], dict[str, nn.Module]]:
    modules = dict(gm.named_modules())
    geo: dict[fx.Node, _Geo | None] = {}
    first_input = True
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            geo[node] = _INPUT if first_input else None
            first_input = False
            continue
        if node.op in ("get_attr", "output"):
            geo[node] = None
            continue
        inputs = [n for n in node.all_input_nodes if geo.get(n) is not None]
        if not inputs:
            geo[node] = None
            continue
        try:
            geo[node] = _rule(node, inputs, geo, modules)
        except ReceptiveFieldError as exc:
            raise ReceptiveFieldError(f"at {node.format_node()}: {exc}") from None
    return geo, modules


def _rule(node: fx.Node, inputs: list[fx.Node], geo: dict, modules: dict[str, nn.Module]) -> _Geo | None:
    """The geometry of one node's output from its inputs' (see the module docstring)."""
    out = _shape(node)
    src = geo[inputs[0]]
    src_shape = _shape(inputs[0])
    target = node.target
    module = modules.get(target) if node.op == "call_module" else None
    name = target if isinstance(target, str) else getattr(target, "__name__", "")

    # 1. operations with a sliding window
    if isinstance(module, nn.Conv2d):
        padding = module.padding
        if isinstance(padding, str):
            padding = tuple(dl * (k - 1) // 2 for k, dl in zip(module.kernel_size, module.dilation)) if padding == "same" else 0
        return _window(src, module.kernel_size, module.stride, padding, module.dilation)
    if isinstance(module, nn.MaxPool2d):
        return _window(src, module.kernel_size, module.stride or module.kernel_size, module.padding, module.dilation)
    if isinstance(module, nn.AvgPool2d):
        return _window(src, module.kernel_size, module.stride or module.kernel_size, module.padding)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) or name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        return _adaptive(src, src_shape, out)
    if node.op == "call_function" and target in (F.conv2d, torch.conv2d):
        w = _shape(_arg(node, 1, "weight"))
        return _window(src, w[2:], _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1))
    if node.op == "call_function" and target in (F.max_pool2d, torch.max_pool2d):
        k = _arg(node, 1, "kernel_size")
        return _window(src, k, _arg(node, 2, "stride", None) or k, _arg(node, 3, "padding", 0), _arg(node, 4, "dilation", 1))
    if node.op == "call_function" and target is F.avg_pool2d:
        k = _arg(node, 1, "kernel_size")
        return _window(src, k, _arg(node, 2, "stride", None) or k, _arg(node, 3, "padding", 0))
    if isinstance(module, (nn.ConvTranspose2d, nn.Upsample)) or name in ("interpolate", "conv_transpose2d", "upsample", "pixel_shuffle"):
        raise ReceptiveFieldError("upsampling and transposed convolutions are not supported (their jumps are fractional)")

    # 2. a 1x1 map broadcast over a larger one: its field is the same for every unit
    geos = []
    for n in inputs:
        g, shape = geo[n], _shape(n)
        if not g.constant and shape is not None and out is not None and _spatial(g, shape) == (1, 1) and len(out) >= 2:
            g = _to_constant(g, (1, 1))
        geos.append(g)
    src = geos[0]
    if all(g.constant for g in geos):
        return _union(geos)
    if node.op == "call_function" and target is operator.getitem and src_shape is None:
        return src if out is not None else None  # an item of a tuple (split, chunk): same geometry
    if out is None:
        if isinstance(node.meta.get("tensor_meta"), (tuple, list)):
            return _union(geos)  # a tuple of tensors (split, chunk along channels)
        return None  # e.g. x.shape, x.size(0): no spatial dependence
    nd_in = len(src_shape)

    # 3. operations on one axis or on a few axes
    if isinstance(module, nn.Linear) or name == "linear":
        return _on_last_dims(geos, src_shape, 1, out)
    if isinstance(module, nn.LayerNorm) or name == "layer_norm":
        k = len(module.normalized_shape) if module is not None else len(_arg(node, 1, "normalized_shape"))
        return _on_last_dims(geos, src_shape, k, out)
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)) or name in ("softmax", "log_softmax"):
        dim = module.dim if module is not None else _arg(node, 1, "dim")
        if not src.constant and dim is not None and dim % nd_in in _positive(src.dims, nd_in):
            return _to_constant(_union(geos), _spatial(src, src_shape))
        return _union(geos)
    if isinstance(module, nn.Flatten) or name in _RESHAPES:
        if name in ("expand", "expand_as") and not src.constant:
            return _union(geos)
        return _reshape(src, src_shape, out)
    if name in ("permute", "transpose", "movedim", "swapaxes"):
        return _permute(node, src, nd_in, len(out), name)
    if name == "stack":
        dim = _arg(node, 1, "dim", 0) % len(out)
        merged = _union(geos)
        pos = [p + 1 if p >= dim else p for p in _positive(merged.dims, nd_in)]
        return _Geo(merged.a, merged.b, merged.j, _negative(pos, len(out)))
    if name == "cat" or name == "concat":
        dim = _arg(node, 1, "dim", 0) % len(out)
        merged = _union(geos)
        if dim in _positive(merged.dims, nd_in):
            raise ReceptiveFieldError("concatenation along a spatial axis is not supported")
        return merged
    if name in _REDUCTIONS:
        removed = _reduce_dims(node, nd_in)
        if removed is None or set(removed) & set(_positive(src.dims, nd_in)):
            return _to_constant(_union(geos), _spatial(src, src_shape))
        if len(out) == nd_in:  # keepdim
            return _union(geos)
        pos = [p - sum(1 for r in removed if r < p) for p in _positive(src.dims, nd_in)]
        merged = _union(geos)
        return _Geo(merged.a, merged.b, merged.j, _negative(pos, len(out)))
    if name == "pad":
        return _pad(src, _arg(node, 1, "pad"))
    if node.op == "call_function" and target is operator.getitem:
        return _getitem(src, src_shape, node.args[1], out)
    if name in ("matmul", "bmm", "mm", "einsum") or target is operator.matmul:
        if any(not g.constant and set(_positive(g.dims, len(_shape(n)))) & {len(_shape(n)) - 1, len(_shape(n)) - 2} for g, n in zip(geos, inputs)):
            return _to_constant(_union(geos), _spatial(src, src_shape))
        return _union(geos)

    # 4. everything else must be pointwise: same spatial size in and out
    for g, n in zip(geos, inputs):
        if g.constant:
            continue
        shape = _shape(n)
        if len(out) < 2 or abs(g.dims[0]) > len(out) or _spatial(g, shape) != (out[g.dims[0]], out[g.dims[1]]):
            raise ReceptiveFieldError(
                f"{_op_label(node, module)} changes the spatial size {_spatial(g, shape)} -> {out}; only convolutions, pools, "
                "pointwise ops and merges are understood (use empirical_receptive_field for this model)"
            )
    return _union(geos)


def _adaptive(src: _Geo, src_shape, out) -> _Geo:
    n_in = _spatial(src, src_shape) if not src.constant else (1, 1)
    n_out = (out[src.dims[0]], out[src.dims[1]]) if not src.constant else (1, 1)
    if src.constant or n_out == (1, 1):
        return _to_constant(src, n_in)
    if n_in == n_out:
        return src
    if n_in[0] % n_out[0] or n_in[1] % n_out[1]:
        raise ReceptiveFieldError(f"adaptive pooling from {n_in} to {n_out} has windows of different sizes; not supported")
    k = (n_in[0] // n_out[0], n_in[1] // n_out[1])
    return _window(src, k, k, 0)


def _on_last_dims(geos, src_shape, k: int, out) -> _Geo:
    """An op that mixes the last k axes (Linear: 1, LayerNorm: len(normalized_shape))."""
    src = geos[0]
    nd = len(src_shape)
    if not src.constant and set(_positive(src.dims, nd)) & set(range(nd - k, nd)):
        return _to_constant(_union(geos), _spatial(src, src_shape))
    return _union(geos)


def _reshape(src: _Geo, src_shape, out) -> _Geo:
    """Keep the spatial axes if everything from the first spatial axis on is untouched, else go global."""
    nd = len(src_shape)
    h = min(_positive(src.dims, nd))
    tail = tuple(src_shape[h:])
    if len(out) >= len(tail) and tuple(out[len(out) - len(tail):]) == tail:
        return src  # negative indices are unchanged
    return _to_constant(src, _spatial(src, src_shape))


def _permute(node: fx.Node, src: _Geo, nd_in: int, nd_out: int, name: str) -> _Geo:
    pos = list(_positive(src.dims, nd_in))
    if name == "permute":
        order = node.args[1:] if len(node.args) > 2 else node.args[1] if len(node.args) > 1 else node.kwargs["dims"]
        order = [int(d) % nd_in for d in order]
        new = [order.index(p) for p in pos]
    else:  # transpose / swapaxes / movedim of two axes
        d0, d1 = int(node.args[1]) % nd_in, int(node.args[2]) % nd_in
        if name == "movedim":
            perm = [d for d in range(nd_in) if d != d0]
            perm.insert(d1, d0)
            new = [perm.index(p) for p in pos]
        else:
            swap = {d0: d1, d1: d0}
            new = [swap.get(p, p) for p in pos]
    return _Geo(src.a, src.b, src.j, _negative(new, nd_out))


def _pad(src: _Geo, pad: Sequence[int]) -> _Geo:
    """``F.pad``: output index u is input index u - before on each padded spatial axis."""
    a, b = list(src.a), list(src.b)
    for ax, d in enumerate(src.dims):
        k = -d - 1  # pairs run from the last axis backwards
        if 2 * k + 1 < len(pad):
            before = int(pad[2 * k])
            a[ax] -= before * src.j[ax]
            b[ax] -= before * src.j[ax]
    return _Geo(tuple(a), tuple(b), src.j, src.dims)


def _getitem(src: _Geo, src_shape, index, out) -> _Geo:
    """Indexing: slices with a step on a spatial axis subsample (like a 1x1 window with that stride)."""
    index = index if isinstance(index, tuple) else (index,)
    nd = len(src_shape)
    if any(i is Ellipsis for i in index):
        e = index.index(Ellipsis)
        consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:e] + (slice(None),) * (nd - consumed) + index[e + 1:]
    pos = _positive(src.dims, nd)
    dim, out_dims = 0, {}
    a, b, j = list(src.a), list(src.b), list(src.j)
    new_dim = 0
    for item in index:
        if item is None:
            new_dim += 1
            continue
        if isinstance(item, int):
            if dim in pos:
                raise ReceptiveFieldError("indexing one row or column of a feature map is not supported")
            dim += 1
            continue
        if not isinstance(item, slice):
            raise ReceptiveFieldError(f"indexing with {type(item).__name__} is not supported")
        if dim in pos:
            ax = pos.index(dim)
            start, _, step = item.indices(src_shape[dim])
            a[ax] += start * j[ax]
            b[ax] += start * j[ax]
            j[ax] *= step
            out_dims[ax] = new_dim
        dim += 1
        new_dim += 1
    for ax, p in enumerate(pos):  # axes after the index are untouched
        if ax not in out_dims:
            out_dims[ax] = new_dim + (p - dim)
    return _Geo(tuple(a), tuple(b), tuple(j), _negative([out_dims[0], out_dims[1]], len(out)))


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
    x = torch.zeros(1, *size, dtype=first.dtype if first is not None else torch.float32, device=first.device if first is not None else "cpu")
    with torch.no_grad():
        ShapeProp(gm).propagate(x)
    model.train(was_training)
    geo, modules = _walk(gm)

    rows: list[ReceptiveField] = []
    last_in: dict[str, ReceptiveField] = {}  # container module -> the field of its last node
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        g, shape = geo.get(node), _shape(node)
        if g is None or shape is None or node.op in ("placeholder", "output"):
            continue
        stack = [k.split("@")[0] for k in node.meta.get("nn_module_stack", {})]
        if node.op == "call_module":
            name = node.target
        else:  # a function inside some module: "<module>.<op>", numbered when repeated
            label = _op_label(node, None)
            base = f"{stack[-1]}.{label}" if stack else label
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base] - 1}"
        row = _row(name, _op_label(node, modules.get(node.target) if node.op == "call_module" else None), shape, g)
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
    return node.op == "call_function" and node.target in (F.conv2d, torch.conv2d, F.max_pool2d, torch.max_pool2d, F.avg_pool2d)


def _is_merge(node: fx.Node) -> bool:
    return sum(1 for n in node.all_input_nodes if n.op != "get_attr") > 1 and (
        node.target in (operator.add, operator.iadd, operator.mul, torch.add, torch.cat, torch.mul, torch.stack)
        or node.target in ("add", "add_", "mul", "mul_"))


def _row(name: str, op: str, shape, g: _Geo) -> ReceptiveField:
    size = (g.b[0] - g.a[0] + 1, g.b[1] - g.a[1] + 1)
    grid = None if g.constant else (int(shape[g.dims[0]]), int(shape[g.dims[1]]))
    return ReceptiveField(name, op, tuple(shape), size, tuple(g.j), (-g.a[0], -g.a[1]), g.constant, grid)


@dataclass
class EmpiricalReceptiveField:
    """What one unit's input gradient shows.

    Attributes:
        layer: the module whose output the unit belongs to.
        unit: (y, x) of the unit in that output.
        gradient: (H, W) float, |d unit / d input| summed over input channels.
        support: (H, W) bool, where the gradient is non-zero.
        box: (x1, y1, x2, y2) bounding box of the support, exclusive ends (the kit's ``xyxy`` pixels).
    """

    layer: str
    unit: tuple[int, int]
    gradient: torch.Tensor
    support: torch.Tensor
    box: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(rows, cols) of the support's bounding box."""
        x1, y1, x2, y2 = self.box
        return (y2 - y1, x2 - x1)


def linear_positive_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with the same geometry in which every input pixel of a unit's field matters.

    Max-pools become average pools with the same window (a max passes gradient to one input only),
    conv and linear weights become positive (uniform in [0.5, 1.5] / fan-in, so channels differ and
    nothing cancels), biases zero, BatchNorm the identity; in eval mode. With a positive input every
    ReLU is then the identity and the input gradient of a unit is non-zero exactly on its field.

    Raises:
        ReceptiveFieldError: a max-pool with dilation (no average-pool twin).
    """
    twin = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(0)
    for name, module in list(twin.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                if _pair(child.dilation) != (1, 1):
                    raise ReceptiveFieldError(f"{name}.{child_name}: a dilated max-pool has no average-pool twin")
                setattr(module, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode, count_include_pad=False))
            elif isinstance(child, nn.AdaptiveMaxPool2d):
                setattr(module, child_name, nn.AdaptiveAvgPool2d(child.output_size))
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                w = module.weight
                fan_in = w[0].numel()
                w.copy_((torch.rand(w.shape, generator=g, dtype=w.dtype) + 0.5) / fan_in)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                if module.running_mean is not None:
                    module.running_mean.zero_()
                    module.running_var.fill_(1.0)
                if module.weight is not None:
                    module.weight.fill_(1.0)
                    module.bias.zero_()
    return twin


class _Reached(Exception):
    """Raised by a hook to stop a forward pass once the wanted layer has run."""


def _forward_until(net: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """Run ``net(x)`` in eval mode with gradients on, stopping right after ``layer``; returns its output."""
    store: dict[str, torch.Tensor] = {}

    def hook(module, inputs, output):
        store["out"] = output
        raise _Reached

    handle = get_module(net, layer).register_forward_hook(hook)
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            net(x)
    except _Reached:
        pass
    finally:
        handle.remove()
        net.train(was_training)
    if "out" not in store:
        raise ValueError(f"layer {layer!r} did not run in the forward pass")
    return store["out"]


def empirical_receptive_field(
    model: nn.Module,
    layer: str,
    unit: tuple[int, int] | None = None,
    *,
    input_size: Sequence[int] | None = None,
    image: torch.Tensor | None = None,
    mode: Literal["support", "gradient"] = "support",
    channel: int | None = None,
) -> EmpiricalReceptiveField:
    """Measure a unit's receptive field by back-propagating from it to the input.

    Args:
        model: any ``nn.Module`` taking an image (B, C, H, W).
        layer: name of the module whose output holds the unit (as in ``model.named_modules()``).
        unit: (y, x) in that output (``None``: the centre unit).
        input_size: (C, H, W) of a random positive input (for ``mode="support"`` without ``image``).
        image: (C, H, W) or (1, C, H, W) float image to differentiate at (``mode="gradient"``: required).
        mode: ``"support"`` (a linear positive twin of the model, see :func:`linear_positive_copy`:
            the support is the analytic field clipped to the image) or ``"gradient"`` (the model as it
            is, in eval mode: the effective receptive field).
        channel: differentiate this channel of the unit (``None``: the sum over channels).

    Returns:
        EmpiricalReceptiveField with the gradient map, its support and the support's box.

    Raises:
        KeyError: no module called ``layer``.
        ValueError: neither ``input_size`` nor ``image``; ``mode="gradient"`` without ``image``; a unit
            outside the layer's output; an unknown mode.
    """
    if mode not in ("support", "gradient"):
        raise ValueError(f"mode must be 'support' or 'gradient', got {mode!r}")
    if image is None and (mode == "gradient" or input_size is None):
        raise ValueError("give image=(C, H, W) (required for mode='gradient'), or input_size=(C, H, W) for mode='support'")
    net = linear_positive_copy(model) if mode == "support" else model
    get_module(net, layer)  # KeyError with the valid names
    param = next(net.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    if image is not None:
        x = image if image.dim() == 4 else image[None]
        x = x.detach().to(device, dtype)
        if mode == "support":
            x = x.clamp_min(0) + 0.5  # positive, so every ReLU passes
    else:
        x = torch.rand(1, *input_size, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device) + 0.5
    x = x.clone().requires_grad_(True)

    out = _forward_until(net, x, layer)
    if out.dim() != 4:
        raise ValueError(f"layer {layer!r} outputs shape {tuple(out.shape)}; pick a layer with a (B, C, H, W) output")
    h, w = out.shape[-2:]
    y, xx = unit if unit is not None else (h // 2, w // 2)
    if not (0 <= y < h and 0 <= xx < w):
        raise ValueError(f"unit {(y, xx)} is outside the {h}x{w} output of {layer!r}")
    target = out[0, :, y, xx].sum() if channel is None else out[0, channel, y, xx]
    (grad,) = torch.autograd.grad(target, x)
    gradient = grad[0].abs().sum(0).float()  # (H, W)
    support = gradient > 0
    rows = support.any(1).nonzero()
    cols = support.any(0).nonzero()
    box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1) if rows.numel() else (0, 0, 0, 0)
    return EmpiricalReceptiveField(layer, (int(y), int(xx)), gradient.cpu(), support.cpu(), box)


__all__ = [
    "EmpiricalReceptiveField",
    "ReceptiveField",
    "ReceptiveFieldError",
    "ReceptiveFieldTable",
    "empirical_receptive_field",
    "linear_positive_copy",
    "receptive_fields",
]
