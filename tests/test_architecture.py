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


def module_aliases(name):
    """Local name -> workbench module, for every ``import workbench.x as y`` / ``from workbench import x`` in ``name``."""
    f = MODULES[name]
    pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
    aliases = {}
    for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in MODULES and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            for a in node.names:
                if f"{module}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{module}.{a.name}"
    return aliases


def private_uses(name):
    """``(module, private attribute, line)`` for every ``alias._private`` (a call or any other use) of another module."""
    aliases, found = module_aliases(name), []
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.insert(0, value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in aliases:
                target = ".".join([aliases[value.id]] + chain)
                if target in MODULES and target != name:
                    found.append((target, node.attr, node.lineno))
            elif isinstance(value, ast.Name) and value.id == "workbench" and ".".join(["workbench"] + chain) in MODULES:
                found.append((".".join(["workbench"] + chain), node.attr, node.lineno))
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_uses_another_modules_private_name(name):
    uses = private_uses(name)
    assert not uses, "; ".join(f"{MODULES[name].relative_to(ROOT)}:{line}: uses private {attr} of {target}"
                               for target, attr, line in uses)


def test_the_private_use_check_sees_a_call_through_a_module_alias(tmp_path, monkeypatch):
    source = "from . import knn as k\nimport workbench.core.policy as pol\n\nk._private(1)\nx = pol._hidden\n"
    monkeypatch.setitem(MODULES, "workbench.core.probe", tmp_path / "probe.py")
    (tmp_path / "probe.py").write_text(source, encoding="utf-8")
    assert sorted((t, a) for t, a, _ in private_uses("workbench.core.probe")) == [
        ("workbench.core.knn", "_private"), ("workbench.core.policy", "_hidden")]


def functions(name):
    """``(function name, parameters, lines, line)`` of every function (methods included) in module ``name``."""
    out = []
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
            if params[:1] in (["self"], ["cls"]):
                params = params[1:]
            out.append((node.name, len(params), node.end_lineno - node.lineno + 1, node.lineno))
    return out


#: The longest function the core and the decisions layer hold (the def line, docstring and body).
MAX_FUNCTION_LINES = 60
#: The most parameters a public function of the decisions layer takes: a bundle travels as one object.
MAX_DECISION_PARAMETERS = 8


@pytest.mark.parametrize("name", sorted(n for n in MODULES if part(n) in ("core", "decisions")))
def test_core_and_decisions_functions_are_short(name):
    long = [f"{fn} ({lines} lines, line {line})" for fn, _, lines, line in functions(name) if lines > MAX_FUNCTION_LINES]
    assert not long, f"{MODULES[name].relative_to(ROOT)}: longer than {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if part(n) == "decisions"))
def test_public_decision_functions_take_few_parameters(name):
    many = [f"{fn} ({n} parameters, line {line})" for fn, n, _, line in functions(name)
            if not fn.startswith("_") and n > MAX_DECISION_PARAMETERS]
    assert not many, f"{MODULES[name].relative_to(ROOT)}: more than {MAX_DECISION_PARAMETERS} parameters: {many}"
