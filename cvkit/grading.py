"""Checks for assignment tests that a wrong answer cannot fool and a student can act on.

``assert add(1, 2) == 3`` passes for an object whose ``__eq__`` always returns True.
Every check here looks at the type first, then the shape and dtype, then the values,
and fails with a message that says what was expected, what came, and what to check::

    check_tensor(conv2d(x, w, padding=1), F.conv2d(x, w, padding=1), name="conv2d output",
                 hint="check padding")
    # GradingError: conv2d output: expected shape (2, 8, 5, 5), got (2, 8, 6, 6): check padding

Failures raise :class:`GradingError`, a subclass of ``AssertionError``, so nbgrader
(and pytest) count them as failed tests.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch


class GradingError(AssertionError):
    """A graded check failed; the message is written for the student."""


def _fail(name: str, message: str, hint: str | None) -> GradingError:
    return GradingError(f"{name}: {message}" + (f": {hint}" if hint else ""))


def check_type(actual: Any, expected_type: type | tuple[type, ...], name: str = "answer", hint: str | None = None) -> None:
    """Fail unless ``actual`` is an instance of ``expected_type`` (bool is not accepted as a number)."""
    types = expected_type if isinstance(expected_type, tuple) else (expected_type,)
    is_bool = isinstance(actual, bool) and bool not in types
    if is_bool or not isinstance(actual, types):
        want = " or ".join(t.__name__ for t in types)
        raise _fail(name, f"expected a {want}, got {type(actual).__name__}", hint)


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
        raise _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}", hint)
    # a Tensor subclass could override comparisons: compare plain tensors only
    actual = actual.detach().as_subclass(torch.Tensor)
    expected = expected.detach().as_subclass(torch.Tensor)
    if tuple(actual.shape) != tuple(expected.shape):
        raise _fail(name, f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}", hint)
    if check_dtype and actual.dtype != expected.dtype:
        raise _fail(name, f"expected dtype {expected.dtype}, got {actual.dtype}", hint or f"convert with .to({expected.dtype})")
    a = actual.cpu()
    e = expected.cpu().to(a.dtype) if not check_dtype else expected.cpu()
    if a.is_floating_point() or a.is_complex():
        bad = ~torch.isfinite(a) & torch.isfinite(e)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise _fail(name, f"has {int(bad.sum())} NaN/inf value(s) where the reference is finite, first at index {where}", hint)
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
        raise _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}", hint)
    if tuple(actual.shape) != tuple(expected):
        raise _fail(name, f"expected shape {tuple(expected)}, got {tuple(actual.shape)}", hint)


def check_int(actual: Any, expected: int, name: str = "answer", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a Python/NumPy integer (not bool, not float) equal to ``expected``."""
    if isinstance(actual, bool) or not isinstance(actual, numbers.Integral):
        raise _fail(name, f"expected an int, got {type(actual).__name__} ({actual!r})", hint)
    if int(actual) != int(expected):
        raise _fail(name, f"expected {expected}, got {int(actual)}", hint)


def check_float(actual: Any, expected: float, name: str = "answer", *, atol: float = 1e-6, rtol: float = 1e-5, hint: str | None = None) -> None:
    """Fail unless ``actual`` is a real number (int/float/0-d tensor, not bool) close to ``expected``."""
    if isinstance(actual, torch.Tensor):
        if actual.numel() != 1:
            raise _fail(name, f"expected a single number, got a tensor of shape {tuple(actual.shape)}", hint)
        actual = actual.detach().as_subclass(torch.Tensor).item()
    if isinstance(actual, bool) or not isinstance(actual, numbers.Real):
        raise _fail(name, f"expected a number, got {type(actual).__name__} ({actual!r})", hint)
    value = float(actual)
    if math.isnan(value) or not math.isclose(value, float(expected), rel_tol=rtol, abs_tol=atol):
        raise _fail(name, f"expected {expected:.6g}, got {value:.6g}", hint)


def check_tuple_of_ints(actual: Any, expected: Sequence[int], name: str = "answer", hint: str | None = None) -> None:
    """Fail unless ``actual`` is a tuple (or list) of ints equal to ``expected``."""
    if not isinstance(actual, (tuple, list)):
        raise _fail(name, f"expected a tuple of {len(expected)} ints, got {type(actual).__name__}", hint)
    if len(actual) != len(expected):
        raise _fail(name, f"expected {len(expected)} values, got {len(actual)}", hint)
    for i, (a, e) in enumerate(zip(actual, expected)):
        check_int(a, e, f"{name}[{i}]", hint)


def check_module_output(module: Any, inputs: torch.Tensor, expected_shape: Sequence[int], name: str = "module", hint: str | None = None) -> torch.Tensor:
    """Run ``module(inputs)`` and check it returns a finite tensor of ``expected_shape``; returns the output."""
    if not isinstance(module, torch.nn.Module):
        raise _fail(name, f"expected a torch.nn.Module, got {type(module).__name__}", hint)
    out = module(inputs)
    check_shape(out, expected_shape, f"{name} output", hint)
    if out.is_floating_point() and not bool(torch.isfinite(out).all()):
        raise _fail(f"{name} output", "contains NaN or inf", hint)
    return out


def check_raises(func: Any, expected: type[BaseException] | tuple[type[BaseException], ...], name: str = "call", hint: str | None = None) -> BaseException:
    """Call ``func()`` and fail unless it raises ``expected`` (a subclass counts); returns the exception.

    ``GradingError`` from a nested check is never accepted as the expected exception, so a test of
    the form ``check_raises(lambda: check_x(...), AssertionError)`` cannot be satisfied by accident.

    Example::

        check_raises(lambda: conv_output_size(3, 5), ValueError, "conv_output_size(3, 5)",
                     hint="a 5-wide kernel does not fit in a 3-wide input: raise ValueError")
    """
    if not callable(func):
        raise TypeError(f"check_raises needs a callable such as lambda: f(x), got {type(func).__name__}")
    want = expected if isinstance(expected, tuple) else (expected,)
    names = " or ".join(t.__name__ for t in want)
    try:
        func()
    except GradingError:
        raise
    except want as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - any other exception is the student's mistake to report
        raise _fail(name, f"expected {names}, got {type(exc).__name__}: {exc}", hint) from exc
    raise _fail(name, f"expected {names} to be raised, but it returned normally", hint)
