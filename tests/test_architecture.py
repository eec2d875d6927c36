"""The import graph of the package: one direction, no cycles, a core that stands alone.

Read from the source with ``ast`` (function-level imports included), so a
lazy import cannot hide a wrong dependency.
"""
import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "workbench"
#: Layer of each top-level part; a module may import its own subpackage or a lower layer, never a higher or sibling one.
LAYERS = {"config": 0, "errors": 0, "io": 1, "core": 2, "dataset": 3, "analysis": 4, "decisions": 5, "traffic": 5,
          "plots": 6, "report": 7, "cli": 8, "scale": 4, "serve": 7}
#: What the core may import besides the standard library and itself (heavy packages only through ``errors.require``).
CORE_ALLOWED = {"numpy", "workbench.config", "workbench.errors", "workbench.io"}


def modules():
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = f
    return out


MODULES = modules()


def imports(name):
    """``(imported module, imported names, line)`` for every import in module ``name``."""
    f = MODULES[name]
    pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            for a in node.names:
                sub = f"{module}.{a.name}"
                found.append((sub, [], node.lineno) if sub in MODULES else (module, [a.name], node.lineno))
    return found


def part(module):
    bits = module.split(".")
    return bits[1] if len(bits) > 1 else None


def internal_edges():
    edges = {}
    for name in MODULES:
        for target, _, _ in imports(name):
            if target in MODULES and target != name and target != "workbench":
                edges.setdefault(name, set()).add(target)
    return edges


def test_no_import_cycle_among_workbench_modules():
    edges, state, cycles = internal_edges(), {}, []

    def visit(v, stack):
        state[v] = 1
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                cycles.append(" -> ".join(stack[stack.index(w):] + [w]))
            elif w not in state:
                visit(w, stack)
        stack.pop()
        state[v] = 2

    for v in sorted(MODULES):
        if v not in state:
            visit(v, [])
    assert not cycles, cycles


@pytest.mark.parametrize("name", sorted(n for n in MODULES if part(n) in LAYERS))
def test_dependencies_point_one_way(name):
    mine = part(name)
    for target, _, line in imports(name):
        theirs = part(target) if target.startswith("workbench.") else None
        if theirs is None or theirs == mine or theirs not in LAYERS:
            continue
        assert LAYERS[theirs] < LAYERS[mine], \
            f"{MODULES[name].relative_to(ROOT)}:{line}: {name} ({mine}) imports {target} ({theirs}) on a higher or sibling layer"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_another_modules_private_name(name):
    for target, names, line in imports(name):
        if target.startswith("workbench") and target != name:
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{MODULES[name].relative_to(ROOT)}:{line}: imports private {private} from {target}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if part(n) == "core"))
def test_core_imports_numpy_and_the_standard_library_only(name):
    for target, _, line in imports(name):
        top = target.split(".")[0]
        if top in sys.stdlib_module_names or target.startswith("workbench.core"):
            continue
        assert target in CORE_ALLOWED or top == "numpy", \
            f"{MODULES[name].relative_to(ROOT)}:{line}: the core imports {target}"


def test_the_check_itself_sees_the_layers():
    edges = internal_edges()
    assert "workbench.core.knn" in edges["workbench.core.router"]
    assert any(part(t) == "core" for t in edges["workbench.analysis.evaluate"])
    assert len([n for n in MODULES if part(n) == "core"]) >= 7
