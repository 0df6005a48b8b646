"""The static scan of a submission: forbidden calls and tampering, named for a person to review.

Scores never depend on it: a forbidden call fails its test when it actually runs during the test
(:mod:`cvkit.course.assignments.runner`), and tampering with the student's own process cannot change
what the grader computes. The scan exists so that an instructor sees the attempt: every flag makes
the row's status ``review``.

It reads each code cell the student wrote (cells identical to a released cell are the release's) with
Python's ``ast``, follows import aliases (``import torch.nn.functional as F``; ``from torchvision.ops
import nms as n``), and flags:

* uses of anything a rule of the assignment forbids (``F.conv2d``, ``cvkit.conv.ops.conv2d_loops``, ...)
  inside a function, class or lambda (where graded code lives; comparing one's own function with
  ``F.conv2d`` in a scratch cell is fine);
* code that loads or runs code the scan cannot see (``importlib``, ``__import__``, ``exec``, ``eval``,
  ``compile``, ``getattr`` on a module with a computed name), reaches into the interpreter (``sys.modules``,
  ``sys._getframe``, ``gc``, ``inspect``, ``ctypes``, frame and ``__globals__`` attributes), switches off or
  replaces tracing (``sys.setprofile``, ``settrace``, PyTorch's profiler and dispatcher internals), starts
  processes or signals (``subprocess``, ``os.system``, ``os.kill``, ``multiprocessing``, ``signal``), or
  rewrites library or grading code (assigning to ``torch.*``, ``F.*``, ``cvkit.*``, IPython's hooks).
"""

from __future__ import annotations

import ast
import re

from cvkit.course.assignments.model import cell_source, nbgrader_meta
from cvkit.course.assignments.rules import ResolvedRule

# dotted prefixes whose mere use is flagged, with why
SUSPICIOUS: dict[str, str] = {
    "importlib": "loads modules by computed names",
    "builtins": "reaches into Python's builtins",
    "sys.modules": "reaches into loaded modules",
    "sys._getframe": "reads other code's frames",
    "sys.setprofile": "switches the call tracing",
    "sys.settrace": "switches the call tracing",
    "sys.displayhook": "replaces how results are shown",
    "sys.excepthook": "replaces how errors are shown",
    "threading.setprofile": "switches the call tracing",
    "threading.settrace": "switches the call tracing",
    "gc": "reaches into live objects",
    "inspect": "reads other code's frames and sources",
    "ctypes": "reaches into the interpreter's memory",
    "subprocess": "starts processes",
    "multiprocessing": "starts processes",
    "os.system": "starts processes",
    "os.popen": "starts processes",
    "os.fork": "starts processes",
    "os.kill": "signals processes",
    "os.killpg": "signals processes",
    "os.execv": "replaces the process",
    "os.execl": "replaces the process",
    "os.spawnv": "starts processes",
    "os.posix_spawn": "starts processes",
    "signal": "handles or sends signals",
    "socket": "uses the network",
    "torch._C": "reaches into PyTorch's internals",
    "torch.ops": "calls dispatcher ops by name",
    "torch.autograd.profiler": "switches PyTorch's profiler",
    "torch.profiler": "switches PyTorch's profiler",
    "torch.utils._python_dispatch": "intercepts PyTorch ops",
    "torch.overrides": "intercepts PyTorch functions",
    "cvkit.course": "reaches into the grader",
    "IPython.core": "reaches into the notebook machinery",
    "IPython.get_ipython": "reaches into the notebook machinery",
}
_SUSPICIOUS_NAMES = {
    "__import__": "loads modules by computed names",
    "exec": "runs code the scan cannot see",
    "eval": "runs code the scan cannot see",
    "compile": "builds code the scan cannot see",
    "get_ipython": "reaches into the notebook machinery",
    "globals": "rewrites the notebook's names",
    "__builtins__": "reaches into Python's builtins",
}
_SUSPICIOUS_ATTRS = {
    "__globals__",
    "__subclasses__",
    "__code__",
    "__closure__",
    "f_back",
    "f_globals",
    "f_locals",
    "tb_frame",
    "gi_frame",
    "input_transformers_post",
    "input_transformers_cleanup",
    "ast_transformers",
    "displayhook",
    "display_pub",
    "__torch_function__",
    "__torch_dispatch__",
}
_GUARDED_ROOTS = ("torch", "torchvision", "numpy", "scipy", "cvkit", "math", "builtins", "sys", "os", "IPython")
_MAGIC = re.compile(r"^\s*[%!]")
MAX_FLAGS = 12


class _Scanner(ast.NodeVisitor):
    def __init__(self, forbidden: dict[str, str]) -> None:
        self.aliases: dict[str, str] = {}
        self.forbidden = forbidden
        self.found: dict[str, str] = {}
        self.depth = 0  # inside a def, class or lambda

    # -- names -----------------------------------------------------------------------------
    def dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def check(self, dotted: str) -> None:
        for name, why in self.forbidden.items():
            if dotted == name or dotted.startswith(name + "."):
                if self.depth:
                    self.found.setdefault(f"uses {name}", why)
                return
        for prefix, why in SUSPICIOUS.items():
            if dotted == prefix or dotted.startswith(prefix + "."):
                self.found.setdefault(f"uses {prefix}", why)
                return

    # -- visitors ----------------------------------------------------------------------------
    def _nested(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            full = alias.name
            self.aliases[alias.asname or full.split(".")[0]] = full if alias.asname else full.split(".")[0]
            self.check(full)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                self.aliases[alias.asname or alias.name] = full
                self.check(full)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _SUSPICIOUS_NAMES and isinstance(node.ctx, ast.Load):
            self.found.setdefault(f"uses {node.id}", _SUSPICIOUS_NAMES[node.id])
        dotted = self.aliases.get(node.id)
        if dotted and isinstance(node.ctx, ast.Load):
            self.check(dotted)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _SUSPICIOUS_ATTRS:
            self.found.setdefault(f"uses .{node.attr}", "reaches into code objects, frames or the notebook machinery")
        dotted = self.dotted(node)
        if dotted and isinstance(node.ctx, ast.Load):
            self.check(dotted)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            base = self.dotted(node.value)
            if base and base.split(".")[0] in _GUARDED_ROOTS:
                self.found.setdefault(f"rewrites {base}.{node.attr}", "replaces library or grading code")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if (
                isinstance(target, ast.Name)
                and self.aliases.get(target.id, "").split(".")[0] in _GUARDED_ROOTS
                and target.id in self.aliases
            ):
                self.found.setdefault(
                    f"rebinds {target.id}", f"replaces the module {self.aliases[target.id]} by something else"
                )
                self.aliases.pop(target.id, None)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "delattr")
            and len(node.args) >= 2
        ):
            target = self.dotted(node.args[0])
            if target and not isinstance(node.args[1], ast.Constant):
                self.found.setdefault(
                    f"{node.func.id}({target}, <computed name>)", "reaches a module attribute by a computed name"
                )
            elif target and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                self.check(f"{target}.{node.args[1].value}")
                if node.func.id != "getattr" and target.split(".")[0] in _GUARDED_ROOTS:
                    self.found.setdefault(f"{node.func.id}({target}, ...)", "replaces library or grading code")
        self.generic_visit(node)


def _parse(source: str) -> ast.AST | None:
    text = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None  # it fails when it runs


def scan_source(source: str, forbidden: dict[str, str], aliases: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Flags for one cell's source: ``(what, why)`` pairs (IPython magics and shell lines are skipped).

    Args:
        source: the cell's code.
        forbidden: dotted name -> why it is forbidden.
        aliases: import aliases defined by earlier cells (updated with this cell's).
    """
    tree = _parse(source)
    if tree is None:
        return []
    scanner = _Scanner(forbidden)
    scanner.aliases = aliases if aliases is not None else {}
    scanner.visit(tree)
    return list(scanner.found.items())


def part_rules(notebook: dict, tests: dict[str, tuple[int, ...]]) -> list[set[int]]:
    """For each cell, the rules of the tests of the part it belongs to.

    A part is a run of cells ending with its test cells: a cell belongs to the tests that follow it up to
    the next solution cell after those tests (a solution cell and the student's helpers before its tests).
    """
    cells = notebook.get("cells", [])
    out: list[set[int]] = [set() for _ in cells]
    pending: set[int] = set()
    seen_tests = False
    for i in range(len(cells) - 1, -1, -1):  # walk backwards: the tests come after the code they test
        meta = nbgrader_meta(cells[i])
        gid = meta.get("grade_id")
        if gid in tests:
            if not seen_tests:
                pending, seen_tests = set(), True
            pending |= set(tests[gid])
            continue
        if meta.get("solution") and seen_tests:
            out[i] = set(pending)
            seen_tests = False  # the next tests up start a new part
            continue
        out[i] = set(pending)
    return out


def scan_notebook(
    notebook: dict, release: dict, rules: tuple[ResolvedRule, ...], tests: dict[str, tuple[int, ...]] | None = None
) -> list[str]:
    """Review flags for every code cell the student wrote (see the module docstring).

    Cells are read in order so that imports in earlier cells (the released imports cell too) give
    the aliases later cells use; cells identical to a released cell are not reported. A forbidden name
    is flagged in a cell when a rule of its part's tests forbids it (:func:`part_rules`; every rule when
    ``tests`` is not given).

    Args:
        notebook: the repaired submission.
        release: the released notebook.
        rules: the assignment's resolved rules (their dotted names are flagged).
        tests: test ``grade_id`` -> the indices of the rules that bind it.

    Returns:
        Sentences such as ``"flagged for review: cell 'conv2d_loops' uses torch.nn.functional.conv2d (forbidden: ...)"``,
        at most :data:`MAX_FLAGS`.
    """
    released = {cell_source(c).strip() for c in release.get("cells", [])}
    scoped = (
        part_rules(notebook, tests) if tests is not None else [set(range(len(rules)))] * len(notebook.get("cells", []))
    )
    aliases: dict[str, str] = {}
    flags = []
    for index, cell in enumerate(notebook.get("cells", [])):
        meta = nbgrader_meta(cell)
        source = cell_source(cell)
        if cell.get("cell_type") != "code":
            continue
        forbidden = {
            name: f"forbidden: {r.text}" if r.text else "forbidden by the assignment's rules"
            for r in rules
            if r.index in scoped[index]
            for name in r.names
        }
        found = scan_source(source, forbidden, aliases)
        if meta.get("locked") or source.strip() in released:
            continue
        where = f"cell {meta['grade_id']!r}" if meta.get("grade_id") else f"cell {index}"
        for what, why in found:
            flags.append(f"flagged for review: {where} {what} ({why})")
            if len(flags) >= MAX_FLAGS:
                return flags
    return flags
