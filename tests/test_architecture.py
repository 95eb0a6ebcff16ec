"""The folders are the architecture: each layer imports only from the layers below it, and no module
takes part in an import circle. The layers and their order are read from docs/architecture.md, so
the document and the code cannot drift apart.

Every import counts: at module level, inside functions (lazy imports) and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ARCHITECTURE = REPO / "docs" / "architecture.md"
NOT_LAYERS = {"tests", "bench", "examples", "docs", "templates"}  # development tools, data and prose


def layers() -> list[str]:
    """The layer folders, lowest first, from the table in docs/architecture.md (`| 1 | `din/` | ...`)."""
    found = re.findall(r"^\| (\d+) \| `([a-z_]+)/` \|", ARCHITECTURE.read_text(encoding="utf-8"), flags=re.M)
    assert found, f"{ARCHITECTURE} has no table of layers"
    numbers = [int(n) for n, _ in found]
    assert numbers == sorted(numbers), "the layer table must list the layers lowest first"
    return [name for _, name in found]


def python_packages() -> set[str]:
    """Top-level folders of the repository that hold Python code."""
    return {
        p.name
        for p in REPO.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.rglob("*.py")) and p.name not in NOT_LAYERS
    }


def modules() -> dict[str, Path]:
    """Every module of the layered packages, by dotted name."""
    found = {}
    for layer in layers():
        for path in sorted((REPO / layer).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import in the file, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # `from pkg import module` imports a module too
                yield f"{target}.{alias.name}", node.lineno


def internal_edges() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        for target, _ in imported(module, path):
            if target in known and target != module:
                edges[module].add(target)
    return edges


def test_every_code_folder_is_a_layer() -> None:
    missing = python_packages() - set(layers())
    assert not missing, f"add {sorted(missing)} to the layer table in docs/architecture.md"


def test_no_layer_imports_from_a_layer_above_it() -> None:
    rank = {name: index for index, name in enumerate(layers())}
    upward = []
    for module, path in modules().items():
        own = rank[module.split(".")[0]]
        for target, line in imported(module, path):
            top = target.split(".")[0]
            if top in ("tests", "bench"):
                upward.append(f"{path.relative_to(REPO)}:{line} imports {target} (development code)")
            elif top in rank and rank[top] > own:
                upward.append(
                    f"{path.relative_to(REPO)}:{line} imports {target} ({top}/ is above {module.split('.')[0]}/)"
                )
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    cycles = strongly_connected(internal_edges())
    assert not cycles, "import circles:\n" + "\n".join(" ⇄ ".join(sorted(c)) for c in cycles)


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """The components of more than one module (Tarjan's algorithm): each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("edges", "circles"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [{"a", "b"}]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [{"a", "b", "c"}]),
    ],
)
def test_the_circle_finder_finds_circles(edges: dict[str, set[str]], circles: list[set[str]]) -> None:
    assert strongly_connected(edges) == circles


def test_the_import_reader_sees_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from warehouse.remote import X\n"
        "def f():\n    import flows.consolidate\nfrom . import sibling\nfrom .inner import y\n"
    )
    found = {target for target, _ in imported("reports.mod", source)}
    assert {"warehouse.remote", "flows.consolidate", "reports.sibling", "reports.inner", "reports.inner.y"} <= found
