"""Measure the package layout: the numbers a newcomer feels when walking ``cvkit/``.

    python ci/layout.py            print the counts and list every same-name pair and import cycle
    python ci/layout.py --check    the same, and exit 1 when a same-name pair or an import cycle exists

The counts (read from the source with ``ast``; nothing is imported or run):

* **modules at the package root**: ``cvkit/*.py`` other than ``__init__``/``__main__``;
* **largest module**: the longest ``.py`` file under ``cvkit/``, in lines;
* **same-name public pairs**: two public definitions of the same kind (two classes, two functions, or two module-level
  constants) whose names are equal ignoring case (``MLP`` and ``Mlp`` count), anywhere in the package. A function
  and a class may share a name (a registered builder ``resnet`` builds a ``ResNet``). Re-exports
  (``from x import name``) are not definitions, so a package ``__init__`` that lists its members does not count;
* **import cycles**: strongly connected components of more than one module in the graph "executing module A
  imports module B". Importing ``cvkit.a.b`` also runs ``cvkit/a/__init__.py``, so that edge is drawn too;
  ``cvkit/__init__.py`` imports its subpackages lazily and is left out. Imports inside functions run when the
  function is called, not at import time: they are counted in a second graph (``deferred``), because a cycle
  there is the same tangle, only hidden. Imports under ``if TYPE_CHECKING:`` never run and are ignored.
* **subpackage cycles**: the same graphs with every module folded into its subpackage (``cvkit.models``,
  ``cvkit.sam``, ...) or kept as a root module; a cycle here is two rooms that need each other.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cvkit"
# Public names that every module may define without meaning the same thing twice.
ALLOWED_NAMES = {"main"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, name: str, known: set[str]) -> tuple[set[str], set[str]]:
    """(module-level imports, imports inside functions) of one module, as cvkit module names."""
    tree = ast.parse(path.read_text(), str(path))
    top: set[str] = set()
    deferred: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}  # this module and its packages

    def with_packages(target: str) -> set[str]:
        """``target`` and the packages whose ``__init__`` importing it runs: not cvkit's (lazy), not this module's own."""
        parts = target.split(".")
        return {target} | {p for p in (".".join(parts[:i]) for i in range(2, len(parts))) if p not in own}

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        found: set[str] = set()
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found |= with_packages(alias.name)
            return found
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        for alias in node.names:
            if f"{base}.{alias.name}" in known:  # a submodule
                found |= with_packages(f"{base}.{alias.name}")
            elif base in known:  # a name defined in base (its own package's __init__ too: a real dependency)
                found |= with_packages(base)
        found.discard(name)
        return found

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                for sub in child.orelse:
                    visit(sub, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (deferred if in_function else top).update(targets(child))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, deferred - top


def definitions(path: Path) -> set[tuple[str, str]]:
    """(kind, name) of the public names a module defines at its top level (not the names it imports)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[tuple[str, str]] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(("function", node.name))
        elif isinstance(node, ast.ClassDef):
            found.add(("class", node.name))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    found.add(("constant", target.id))
    return {(k, n) for k, n in found if not n.startswith("_") and n not in ALLOWED_NAMES and n != "__all__"}


def same_name_pairs(mods: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """[(name, [module.Name, ...])] for every public name defined twice (same kind, ignoring case)."""
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, path in mods.items():
        for kind, defined in definitions(path):
            where[(kind, defined.lower())].append(f"{name}.{defined}")
    return sorted((f"{key[1]} ({key[0]})", sorted(v)) for key, v in where.items() if len(v) > 1)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(found)


def fold(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph with every module replaced by its subpackage (or itself, at the root)."""

    def room(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2])

    folded: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        for b in targets:
            if room(a) != room(b):
                folded[room(a)].add(room(b))
        folded.setdefault(room(a), set())
    return folded


def measure() -> dict:
    mods = modules()
    known = set(mods)
    top: dict[str, set[str]] = {}
    everything: dict[str, set[str]] = {}
    for name, path in mods.items():
        t, d = imports(path, name, known)
        top[name] = t
        everything[name] = t | d
    lines = {name: len(path.read_text().splitlines()) for name, path in mods.items()}
    largest = max(lines, key=lines.get)
    root = sorted(n for n, p in mods.items() if p.parent == PACKAGE and p.stem not in {"__init__", "__main__"})
    return {
        "root_modules": root,
        "largest": (largest, lines[largest]),
        "modules": len(mods),
        "pairs": same_name_pairs(mods),
        "cycles": cycles(top),
        "deferred_cycles": cycles(everything),
        "room_cycles": cycles(fold(top)),
        "deferred_room_cycles": cycles(fold(everything)),
    }


def report(m: dict) -> str:
    out = [
        f"modules: {m['modules']}",
        f"modules at the package root: {len(m['root_modules'])} ({', '.join(m['root_modules'])})",
        f"largest module: {m['largest'][0]} ({m['largest'][1]} lines)",
        f"same-name public pairs: {len(m['pairs'])}",
    ]
    out += [f"  {key}: {', '.join(where)}" for key, where in m["pairs"]]
    for label in ("cycles", "deferred_cycles", "room_cycles", "deferred_room_cycles"):
        out.append(f"import {label.replace('_', ' ')}: {len(m[label])}")
        out += [f"  {' <-> '.join(c)}" for c in m[label]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a same-name pair or an import cycle")
    args = parser.parse_args(argv)
    m = measure()
    print(report(m))
    bad = m["pairs"] or m["cycles"] or m["deferred_cycles"] or m["room_cycles"] or m["deferred_room_cycles"]
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
