"""The shape of the ``lab`` package: module sizes, function lengths, the import graph.

    python3 -m tests.benchmarks.shape [DIR]

prints the figures for the checkout at DIR (default: this one): modules over the size
limit, the longest module, the 90th percentile of function length, the ``.get(`` count
outside ``lab/programs``, import cycles and layering violations. tests/shape/ asserts the
limits with the same functions.

Imports are read with ``ast``, those inside functions included (a deferred import is still
a dependency); ``importlib.import_module`` with a computed name is not seen.
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.labcli import ROOT

MAX_MODULE_LINES = 400
MAX_P90_FUNCTION_LINES = 30

# Import order of the flow: a module may import its own layer and the ones before it.
LAYERS = ("spec", "deploy", "run", "evidence", "verdict", "report", "grade", "cli")
# Importable from any layer; they import nothing of the lab but each other. lab.i18n holds
# the user-facing texts, which every layer from the run's progress lines to the report needs.
SHARED = frozenset({"lab", "lab.errors", "lab.data", "lab.i18n"})
# Run inside containers and on bare hosts: the standard library and themselves only.
STDLIB_ONLY = ("lab.programs", "lab.data", "lab.i18n", "lab")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module
    lines: int


def read_modules(root: Path) -> dict[str, Module]:
    """Every module under ``root/lab``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / "lab").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        text = path.read_text()
        found[".".join(parts)] = Module(
            ".".join(parts), path, ast.parse(text), len(text.splitlines())
        )
    return found


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".")
    if module.path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _known(dotted: str, modules: dict[str, Module]) -> str | None:
    """The longest prefix of ``dotted`` that is a lab module."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        if ".".join(parts[:cut]) in modules:
            return ".".join(parts[:cut])
    return None


def dependencies(module: Module, modules: dict[str, Module]) -> set[str]:
    """The lab modules ``module`` imports anywhere in its body: ``from a import b`` depends
    on the module ``a.b`` when there is one, else on ``a``."""
    wanted: list[str] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            wanted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            wanted += [f"{base}.{alias.name}" for alias in node.names]
    found = {_known(name, modules) for name in wanted}
    return {name for name in found if name is not None and name != module.name}


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Edges from each lab module to the lab modules it imports."""
    return {name: dependencies(module, modules) for name, module in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer(name: str) -> int | None:
    """Position of a module's layer in LAYERS; None for shared modules and programs."""
    parts = name.split(".")
    if name in SHARED or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def layering_violations(modules: dict[str, Module]) -> list[str]:
    """Imports against the flow, and stdlib-only modules that import anything else."""
    problems = []
    for name, targets in sorted(import_graph(modules).items()):
        for target in sorted(targets):
            here, there = layer(name), layer(target)
            if there is not None and (here is None or there > here):
                problems.append(f"{name} imports {target}")
    for name, module in sorted(modules.items()):
        if _stdlib_only(name):
            problems += [f"{name} imports {n}" for n in sorted(_non_stdlib(name, module))]
    return problems


def _stdlib_only(name: str) -> bool:
    return any(name == p or (p != "lab" and name.startswith(p + ".")) for p in STDLIB_ONLY)


def _non_stdlib(name: str, module: Module) -> set[str]:
    own = name.split(".")[:2] if name.startswith("lab.") else [name]
    allowed = ".".join(own)
    bad = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            tops = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            tops = [_absolute(module, node)]
        else:
            continue
        for dotted in tops:
            top = dotted.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if dotted == allowed or (allowed != "lab" and dotted.startswith(allowed + ".")):
                continue
            bad.add(dotted)
    return bad


def function_lengths(modules: dict[str, Module]) -> list[int]:
    """Lines of every function and method, ``def`` to its last line (nested ones too)."""
    return [
        (node.end_lineno or node.lineno) - node.lineno + 1
        for module in modules.values()
        for node in ast.walk(module.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def percentile(values: list[int], fraction: float) -> int:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def get_calls(root: Path) -> int:
    """Occurrences of ``.get(`` in lab/ outside lab/programs."""
    return sum(
        path.read_text().count(".get(")
        for path in (root / "lab").rglob("*.py")
        if "programs" not in path.relative_to(root / "lab").parts
    )


def oversized(modules: dict[str, Module]) -> list[tuple[str, int]]:
    """Modules over MAX_MODULE_LINES, longest first."""
    big = [(m.name, m.lines) for m in modules.values() if m.lines > MAX_MODULE_LINES]
    return sorted(big, key=lambda item: -item[1])


def report(root: Path) -> str:
    modules = read_modules(root)
    longest = max(modules.values(), key=lambda m: m.lines)
    lengths = function_lengths(modules)
    found = cycles(import_graph(modules))
    rows = [
        f"modules                    {len(modules)}",
        f"modules over {MAX_MODULE_LINES} lines      {len(oversized(modules))}",
        *(f"  {name:40} {lines}" for name, lines in oversized(modules)),
        f"longest module             {longest.name} ({longest.lines} lines)",
        f"functions                  {len(lengths)}",
        f"p90 function length        {percentile(lengths, 0.9)} lines",
        f"longest function           {max(lengths, default=0)} lines",
        f".get( outside programs     {get_calls(root)}",
        f"import cycles              {len(found)}",
        *(f"  {' <-> '.join(group)}" for group in found),
        f"layering violations        {len(layering_violations(modules))}",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?", type=Path, default=ROOT, help="a checkout")
    print(report(parser.parse_args().dir))


if __name__ == "__main__":
    main()
