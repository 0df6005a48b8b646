r"""The rules of the analytic receptive-field walk: how each operation changes what a unit sees.

A :class:`Geometry` describes, per spatial axis, the input pixels :math:`[a, b]` seen by unit 0 and the jump
:math:`j` between neighbouring units (Araujo, Norris & Sim, Distill 2019); unit :math:`u` sees
:math:`[a + u j, b + u j]`. :func:`walk` visits a traced graph node by node and asks :func:`geometry_of` for
each node's output geometry. That function is a lookup, not a chain of ``if``\ s: the operation is found in two
tables, by module type (``nn.Conv2d``), by function object (``F.conv2d``) or by name (``"view"``, ``"softmax"``):

1. :data:`WINDOW_RULES`, operations with a sliding window (convolution, pooling), read the geometry of their
   first input as it is;
2. then a 1x1 map broadcast over a larger one is treated as seen by every unit, and nodes whose inputs are all
   global, or that return no tensor, are settled;
3. :data:`SHAPE_RULES`, operations that move, merge or mix axes (linear layers, reshapes, reductions,
   concatenation, indexing, matrix products);
4. anything found in neither table must be pointwise (same spatial size in and out): its field is the union of
   its inputs' fields.

Adding an operation is adding one function and one table entry. Compare with
:func:`cvkit.conv.empirical.empirical_receptive_field` in a test when you do.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import TensorMetadata


class ReceptiveFieldError(ValueError):
    """The analytic receptive field cannot be computed for this model (an unsupported operation, or tracing failed)."""


# -- the geometry of one tensor ---------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
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


INPUT_GEOMETRY = Geometry((0, 0), (0, 0), (1, 1), (-2, -1))  # the image: pixel u sees itself


def pair(v: Any) -> tuple[int, int]:
    """An int or a sequence as (rows, cols)."""
    if isinstance(v, (tuple, list)):
        return (int(v[0]), int(v[-1])) if len(v) else (0, 0)
    return (int(v), int(v))


def window(g: Geometry, k, s, p, d=1) -> Geometry:
    """A sliding window (conv or pool) of kernel k, stride s, padding p, dilation d on both axes."""
    k, s, p, d = pair(k), pair(s), pair(p), pair(d)
    a, b, j = [], [], []
    for ax in range(2):
        ke = d[ax] * (k[ax] - 1) + 1  # effective kernel size
        a.append(g.a[ax] - p[ax] * g.j[ax])
        b.append(g.b[ax] + (ke - 1 - p[ax]) * g.j[ax])
        j.append(g.j[ax] * s[ax])
    return Geometry(tuple(a), tuple(b), tuple(j), g.dims)


def to_constant(g: Geometry, spatial: tuple[int, int]) -> Geometry:
    """Every unit now sees what all units of ``g`` (a map of size ``spatial``) saw together."""
    if g.constant:
        return g
    b = tuple(g.b[ax] + (spatial[ax] - 1) * g.j[ax] for ax in range(2))
    return Geometry(g.a, b, (0, 0), None)


def union(geos: Sequence[Geometry]) -> Geometry:
    """Where paths meet: the union of their fields (all constant, or all with the same jumps)."""
    constant = any(g.constant for g in geos)
    if not constant and len({g.j for g in geos}) > 1:
        raise ReceptiveFieldError(
            f"paths with different effective strides {[g.j for g in geos]} meet; the shapes cannot align"
        )
    a = tuple(min(g.a[ax] for g in geos) for ax in range(2))
    b = tuple(max(g.b[ax] for g in geos) for ax in range(2))
    if constant:
        return Geometry(a, b, (0, 0), None)
    return Geometry(a, b, geos[0].j, geos[0].dims)


# -- reading a node ---------------------------------------------------------------------------------
def node_shape(node: fx.Node) -> tuple[int, ...] | None:
    """The output shape ``ShapeProp`` recorded, or ``None`` (not a tensor)."""
    meta = node.meta.get("tensor_meta")
    return tuple(meta.shape) if isinstance(meta, TensorMetadata) else None


def _spatial(g: Geometry, shape: tuple[int, ...]) -> tuple[int, int]:
    return (shape[g.dims[0]], shape[g.dims[1]])


def _positive(dims: tuple[int, int], ndim: int) -> tuple[int, int]:
    return (dims[0] % ndim, dims[1] % ndim)


def _negative(dims: Sequence[int], ndim: int) -> tuple[int, int]:
    return (dims[0] - ndim, dims[1] - ndim)


def _arg(node: fx.Node, index: int, name: str, default: Any = None) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def op_label(node: fx.Node, module: nn.Module | None) -> str:
    """A short name for an operation: ``"Conv2d 3x3/2"``, ``"add"``, ..."""
    if module is not None:
        name = type(module).__name__
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s = pair(module.kernel_size), pair(module.stride or module.kernel_size)
            d = pair(getattr(module, "dilation", 1))
            return f"{name} {k[0]}x{k[1]}/{s[0]}" + (f" d{d[0]}" if d[0] > 1 else "")
        return name
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


@dataclass
class Op:
    """What a rule sees of one node: the node, its module (``call_module``), and its inputs' geometries."""

    node: fx.Node
    inputs: list[fx.Node]  # the inputs that carry a geometry, first the one the op acts on
    module: nn.Module | None
    name: str  # the function's or method's name ("" for a module)
    out: tuple[int, ...] | None  # output shape
    src: Geometry  # geometry of inputs[0]
    src_shape: tuple[int, ...] | None
    geos: list[Geometry] = field(default_factory=list)  # every input's geometry (after the broadcast step)

    @property
    def ndim(self) -> int:
        return len(self.src_shape)


Rule = Callable[[Op], "Geometry | None"]


@dataclass
class RuleTable:
    """Rules looked up by module type (through the MRO), by function object, then by function or method name."""

    modules: dict[type, Rule]
    functions: dict[Any, Rule]
    names: dict[str, Rule]

    def find(self, op: Op) -> Rule | None:
        if op.module is not None:
            return next((self.modules[t] for t in type(op.module).__mro__ if t in self.modules), None)
        target = op.node.target
        if op.node.op == "call_function":
            try:
                if target in self.functions:
                    return self.functions[target]
            except TypeError:  # an unhashable target
                pass
        return self.names.get(op.name)


# -- 1. sliding windows -------------------------------------------------------------------------------
def _conv_module(op: Op) -> Geometry:
    m = op.module
    padding = m.padding
    if isinstance(padding, str):  # "same" keeps the size, "valid" pads nothing
        padding = tuple(dl * (k - 1) // 2 for k, dl in zip(m.kernel_size, m.dilation)) if padding == "same" else 0
    return window(op.src, m.kernel_size, m.stride, padding, m.dilation)


def _max_pool_module(op: Op) -> Geometry:
    m = op.module
    return window(op.src, m.kernel_size, m.stride or m.kernel_size, m.padding, m.dilation)


def _avg_pool_module(op: Op) -> Geometry:
    m = op.module
    return window(op.src, m.kernel_size, m.stride or m.kernel_size, m.padding)


def _conv_function(op: Op) -> Geometry:
    w = node_shape(_arg(op.node, 1, "weight"))
    node = op.node
    return window(op.src, w[2:], _arg(node, 3, "stride", 1), _arg(node, 4, "padding", 0), _arg(node, 5, "dilation", 1))


def _max_pool_function(op: Op) -> Geometry:
    node = op.node
    k = _arg(node, 1, "kernel_size")
    return window(
        op.src, k, _arg(node, 2, "stride", None) or k, _arg(node, 3, "padding", 0), _arg(node, 4, "dilation", 1)
    )


def _avg_pool_function(op: Op) -> Geometry:
    node = op.node
    k = _arg(node, 1, "kernel_size")
    return window(op.src, k, _arg(node, 2, "stride", None) or k, _arg(node, 3, "padding", 0))


def _adaptive_pool(op: Op) -> Geometry:
    src, out = op.src, op.out
    n_in = _spatial(src, op.src_shape) if not src.constant else (1, 1)
    n_out = (out[src.dims[0]], out[src.dims[1]]) if not src.constant else (1, 1)
    if src.constant or n_out == (1, 1):
        return to_constant(src, n_in)
    if n_in == n_out:
        return src
    if n_in[0] % n_out[0] or n_in[1] % n_out[1]:
        raise ReceptiveFieldError(
            f"adaptive pooling from {n_in} to {n_out} has windows of different sizes; not supported"
        )
    k = (n_in[0] // n_out[0], n_in[1] // n_out[1])
    return window(src, k, k, 0)


def _upsampling(op: Op) -> Geometry:
    raise ReceptiveFieldError("upsampling and transposed convolutions are not supported (their jumps are fractional)")


WINDOW_RULES = RuleTable(
    modules={
        nn.Conv2d: _conv_module,
        nn.MaxPool2d: _max_pool_module,
        nn.AvgPool2d: _avg_pool_module,
        nn.AdaptiveAvgPool2d: _adaptive_pool,
        nn.AdaptiveMaxPool2d: _adaptive_pool,
        nn.ConvTranspose2d: _upsampling,
        nn.Upsample: _upsampling,
    },
    functions={
        F.conv2d: _conv_function,
        torch.conv2d: _conv_function,
        F.max_pool2d: _max_pool_function,
        torch.max_pool2d: _max_pool_function,
        F.avg_pool2d: _avg_pool_function,
    },
    names={
        "adaptive_avg_pool2d": _adaptive_pool,
        "adaptive_max_pool2d": _adaptive_pool,
        "interpolate": _upsampling,
        "conv_transpose2d": _upsampling,
        "upsample": _upsampling,
        "pixel_shuffle": _upsampling,
    },
)


# -- 3. operations that move, merge or mix axes ---------------------------------------------------------
def _on_last_dims(op: Op, k: int) -> Geometry:
    """An op that mixes the last k axes (Linear: 1, LayerNorm: len(normalized_shape))."""
    src, nd = op.geos[0], op.ndim
    if not src.constant and set(_positive(src.dims, nd)) & set(range(nd - k, nd)):
        return to_constant(union(op.geos), _spatial(src, op.src_shape))
    return union(op.geos)


def _linear(op: Op) -> Geometry:
    return _on_last_dims(op, 1)


def _layer_norm(op: Op) -> Geometry:
    k = len(op.module.normalized_shape) if op.module is not None else len(_arg(op.node, 1, "normalized_shape"))
    return _on_last_dims(op, k)


def _softmax(op: Op) -> Geometry:
    src = op.geos[0]
    dim = op.module.dim if op.module is not None else _arg(op.node, 1, "dim")
    if not src.constant and dim is not None and dim % op.ndim in _positive(src.dims, op.ndim):
        return to_constant(union(op.geos), _spatial(src, op.src_shape))
    return union(op.geos)


def _reshape(op: Op) -> Geometry:
    """Keep the spatial axes if everything from the first spatial axis on is untouched, else go global."""
    src, out = op.geos[0], op.out
    h = min(_positive(src.dims, op.ndim))
    tail = tuple(op.src_shape[h:])
    if len(out) >= len(tail) and tuple(out[len(out) - len(tail) :]) == tail:
        return src  # negative indices are unchanged
    return to_constant(src, _spatial(src, op.src_shape))


def _expand(op: Op) -> Geometry:
    return _reshape(op) if op.geos[0].constant else union(op.geos)


def _permute(op: Op) -> Geometry:
    node, src, nd_in = op.node, op.geos[0], op.ndim
    pos = list(_positive(src.dims, nd_in))
    if op.name == "permute":
        order = node.args[1:] if len(node.args) > 2 else node.args[1] if len(node.args) > 1 else node.kwargs["dims"]
        order = [int(d) % nd_in for d in order]
        new = [order.index(p) for p in pos]
    else:  # transpose / swapaxes / movedim of two axes
        d0, d1 = int(node.args[1]) % nd_in, int(node.args[2]) % nd_in
        if op.name == "movedim":
            perm = [d for d in range(nd_in) if d != d0]
            perm.insert(d1, d0)
            new = [perm.index(p) for p in pos]
        else:
            swap = {d0: d1, d1: d0}
            new = [swap.get(p, p) for p in pos]
    return Geometry(src.a, src.b, src.j, _negative(new, len(op.out)))


def _stack(op: Op) -> Geometry:
    dim = _arg(op.node, 1, "dim", 0) % len(op.out)
    merged = union(op.geos)
    pos = [p + 1 if p >= dim else p for p in _positive(merged.dims, op.ndim)]
    return Geometry(merged.a, merged.b, merged.j, _negative(pos, len(op.out)))


def _cat(op: Op) -> Geometry:
    dim = _arg(op.node, 1, "dim", 0) % len(op.out)
    merged = union(op.geos)
    if dim in _positive(merged.dims, op.ndim):
        raise ReceptiveFieldError("concatenation along a spatial axis is not supported")
    return merged


def _reduction(op: Op) -> Geometry:
    src, nd = op.geos[0], op.ndim
    dim = _arg(op.node, 1, "dim", None)
    removed = None if dim is None else [d % nd for d in ([dim] if isinstance(dim, int) else list(dim))]
    if removed is None or set(removed) & set(_positive(src.dims, nd)):
        return to_constant(union(op.geos), _spatial(src, op.src_shape))
    if len(op.out) == nd:  # keepdim
        return union(op.geos)
    pos = [p - sum(1 for r in removed if r < p) for p in _positive(src.dims, nd)]
    merged = union(op.geos)
    return Geometry(merged.a, merged.b, merged.j, _negative(pos, len(op.out)))


def _pad(op: Op) -> Geometry:
    """``F.pad``: output index u is input index u - before on each padded spatial axis."""
    src, pad = op.geos[0], _arg(op.node, 1, "pad")
    a, b = list(src.a), list(src.b)
    for ax, d in enumerate(src.dims):
        k = -d - 1  # pairs run from the last axis backwards
        if 2 * k + 1 < len(pad):
            before = int(pad[2 * k])
            a[ax] -= before * src.j[ax]
            b[ax] -= before * src.j[ax]
    return Geometry(tuple(a), tuple(b), src.j, src.dims)


def _getitem(op: Op) -> Geometry:
    """Indexing: slices with a step on a spatial axis subsample (like a 1x1 window with that stride)."""
    src, src_shape, index = op.geos[0], op.src_shape, op.node.args[1]
    index = index if isinstance(index, tuple) else (index,)
    nd = len(src_shape)
    if any(i is Ellipsis for i in index):
        e = index.index(Ellipsis)
        consumed = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:e] + (slice(None),) * (nd - consumed) + index[e + 1 :]
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
    return Geometry(tuple(a), tuple(b), tuple(j), _negative([out_dims[0], out_dims[1]], len(op.out)))


def _matmul(op: Op) -> Geometry:
    """A product over the last two axes of an input mixes them: global if those are spatial."""
    for g, n in zip(op.geos, op.inputs):
        nd = len(node_shape(n))
        if not g.constant and set(_positive(g.dims, nd)) & {nd - 1, nd - 2}:
            return to_constant(union(op.geos), _spatial(op.geos[0], op.src_shape))
    return union(op.geos)


_REDUCTIONS = ("mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "prod", "norm")
_RESHAPES = ("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze")

SHAPE_RULES = RuleTable(
    modules={
        nn.Linear: _linear,
        nn.LayerNorm: _layer_norm,
        nn.Softmax: _softmax,
        nn.LogSoftmax: _softmax,
        nn.Flatten: _reshape,
    },
    functions={operator.getitem: _getitem, operator.matmul: _matmul},
    names={
        "linear": _linear,
        "layer_norm": _layer_norm,
        "softmax": _softmax,
        "log_softmax": _softmax,
        **{name: _reshape for name in _RESHAPES},
        "expand": _expand,
        "expand_as": _expand,
        **{name: _permute for name in ("permute", "transpose", "movedim", "swapaxes")},
        "stack": _stack,
        "cat": _cat,
        "concat": _cat,
        **{name: _reduction for name in _REDUCTIONS},
        "pad": _pad,
        **{name: _matmul for name in ("matmul", "bmm", "mm", "einsum")},
    },
)


# -- the walk ---------------------------------------------------------------------------------------
def _pointwise(op: Op) -> Geometry:
    """4. Anything else must keep the spatial size: the union of its inputs' fields."""
    out = op.out
    for g, n in zip(op.geos, op.inputs):
        if g.constant:
            continue
        shape = node_shape(n)
        if len(out) < 2 or abs(g.dims[0]) > len(out) or _spatial(g, shape) != (out[g.dims[0]], out[g.dims[1]]):
            raise ReceptiveFieldError(
                f"{op_label(op.node, op.module)} changes the spatial size {_spatial(g, shape)} -> {out}; only convolutions, "
                "pools, pointwise ops and merges are understood (use empirical_receptive_field for this model)"
            )
    return union(op.geos)


def geometry_of(node: fx.Node, inputs: list[fx.Node], geo: dict, modules: dict[str, nn.Module]) -> Geometry | None:
    """The geometry of one node's output from its inputs' (the four steps of the module docstring)."""
    module = modules.get(node.target) if node.op == "call_module" else None
    name = (
        ""
        if module is not None
        else node.target
        if isinstance(node.target, str)
        else getattr(node.target, "__name__", "")
    )
    op = Op(node, inputs, module, name, node_shape(node), geo[inputs[0]], node_shape(inputs[0]))

    rule = WINDOW_RULES.find(op)  # 1.
    if rule is not None:
        return rule(op)

    for n in inputs:  # 2. a 1x1 map broadcast over a larger one: its field is the same for every unit
        g, shape = geo[n], node_shape(n)
        if (
            not g.constant
            and shape is not None
            and op.out is not None
            and _spatial(g, shape) == (1, 1)
            and len(op.out) >= 2
        ):
            g = to_constant(g, (1, 1))
        op.geos.append(g)
    if all(g.constant for g in op.geos):
        return union(op.geos)
    if node.op == "call_function" and node.target is operator.getitem and op.src_shape is None:
        return op.geos[0] if op.out is not None else None  # an item of a tuple (split, chunk): same geometry
    if op.out is None:
        if isinstance(node.meta.get("tensor_meta"), (tuple, list)):
            return union(op.geos)  # a tuple of tensors (split, chunk along channels)
        return None  # e.g. x.shape, x.size(0): no spatial dependence

    rule = SHAPE_RULES.find(op)  # 3.
    return (rule or _pointwise)(op)  # 4.


def walk(gm: fx.GraphModule) -> tuple[dict[fx.Node, Geometry | None], dict[str, nn.Module]]:
    """The geometry of every node of a shape-propagated graph (``None`` where no input pixel is involved)."""
    modules = dict(gm.named_modules())
    geo: dict[fx.Node, Geometry | None] = {}
    first_input = True
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            geo[node] = INPUT_GEOMETRY if first_input else None
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
            geo[node] = geometry_of(node, inputs, geo, modules)
        except ReceptiveFieldError as exc:
            raise ReceptiveFieldError(f"at {node.format_node()}: {exc}") from None
    return geo, modules
