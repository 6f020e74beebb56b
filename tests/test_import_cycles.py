"""No import cycles among amortflow's modules, counting imports inside functions too.

A cycle that a function-level import hides still ties the two modules together (neither can be
understood, tested or moved without the other) and breaks as soon as someone hoists the import.
The graph is read from the source with ``ast``: an edge ``a -> b`` for every
``import amortflow.b`` or ``from amortflow... import`` in module ``a``, wherever it stands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "amortflow"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (a package is its __init__)."""
    files = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imported_modules(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The package modules one source tree imports (``from a import b`` counts as ``a.b`` if that is a module)."""
    found = set()
    for node in ast.walk(tree):  # every statement, also inside functions and `if TYPE_CHECKING:`
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_files(package)
    return {name: imported_modules(ast.parse(path.read_text()), modules) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_cycle_finder_finds_a_hidden_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import f\n")
    (package / "b.py").write_text("def f():\n    from pkg import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from pkg.a import f\n")  # imports into the cycle, not part of it
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.c"]]


@pytest.mark.parametrize(
    "pair",
    [
        ("amortflow.simulation.distributed.model", "amortflow.simulation.distributed.streaming"),
        ("amortflow.simulation.distributed.model", "amortflow.simulation.distributed.presimulation"),
        ("amortflow.simulation.generative_model", "amortflow.simulation.presimulation"),
    ],
)
def test_the_former_cycles_import_one_way_only(pair):
    graph = import_graph()
    first, second = pair
    assert second in graph[first] and first not in graph[second]


def test_amortflow_has_no_import_cycle():
    assert cycles(import_graph()) == []
