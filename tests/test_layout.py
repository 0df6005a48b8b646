"""The package keeps its shape: one name per thing, no import cycles, imports follow the tiers, and the package map in
CONTRIBUTING.md is the tree (read from the source with ``ast``: nothing is imported)."""

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "ci"))
import layout  # noqa: E402

# CONTRIBUTING.md, "Who may import whom": rooms in tiers, earlier tiers first; the task rooms share one tier
TIERS = [
    {"cvkit.runtime", "cvkit.storage", "cvkit.grading"},
    {"cvkit.data"},
    {"cvkit.layers"},
    {"cvkit.inspect"},
    {"cvkit.conv"},
    {"cvkit.train"},
    {
        "cvkit.detection",
        "cvkit.segmentation",
        "cvkit.diffusion",
        "cvkit.generative",
        "cvkit.ssl",
        "cvkit.vl",
        "cvkit.sam",
        "cvkit.geometry",
        "cvkit.tracking",
    },
    {"cvkit.models"},
    {"cvkit.lessons"},
    {"cvkit.viz"},
    {"cvkit.widgets"},
    {"cvkit.course"},
    {"cvkit.site"},
    {"cvkit.cli", "cvkit.__main__"},
]


@pytest.fixture(scope="module")
def measured():
    return layout.measure()


def test_no_two_public_definitions_share_a_name(measured):
    assert measured["pairs"] == [], "rename one of each pair (see CONTRIBUTING.md, package map):\n" + "\n".join(
        f"{key}: {', '.join(where)}" for key, where in measured["pairs"]
    )


@pytest.mark.parametrize("graph", ["cycles", "deferred_cycles", "room_cycles", "deferred_room_cycles"])
def test_no_import_cycles(measured, graph):
    assert measured[graph] == [], f"import {graph.replace('_', ' ')}: " + "; ".join(
        " <-> ".join(c) for c in measured[graph]
    )


def test_imports_follow_the_tiers():
    tier = {room: i for i, rooms in enumerate(TIERS) for room in rooms}
    mods = layout.modules()
    bad = []
    for name, path in mods.items():
        top, deferred = layout.imports(path, name, set(mods))
        for target in top | deferred:
            a, b = (".".join(m.split(".")[:2]) for m in (name, target))
            if a != b and a in tier and b in tier and tier[b] > tier[a]:
                bad.append(f"{name} imports {target} (a later tier)")
    unknown = {".".join(n.split(".")[:2]) for n in mods} - set(tier) - {"cvkit"}
    assert not unknown, f"rooms missing from the tiers (add them here and in CONTRIBUTING.md): {sorted(unknown)}"
    assert not bad, "\n".join(bad)


def test_models_are_registered_only_in_cvkit_models():
    """One registration pattern: ``@register_model`` on a builder in cvkit/models/; task packages never import models."""
    bad = []
    for path in sorted((ROOT / "cvkit").rglob("*.py")):
        rel = path.relative_to(ROOT / "cvkit")
        source = path.read_text()
        if rel.parts[0] != "models" and "register_model" in source:
            bad.append(f"{rel} mentions register_model")
        if rel.parts[0] in ("ssl", "vl", "sam", "diffusion"):
            for node in ast.walk(ast.parse(source)):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                bad += [f"{rel} imports {n}" for n in names if n.startswith("cvkit.models")]
    assert not bad, "\n".join(bad)


def package_map() -> set[str]:
    """Every .py path (relative to cvkit/, ``__init__.py`` left out) listed in CONTRIBUTING.md's package map."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = re.search(r"## Package map.*?```text\n(.*?)```", text, re.S)
    assert block, "CONTRIBUTING.md needs a '## Package map' section with a ```text tree"
    listed, stack = set(), []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 4
        name = line.split()[0]
        del stack[depth:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        elif name.endswith(".py"):
            listed.add("/".join([*stack[1:], name]))
    return listed


def test_package_map_is_the_tree():
    tree = {str(p.relative_to(ROOT / "cvkit")) for p in (ROOT / "cvkit").rglob("*.py") if p.name != "__init__.py"}
    listed = package_map()
    assert not tree - listed, f"add to the package map in CONTRIBUTING.md: {sorted(tree - listed)}"
    assert not listed - tree, (
        f"the package map in CONTRIBUTING.md lists modules that do not exist: {sorted(listed - tree)}"
    )


def test_the_measures_find_what_they_count(tmp_path):
    """ci/layout.py on a tiny package written here: a same-name pair (ignoring case), a builder that may share its
    class's name, and an import cycle hidden inside a function."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("class Mlp: ...\ndef resnet(): ...\ndef f():\n    from pkg.b import g\n")
    (pkg / "b.py").write_text("from pkg.a import f\nclass MLP: ...\nclass ResNet: ...\ndef g(): ...\n")
    mods = {"pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py"}
    assert layout.same_name_pairs(mods) == [("mlp (class)", ["pkg.a.Mlp", "pkg.b.MLP"])]
    top_a, deferred_a = layout.imports(mods["pkg.a"], "pkg.a", set(mods))
    top_b, _ = layout.imports(mods["pkg.b"], "pkg.b", set(mods))
    assert (top_a, deferred_a, top_b) == (set(), {"pkg.b"}, {"pkg.a"})
    assert layout.cycles({"pkg.a": top_a, "pkg.b": top_b}) == []
    assert layout.cycles({"pkg.a": top_a | deferred_a, "pkg.b": top_b}) == [["pkg.a", "pkg.b"]]
