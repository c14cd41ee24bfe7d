"""The package's imports keep the layers of docs/design.md: nothing imports upward, nothing imports in a circle."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "ts_eval"
FACADE = {("ts_eval", "ts_eval.api")}  # the package hands out the API's names: the one allowed upward import


def layers() -> list[list[str]]:
    """The layer table of docs/design.md: one list of module patterns per layer, lowest first."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d) [^|]+\| (.+) \|$", text, flags=re.M)
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1)), "layer rows 1..n in docs/design.md"
    return [re.findall(r"`([^`]+)`", cells) for _, cells in rows]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def layer_of(name: str, table: list[list[str]]) -> int:
    best: tuple[int, int, int] | None = None  # (exact, length, layer)
    for number, patterns in enumerate(table, start=1):
        for pattern in patterns:
            if name == pattern or (("*" in pattern) and fnmatch.fnmatchcase(name, pattern)):
                rank = (name == pattern, len(pattern), number)
                best = max(best, rank) if best else rank
    assert best is not None, f"{name} is in no layer of docs/design.md: add it there"
    return best[2]


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every ts_eval module `name` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from ts_eval.store import RunDir` -> ts_eval.store
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    table = layers()
    upward = sorted(
        (a, b)
        for a, targets in graph().items()
        for b in targets
        if layer_of(b, table) > layer_of(a, table) and (a, b) not in FACADE
    )
    assert not upward, "imports upward (move the code down, or the import up): " + ", ".join(
        f"{a} -> {b}" for a, b in upward
    )


def test_no_import_circles():
    edges = graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if (node, target) in FACADE:
                continue
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
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_every_module_has_a_layer():
    table = layers()
    for name in modules():
        layer_of(name, table)
