"""Tests for assignments that a wrong answer cannot fool, a student can act on, and a grader can trust.

A test cell has three parts (CONTRIBUTING.md, "Assignments")::

    from cvkit.grading import check_tensor, run_test

    def inputs():                                   # the test data, seeded: built on both sides
        g = torch.Generator().manual_seed(2)
        return {"x": torch.randn(2, 3, 6, 5, generator=g), "w": torch.randn(4, 3, 3, 3, generator=g)}

    def answers(student, x, w):                     # runs the student's code: plain data out
        return {"y": student.conv2d_loops(x, w, padding=1)}

    def checks(got, x, w):                          # the grader's side: expected values, comparisons
        check_tensor(got["y"], F.conv2d(x, w, padding=1), "conv2d_loops(x, w, padding=1)", hint="check padding")

    run_test(inputs, answers, checks)

In the student's notebook :func:`run_test` runs all three at once, so a visible test works as any
cell does. When grading, ``answers`` runs in the sandbox with the student's code and hands back
plain data only (:func:`to_plain`: tensors, arrays, numbers, strings, lists, dicts, ``None``);
``checks`` runs in the grader's own process, where the expected values are computed and compared.
The student's process never holds an expected value, a check or a score.

Every check looks at the type first, then the shape and dtype, then the values, and fails with a
:class:`GradingError` whose message says what was expected, what came, and what to check::

    # GradingError: conv2d output: expected shape (2, 8, 5, 5), got (2, 8, 6, 6): check padding
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch


class GradingError(AssertionError):
    """A graded check failed; the message is written for the student."""


class Opaque:
    """Stands in for an answer that is not plain data (an object, a module, a function...).

    Checks fail on it with its original type name (``expected a torch.Tensor, got AlwaysEqual``);
    nothing of the original object reaches the grader.

    Attributes:
        type_name: the original type's name.
        text: a short description (at most 200 characters of its ``repr``, when it had one).
    """

    def __init__(self, type_name: str, text: str = "") -> None:
        self.type_name = str(type_name)[:100]
        self.text = str(text)[:200]

    def __repr__(self) -> str:
        return f"<{self.type_name}{': ' + self.text if self.text else ''}>"


class Raised:
    """What :func:`outcome` records when the student's call raised: the exception's classes and message.

    Attributes:
        classes: the exception's class and base classes as ``module.Name`` (``"builtins.ValueError"``, ...).
        message: ``str(exception)``, at most 500 characters.
    """

    def __init__(self, classes: Sequence[str], message: str = "") -> None:
        self.classes = tuple(str(c) for c in classes)[:20]
        self.message = str(message)[:500]

    @property
    def name(self) -> str:
        """The exception's class name (``"ValueError"``)."""
        return self.classes[0].rsplit(".", 1)[-1] if self.classes else "Exception"

    def __repr__(self) -> str:
        return f"{self.name} raised" + (f": {self.message}" if self.message else "")


def _qualified(cls: type) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', getattr(cls, '__name__', '?'))}"


def outcome(call: Callable[[], Any]) -> Any:
    """Call ``call()`` and return its result, or a :class:`Raised` record when it raises an ``Exception``.

    Use it in ``answers`` for calls that should raise, then :func:`check_raises` in ``checks``::

        def answers(student):
            return {"too_big": outcome(lambda: student.conv_output_size(3, 5))}

        def checks(got):
            check_raises(got["too_big"], ValueError, "conv_output_size(3, 5)")

    Raises:
        TypeError: ``call`` is not callable.
    """
    if not callable(call):
        raise TypeError(f"outcome needs a callable such as lambda: f(x), got {type(call).__name__}")
    try:
        return call()
    except GradingError:
        raise
    except Exception as exc:  # noqa: BLE001 - recording the student's exception is the point
        return Raised([_qualified(c) for c in type(exc).__mro__ if c is not object], str(exc))


def _type_name(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.type_name
    if isinstance(value, Raised):
        return f"{value.name} raised ({value.message[:120]})" if value.message else f"{value.name} raised"
    return type(value).__name__


def _fail(name: str, message: str, hint: str | None) -> GradingError:
    return GradingError(f"{name}: {message}" + (f": {hint}" if hint else ""))


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def check_type(
    actual: Any, expected_type: type | tuple[type, ...], name: str = "answer", hint: str | None = None
) -> None:
    """Fail unless ``actual`` is an instance of ``expected_type`` (bool is not accepted as a number)."""
    types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
    is_bool = isinstance(actual, bool) and bool not in types
    if is_bool or not isinstance(actual, types):
        want = " or ".join(t.__name__ for t in types)
        raise _fail(name, f"expected a {want}, got {_type_name(actual)}", hint)


def check_tensor(
    actual: Any,
    expected: torch.Tensor,
    name: str = "output",
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    check_dtype: bool = True,
    hint: str | None = None,
) -> None:
    """Compare a student's tensor with the reference: type, then shape, dtype, finiteness, values.

    Args:
        actual: the student's answer.
        expected: the reference tensor (e.g. from ``torch.nn.functional``).
        name: what the value is, as the student would call it (``"conv2d output"``).
        atol, rtol: tolerances as in ``torch.allclose``.
        check_dtype: also require the same dtype.
        hint: what to check when shapes or values differ (``"check padding"``).

    Raises:
        GradingError: the first property that differs, with both values and the ``hint``.
    """
    if not isinstance(actual, torch.Tensor):
        raise _fail(name, f"expected a torch.Tensor, got {_type_name(actual)}", hint)
    # a Tensor subclass could override comparisons: compare plain tensors only
    actual = actual.detach().as_subclass(torch.Tensor)
    expected = expected.detach().as_subclass(torch.Tensor)
    if tuple(actual.shape) != tuple(expected.shape):
        raise _fail(name, f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}", hint)
    if check_dtype and actual.dtype != expected.dtype:
        raise _fail(
            name, f"expected dtype {expected.dtype}, got {actual.dtype}", hint or f"convert with .to({expected.dtype})"
        )
    a = actual.cpu()
    e = expected.cpu().to(a.dtype) if not check_dtype else expected.cpu()
    if a.is_floating_point() or a.is_complex():
        bad = ~torch.isfinite(a) & torch.isfinite(e)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise _fail(
                name,
                f"has {int(bad.sum())} NaN/inf value(s) where the reference is finite, first at index {where}",
                hint,
            )
        if not torch.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
            diff = (a - e).abs()
            diff = torch.where(torch.isnan(diff), torch.zeros_like(diff), diff)
            flat = int(diff.argmax())
            index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape)) if a.dim() else ()
            raise _fail(
                name,
                f"values differ from the reference (max abs error {float(diff.max()):.3g} at index {index}: "
                f"got {a[index].item():.6g}, expected {e[index].item():.6g}; tolerance atol={atol}, rtol={rtol})",
                hint,
            )
    else:
        if not torch.equal(a, e):
            mismatch = (a != e).nonzero()
            index = tuple(int(i) for i in mismatch[0]) if mismatch.numel() else ()
            raise _fail(
                name,
                f"{int((a != e).sum())} of {a.numel()} values differ, first at index {index}: "
                f"got {a[index].item()}, expected {e[index].item()}",
                hint,
            )


def check_shape(actual: Any, expected: Sequence[int], name: str = "output", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a tensor of exactly this shape."""
    if not isinstance(actual, torch.Tensor):
        raise _fail(name, f"expected a torch.Tensor, got {_type_name(actual)}", hint)
    if tuple(actual.shape) != tuple(expected):
        raise _fail(name, f"expected shape {tuple(expected)}, got {tuple(actual.shape)}", hint)


def check_finite(actual: Any, name: str = "output", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a tensor without NaN or inf values."""
    if not isinstance(actual, torch.Tensor):
        raise _fail(name, f"expected a torch.Tensor, got {_type_name(actual)}", hint)
    if (actual.is_floating_point() or actual.is_complex()) and not bool(torch.isfinite(actual).all()):
        raise _fail(name, "contains NaN or inf", hint)


def check_int(actual: Any, expected: int, name: str = "answer", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a Python/NumPy integer (not bool, not float) equal to ``expected``."""
    if isinstance(actual, bool) or not isinstance(actual, numbers.Integral):
        raise _fail(name, f"expected an int, got {_type_name(actual)} ({actual!r})", hint)
    if int(actual) != int(expected):
        raise _fail(name, f"expected {expected}, got {int(actual)}", hint)


def check_float(
    actual: Any,
    expected: float,
    name: str = "answer",
    *,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    hint: str | None = None,
) -> None:
    """Fail unless ``actual`` is a real number (int/float/0-d tensor, not bool) close to ``expected``."""
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            raise _fail(name, f"expected a single number, got a tensor of shape {tuple(actual.shape)}", hint)
        actual = actual.detach().as_subclass(torch.Tensor).item()
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        raise _fail(name, f"expected a number, got {_type_name(actual)} ({actual!r})", hint)
    value = float(actual)
    if math.isnan(value) or not math.isclose(value, float(expected), rel_tol=rtol, abs_tol=atol):
        raise _fail(name, f"expected {expected:.6g}, got {value:.6g}", hint)


def check_tuple_of_ints(actual: Any, expected: Sequence[int], name: str = "answer", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a tuple (or list) of ints equal to ``expected``."""
    if not isinstance(actual, (tuple, list)):
        raise _fail(name, f"expected a tuple of {len(expected)} ints, got {_type_name(actual)}", hint)
    if len(actual) != len(expected):
        raise _fail(name, f"expected {len(expected)} values, got {len(actual)}", hint)
    for i, (a, e) in enumerate(zip(actual, expected)):
        check_int(a, e, f"{name}[{i}]", hint)


def check_module_output(
    module: Any, inputs: torch.Tensor, expected_shape: Sequence[int], name: str = "module", hint: str | None = None
) -> torch.Tensor:
    """Run ``module(inputs)`` and check it returns a finite tensor of ``expected_shape``; returns the output.

    It runs the student's module, so it belongs in a test's ``answers`` (or in a student's own cell);
    in ``checks``, use :func:`check_shape` and :func:`check_finite` on the returned output.
    """
    if not isinstance(module, torch.nn.Module):
        raise _fail(name, f"expected a torch.nn.Module, got {_type_name(module)}", hint)
    out = module(inputs)
    check_shape(out, expected_shape, f"{name} output", hint)
    check_finite(out, f"{name} output", hint)
    return out


def check_raises(
    actual: Any,
    expected: type[BaseException] | tuple[type[BaseException], ...],
    name: str = "call",
    hint: str | None = None,
) -> Any:
    """Fail unless the student's call raised ``expected`` (a subclass counts).

    Args:
        actual: what :func:`outcome` recorded in ``answers`` (a :class:`Raised`, or the value returned),
            or a callable such as ``lambda: f(x)``, called here (in a student's own notebook).
        expected: exception class(es).

    Returns:
        The :class:`Raised` record (or, for a callable, the exception).

    ``GradingError`` from a nested check is never accepted as the expected exception, so a test of
    the form ``check_raises(lambda: check_x(...), AssertionError)`` cannot be satisfied by accident.

    Raises:
        GradingError: nothing was raised, or another exception was.
        TypeError: ``expected`` is not an exception class.
    """
    want = expected if isinstance(expected, tuple) else (expected,)
    if not all(isinstance(t, type) and issubclass(t, BaseException) for t in want):
        raise TypeError(f"check_raises needs exception classes, got {expected!r}")
    names = " or ".join(t.__name__ for t in want)
    if isinstance(actual, Raised):
        if GradingError.__module__ + ".GradingError" in actual.classes:
            raise _fail(name, f"expected {names}, got GradingError: {actual.message}", hint)
        if any(_qualified(t) in actual.classes for t in want):
            return actual
        raise _fail(name, f"expected {names}, got {actual.name}: {actual.message}", hint)
    if callable(actual) and not isinstance(actual, Opaque):
        try:
            actual()
        except GradingError:
            raise
        except want as exc:
            return exc
        except Exception as exc:
            raise _fail(name, f"expected {names}, got {type(exc).__name__}: {exc}", hint) from exc
    raise _fail(name, f"expected {names} to be raised, but it returned normally", hint)


# ---------------------------------------------------------------------------------------------
# plain data: what crosses from the student's process to the grader's
# ---------------------------------------------------------------------------------------------
MAX_TENSOR_BYTES = 256 * 2**20  # all tensors of one test's answers together
MAX_NODES = 100_000  # values in one test's answers
MAX_DEPTH = 32
MAX_STRING = 100_000
_TAG = "__cvkit__"


def to_plain(value: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split an answer into a JSON-able skeleton and a dict of plain CPU tensors.

    Kept: ``None``, bools, ints, floats (NaN and inf too), strings, lists, tuples, dicts with string
    keys, ``torch.Tensor`` (any subclass becomes a plain, detached, contiguous CPU tensor), NumPy arrays
    and scalars of numeric dtypes, :class:`Raised` and :class:`Opaque`. Anything else becomes an
    :class:`Opaque` naming its type, so a check fails on it with a clear message. The answer's objects
    are never pickled and never reach the grader.

    Returns:
        ``(skeleton, tensors)``: write them with :func:`dump_plain`, read them with :func:`load_plain`.

    Raises:
        ValueError: the answer is too big (more than 100,000 values, 256 MiB of tensors, or nested
            deeper than 32 levels); the message says which.
    """
    tensors: dict[str, torch.Tensor] = {}
    budget = {"nodes": 0, "bytes": 0}

    def convert(v: Any, depth: int) -> Any:
        budget["nodes"] += 1
        if budget["nodes"] > MAX_NODES:
            raise ValueError(f"the answer holds more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise ValueError(f"the answer is nested deeper than {MAX_DEPTH} levels")
        if v is None or type(v) in (bool, int):
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {_TAG: "float", "v": repr(v)}
        if type(v) is str:
            return v[:MAX_STRING]
        if isinstance(v, torch.Tensor):
            return {_TAG: "tensor", "key": add_tensor(v)}
        if type(v) in (list, tuple) or isinstance(v, torch.Size):
            items = [convert(x, depth + 1) for x in list(v)]
            return items if type(v) is list else {_TAG: "tuple", "items": items}
        if type(v) is dict:
            if not all(type(k) is str for k in v):
                return _opaque_plain(v)
            return {_TAG: "dict", "items": {k[:200]: convert(x, depth + 1) for k, x in v.items()}}
        if isinstance(v, Raised):
            return {_TAG: "raised", "classes": list(v.classes), "message": v.message}
        if isinstance(v, Opaque):
            return {_TAG: "opaque", "type": v.type_name, "text": v.text}
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(v, numpy.ndarray) and v.dtype.kind in "biufc":
            return {_TAG: "ndarray", "key": add_tensor(torch.from_numpy(numpy.ascontiguousarray(v)))}
        if numpy is not None and isinstance(v, numpy.generic) and numpy.dtype(type(v)).kind in "biuf":
            kind = numpy.dtype(type(v)).kind
            value = bool(v) if kind == "b" else int(v) if kind in "iu" else float(v)
            return {
                _TAG: "npscalar",
                "dtype": str(numpy.dtype(type(v))),
                "v": value if kind != "f" or math.isfinite(value) else repr(value),
            }
        return _opaque_plain(v)

    def add_tensor(t: torch.Tensor) -> str:
        plain = torch.Tensor.detach(t)
        if (
            plain.layout != torch.strided
            or plain.is_quantized
            or plain.device.type == "meta"
            or getattr(plain, "is_nested", False)
        ):
            raise ValueError(
                f"a tensor with layout {plain.layout} on {plain.device} cannot be handed back; return a dense tensor"
            )
        plain = plain.as_subclass(torch.Tensor).to("cpu").contiguous().clone()
        budget["bytes"] += plain.numel() * plain.element_size()
        if budget["bytes"] > MAX_TENSOR_BYTES:
            raise ValueError(f"the answer's tensors hold more than {MAX_TENSOR_BYTES // 2**20} MiB")
        key = f"t{len(tensors)}"
        tensors[key] = plain
        return key

    return convert(value, 0), tensors


def _opaque_plain(v: Any) -> dict:
    try:
        text = object.__repr__(v)
    except Exception:  # noqa: BLE001 - a description is optional
        text = ""
    return {_TAG: "opaque", "type": type(v).__name__, "text": text[:200]}


def from_plain(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild an answer from :func:`to_plain`'s output (the grader's side; nothing is executed).

    Raises:
        ValueError: the skeleton is malformed (an unknown tag, a missing tensor, a non-string key).
    """
    import numpy

    def build(v: Any, depth: int) -> Any:
        if depth > MAX_DEPTH + 2:
            raise ValueError("the answer is nested too deeply")
        if v is None or type(v) in (bool, int, float, str):
            return v
        if type(v) is list:
            return [build(x, depth + 1) for x in v]
        if type(v) is not dict or _TAG not in v:
            raise ValueError(f"malformed answer: unexpected {type(v).__name__}")
        tag = v[_TAG]
        if tag == "tensor" or tag == "ndarray":
            if v.get("key") not in tensors:
                raise ValueError("malformed answer: a tensor is missing")
            t = tensors[v["key"]]
            return t if tag == "tensor" else t.numpy()
        if tag == "tuple":
            return tuple(build(x, depth + 1) for x in _list(v.get("items")))
        if tag == "dict":
            items = v.get("items")
            if type(items) is not dict or not all(type(k) is str for k in items):
                raise ValueError("malformed answer: a dict without string keys")
            return {k: build(x, depth + 1) for k, x in items.items()}
        if tag == "float":
            return float(v.get("v")) if v.get("v") in ("nan", "inf", "-inf") else float("nan")
        if tag == "npscalar":
            value = v.get("v")
            value = float(value) if value in ("nan", "inf", "-inf") else value
            return (
                numpy.dtype(str(v.get("dtype"))).type(value)
                if numpy.dtype(str(v.get("dtype"))).kind in "biuf"
                else Opaque("numpy scalar")
            )
        if tag == "raised":
            return Raised([str(c) for c in _list(v.get("classes"))], str(v.get("message", "")))
        if tag == "opaque":
            return Opaque(str(v.get("type", "object")), str(v.get("text", "")))
        raise ValueError(f"malformed answer: unknown tag {tag!r}")

    return build(skeleton, 0)


def _list(v: Any) -> list:
    if type(v) is not list:
        raise ValueError("malformed answer: expected a list")
    return v


def dump_plain(value: Any) -> tuple[bytes, bytes]:
    """An answer as two byte strings: JSON (the skeleton) and safetensors (the tensors); no pickle."""
    from safetensors.torch import save

    skeleton, tensors = to_plain(value)
    return json.dumps(skeleton).encode(), save(tensors) if tensors else b""


def load_plain(skeleton_json: bytes, tensor_bytes: bytes) -> Any:
    """Read what :func:`dump_plain` wrote (JSON and safetensors only: loading runs no code).

    Raises:
        ValueError: malformed data.
    """
    from safetensors.torch import load

    try:
        skeleton = json.loads(skeleton_json)
        tensors = load(tensor_bytes) if tensor_bytes else {}
    except Exception as exc:
        raise ValueError(f"malformed answer: {type(exc).__name__}: {exc}") from exc
    return from_plain(skeleton, tensors)


# ---------------------------------------------------------------------------------------------
# running a test in the student's notebook
# ---------------------------------------------------------------------------------------------
class StudentCode:
    """What ``answers`` sees of the student's notebook: ``student.conv2d_loops`` is their function.

    Args:
        namespace: the notebook's global variables.

    Raises (on attribute access):
        GradingError: the notebook defines no such name.
    """

    def __init__(self, namespace: dict) -> None:
        object.__setattr__(self, "_namespace", namespace)

    def __getattr__(self, name: str) -> Any:
        namespace = object.__getattribute__(self, "_namespace")
        if name in namespace:
            return namespace[name]
        raise GradingError(f"your notebook defines no {name!r}: run the cell that defines it, and keep its name")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a test reads the student's code; it does not change it")


def run_test(inputs: Callable[[], dict] | None, answers: Callable[..., Any], checks: Callable[..., None]) -> None:
    """Run a test cell in your notebook: build the inputs, run your code on them, check the answers.

    Args:
        inputs: returns the test data as a dict of keyword arguments (built afresh for ``answers``
            and again for ``checks``, as the grader does), or ``None`` for no data.
        answers: ``answers(student, **data)`` calls the student's code through ``student`` and
            returns plain data (see :func:`to_plain`).
        checks: ``checks(got, **data)`` compares what ``answers`` returned with the expected values
            and raises :class:`GradingError` on the first difference.

    When the notebook is graded this call is not run as written: ``answers`` runs in the sandbox
    with the submitted code, ``checks`` in the grader's process.

    Raises:
        GradingError: a check failed (the message says what to fix).
        TypeError: ``inputs`` does not return a dict.
    """
    caller = sys._getframe(1).f_globals
    data = _inputs(inputs)
    got = answers(StudentCode(caller), **data)
    skeleton, tensors = to_plain(got)
    checks(from_plain(json.loads(json.dumps(skeleton)), tensors), **_inputs(inputs))
    print("all checks of this test passed")


def _inputs(inputs: Callable[[], dict] | None) -> dict:
    if inputs is None:
        return {}
    data = inputs()
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise TypeError(f"inputs() must return a dict of keyword arguments, got {type(data).__name__}")
    return data
