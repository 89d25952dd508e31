"""The tree's architecture, enforced: each package of the product imports only the packages below
it, nothing in the product imports the dev kit or the tests, and the DAG and plugin files only
reach the Airflow glue.

Imports are read from the source (module level and inside functions alike), so a lazy import
cannot slip past.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Lowest first. A package may import itself and any package before it in this list.
LAYERS = ["core", "connectors", "privacy", "quality", "ingest", "sharing", "analysis", "orchestration", "ops"]
TOP_LEVEL = {"cli", "__init__", "__main__"}  # samverkan/cli.py may import every layer
FORBIDDEN_EVERYWHERE = ("devkit", "tests")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "samverkan" or len(parts) < 2:
        return None
    return parts[1]


def product_files() -> list[Path]:
    return sorted((REPO / "samverkan").rglob("*.py"))


def test_every_product_package_is_a_known_layer():
    packages = {p.name for p in (REPO / "samverkan").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"new package(s) {packages - set(LAYERS)}: add them to LAYERS"
    modules = {p.stem for p in (REPO / "samverkan").glob("*.py")}
    assert modules <= TOP_LEVEL, f"module(s) {modules - TOP_LEVEL} at the top of the package: put them in a layer"


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_upward_import_and_no_dev_kit(path):
    relative = path.relative_to(REPO / "samverkan")
    own = relative.parts[0] if len(relative.parts) > 1 else None
    allowed = set(LAYERS[: LAYERS.index(own) + 1]) if own else set(LAYERS)
    bad = []
    for line, module in imported_modules(path):
        if module.split(".")[0] in FORBIDDEN_EVERYWHERE:
            bad.append(f"line {line}: {module} (dev kit or tests)")
        target = layer_of(module)
        if target in LAYERS and target not in allowed:
            bad.append(f"line {line}: {module} ({own} may not import {target})")
    assert not bad, f"{relative}: " + "; ".join(bad)


@pytest.mark.parametrize("folder", ["dags", "plugins"])
def test_dag_and_plugin_files_reach_only_the_airflow_glue_and_configuration(folder):
    for path in sorted((REPO / folder).glob("*.py")):
        for line, module in imported_modules(path):
            target = layer_of(module)
            assert target in (None, "orchestration", "core", "sharing"), f"{path.name}:{line} imports {module}"
            assert module.split(".")[0] not in FORBIDDEN_EVERYWHERE, f"{path.name}:{line} imports {module}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check above can fail: an import of the ops layer from core is found."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from samverkan.ops.commands import main\n    import devkit.synthetic\n")
    modules = [m for _, m in imported_modules(probe)]
    assert "samverkan.ops.commands" in modules and "devkit.synthetic" in modules
    assert layer_of("samverkan.ops.commands") == "ops" and LAYERS.index("ops") > LAYERS.index("core")


def module_graph() -> dict[str, set[str]]:
    """Product module -> the product modules it imports (lazy imports included)."""
    names = {
        ".".join(p.relative_to(REPO).with_suffix("").parts): p
        for p in product_files()
        if p.name != "__init__.py"
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        targets = set()
        for _, module in imported_modules(path):
            parts = module.split(".")
            # the longest prefix that is a module: "samverkan.sharing.outbox.MANIFEST" -> ...outbox
            found = next((".".join(parts[:n]) for n in range(len(parts), 1, -1) if ".".join(parts[:n]) in names), None)
            if found and found != name:
                targets.add(found)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_product_modules():
    """Not even through a lazy import inside a function: a cycle is one module hidden in two."""
    assert cycles(module_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
