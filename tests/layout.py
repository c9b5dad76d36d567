"""The house rules of the source tree, checked from the AST (no import of the code checked).

``python tests/layout.py`` prints every breach (``make lint`` runs it); ``tests/test_layout.py`` fails on any.
Rules: at most :data:`MAX_ROOT_MODULES` modules directly in ``demix_core/``; no module over
:data:`MAX_MODULE_LINES` lines and no function over :data:`MAX_FUNCTION_LINES` (``demix_core``, ``app``,
``pages``); no import cycle among our modules, counting imports inside functions and under
``TYPE_CHECKING``; no import up the layers of :data:`LAYERS`; pages import only ``app`` (never the core).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "demix_core"
MAX_ROOT_MODULES = 8
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
CHECKED = ("demix_core", "app", "pages")

# Bottom to top: a unit (a wing of demix_core, or a module at its root) may import its own layer and those
# below it, never one above. Units on one line share a layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("data",),
    ("io",),
    ("mixing",),
    ("workspace",),
    ("merge",),
    ("evaluate",),
    ("proxy",),
    ("engine",),
    ("train", "export"),
    ("background",),
    ("search",),
    ("runs",),
    ("validation",),
    ("view",),
    ("tour",),
    ("cli",),
    ("__init__", "__main__"),
)


@dataclass(frozen=True)
class Breach:
    """One broken rule: where, and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def module_name(path: Path, root: Path = ROOT) -> str:
    """``demix_core/io/atomic.py`` -> ``demix_core.io.atomic`` (a package's ``__init__`` is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def sources(root: Path = ROOT, folders: tuple[str, ...] = CHECKED) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` under ``folders`` of ``root``."""
    out: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            out[module_name(path, root)] = path
    return out


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import anywhere in ``tree`` (functions and TYPE_CHECKING included);
    ``from a import b`` yields ``a.b`` (a submodule or a name: resolved against the known modules later)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            yield node.lineno, origin
            for alias in node.names:
                yield node.lineno, f"{origin}.{alias.name}"


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(known: dict[str, Path]) -> dict[str, dict[str, int]]:
    """Module -> {imported module of ours: first line}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: dict[str, int] = {}
        for line, name in imported_names(tree, module, path.name == "__init__.py"):
            target = _resolve(name, known)
            if target and target != module and target not in edges:
                edges[target] = line
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def unit(module: str) -> str | None:
    """The layer unit of a core module: its wing, or its own name at the root."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(name: str) -> int | None:
    for level, names in enumerate(LAYERS):
        if name in names:
            return level
    return None


def _size_breaches(known: dict[str, Path], root: Path) -> Iterator[Breach]:
    for path in known.values():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        rel = str(path.relative_to(root))
        if lines > MAX_MODULE_LINES:
            yield Breach(rel, f"{lines} lines (at most {MAX_MODULE_LINES}): split it by job")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    yield Breach(f"{rel}:{node.lineno}", f"function {node.name} has {length} lines "
                                 f"(at most {MAX_FUNCTION_LINES})")


def _import_breaches(known: dict[str, Path], graph: dict[str, dict[str, int]], root: Path) -> Iterator[Breach]:
    for component in cycles(graph):
        yield Breach(component[0], "import cycle: " + " <-> ".join(component))
    for module, edges in graph.items():
        rel = str(known[module].relative_to(root))
        if module.startswith("pages"):
            for target, line in edges.items():
                if target.startswith(PACKAGE):
                    yield Breach(f"{rel}:{line}", f"a page imports {target}; pages reach the core through app/")
            continue
        here = unit(module)
        if here is None:
            continue
        mine = layer_of(here)
        if mine is None:
            yield Breach(rel, f"{here!r} is in no layer: add it to LAYERS in tests/layout.py")
            continue
        for target, line in edges.items():
            if target.startswith(("app", "pages")):
                yield Breach(f"{rel}:{line}", f"the core imports {target}: the core knows no screen")
                continue
            theirs = layer_of(unit(target) or "")
            if theirs is not None and theirs > mine:
                yield Breach(f"{rel}:{line}", f"{module} ({here}) imports up the layers: {target} ({unit(target)})")


def breaches(root: Path = ROOT) -> list[Breach]:
    """Every breach of the house rules in the tree at ``root``, in a stable order."""
    known = sources(root)
    root_modules = sorted(p.name for p in (root / PACKAGE).glob("*.py"))
    out: list[Breach] = []
    if len(root_modules) > MAX_ROOT_MODULES:
        out.append(Breach(PACKAGE, f"{len(root_modules)} modules at the root (at most {MAX_ROOT_MODULES}): "
                          + ", ".join(root_modules)))
    out.extend(_size_breaches(known, root))
    out.extend(_import_breaches(known, import_graph(known), root))
    return out


def main() -> int:
    found = breaches()
    for breach in found:
        print(breach)
    print(f"layout: {len(found)} breach(es)" if found else "layout: ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
