"""What a rule's ``calls`` mean at run time: dispatcher ops, Python code objects, C builtins.

An assignment's rules (``metadata.cvkit.forbid``, :class:`cvkit.course.assignments.model.Rule`) name
what graded code may not call. :func:`resolve_calls` turns the names into what the sandbox can
watch while a test's ``answers`` runs (:mod:`cvkit.course.assignments.runner`):

* ``"aten::convolution"``, ``"torchvision::nms"``: dispatcher ops, seen by PyTorch's profiler however
  they were reached (``F.conv2d``, ``nn.Conv2d``, ``torch.ops.aten``, ``getattr`` tricks);
* ``"torchvision.ops.nms"``, ``"torch.nn.Conv2d"``: a Python function or class: the code objects of
  the function (or of the class's methods), seen by a profile hook whenever one of them starts;
* ``"cvkit.conv.ops"``: a module or package: every function and method defined in it;
* a C builtin such as ``"torch.conv2d"``: the builtin itself (and its ``aten::`` op).

Names are resolved in the grader's process before any student code runs; code objects are matched by
``(file, first line, name)``, which is the same in the sandbox (the same files, read-only).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import logging
import pkgutil
import types
import warnings
from dataclasses import dataclass, field

from cvkit.course.assignments.model import AssignmentError, Rule

CodeKey = tuple[str, int, str]  # (co_filename, co_firstlineno, co_name)


@dataclass(frozen=True)
class ResolvedRule:
    """A rule, ready for the sandbox.

    Attributes:
        index: its position in the assignment's rules.
        text: what the student reads.
        ops: dispatcher op names (``"aten::convolution"``).
        codes: code objects as ``(file, first line, name)``, with a display name each.
        builtins: dotted names of C builtins, resolved again in the sandbox before any student code runs.
        names: the dotted names (for the static scan).
    """

    index: int
    text: str
    ops: tuple[str, ...] = ()
    codes: tuple[tuple[CodeKey, str], ...] = ()
    builtins: tuple[str, ...] = ()
    names: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        """A JSON-able form (what the sandbox receives)."""
        return {
            "index": self.index,
            "ops": list(self.ops),
            "codes": [[list(k), d] for k, d in self.codes],
            "builtins": list(self.builtins),
        }


def resolve_rules(rules: tuple[Rule, ...]) -> tuple[ResolvedRule, ...]:
    """Resolve every rule of an assignment (see the module docstring).

    Raises:
        AssignmentError: a name cannot be resolved (a typo, or a module that moved): the message names it.
    """
    return tuple(resolve_rule(i, r) for i, r in enumerate(rules))


def resolve_rule(index: int, rule: Rule) -> ResolvedRule:
    """Resolve one rule (see :func:`resolve_rules`)."""
    ops: list[str] = []
    codes: dict[CodeKey, str] = {}
    builtins: list[str] = []
    names: list[str] = []
    for call in rule.calls:
        if "::" in call:
            ops.append(call)
            continue
        names.append(call)
        obj = _import_object(call)
        if isinstance(obj, types.ModuleType):
            for key, label in _module_codes(obj):
                codes.setdefault(key, label)
        elif isinstance(obj, types.BuiltinFunctionType) or type(obj).__name__ in (
            "builtin_function_or_method",
            "method_descriptor",
        ):
            builtins.append(call)
            if (getattr(obj, "__module__", "") or "").startswith("torch"):
                ops.append(f"aten::{obj.__name__}")
        else:
            found = _object_codes(obj, call)
            if not found:
                raise AssignmentError(
                    f"forbidden call {call!r}: it is neither a module, a Python function or class, nor a builtin"
                )
            for key in found:
                codes.setdefault(key, call)
    return ResolvedRule(
        index, rule.text, tuple(dict.fromkeys(ops)), tuple(codes.items()), tuple(builtins), tuple(names)
    )


def _import_object(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        return obj
    raise AssignmentError(
        f"forbidden call {dotted!r} cannot be resolved (no such module or attribute): fix metadata.cvkit.forbid"
    )


def _code_key(code: types.CodeType) -> CodeKey:
    return (code.co_filename, code.co_firstlineno, code.co_name)


def _function_codes(fn) -> list[CodeKey]:
    """The code of a function; for a dispatcher whose code is shared by many functions, its targets' code.

    Code generated at run time (``dataclass``'s ``__init__``, ``namedtuple``: file names like ``<string>``)
    is left out: it is shared by unrelated classes.
    """
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    code = getattr(fn, "__code__", None)
    if code is None or code.co_filename.startswith("<"):
        return []
    if code.co_name != getattr(fn, "__name__", code.co_name) and fn.__closure__:
        targets = [
            c.cell_contents for c in fn.__closure__ if isinstance(getattr(c, "cell_contents", None), types.FunctionType)
        ]
        if targets:  # e.g. torch's boolean_dispatch: F.max_pool2d and F.max_pool1d share one `fn`
            return [k for t in targets for k in _function_codes(t)]
    return [_code_key(code)]


def _object_codes(obj, label: str) -> list[CodeKey]:
    if inspect.isclass(obj):
        keys = []
        for value in vars(obj).values():
            value = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                keys += _function_codes(value)
        return keys
    if isinstance(obj, types.FunctionType) or hasattr(obj, "__wrapped__"):
        return _function_codes(obj)
    return []


@contextlib.contextmanager
def _quiet():
    """Importing every submodule of a large package (a rule naming ``transformers``) makes it print, log and
    warn about itself (transformers 5 prints a line per undocumented argument: 285 on one run); none of it
    concerns the course, so it is dropped while the package is walked."""
    sink = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _module_codes(module: types.ModuleType) -> list[tuple[CodeKey, str]]:
    """Every function and method defined in ``module`` (and its submodules, for a package).

    Names a module merely imports (``Module`` in ``torch.nn.modules.batchnorm``) are not its code. A module
    that defines nothing and only re-exports (a compatibility shim left behind when code moves) stands
    for what it re-exports from its own package.
    """
    modules = [module]
    if hasattr(module, "__path__"):
        with _quiet():
            for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
                try:
                    modules.append(importlib.import_module(info.name))
                except Exception:  # noqa: BLE001, S112 - a submodule that cannot be imported cannot be called either
                    continue
    prefix = module.__name__
    top = prefix.split(".")[0]

    def defined(mod: types.ModuleType) -> list[tuple[str, object]]:
        return [
            (n, v)
            for n, v in vars(mod).items()
            if (inspect.isclass(v) or isinstance(v, types.FunctionType))
            and (getattr(v, "__module__", "") or "") in (mod.__name__,)
        ]

    out = []
    for mod in modules:
        own = defined(mod)
        if not own:  # a shim: what it re-exports from its own package
            own = [
                (n, v)
                for n, v in vars(mod).items()
                if (inspect.isclass(v) or isinstance(v, types.FunctionType))
                and (getattr(v, "__module__", "") or "").startswith(top + ".")
            ]
        for name, value in own:
            owner = getattr(value, "__module__", "") or prefix
            out += [(k, f"{owner}.{name}") for k in _object_codes(value, name)]
    return out
