"""The package's shape: layers imported one way, no import cycle, small modules and functions.

Layers, lowest first: the top-level modules (config, errors, files, models, plots, summary),
then data/, inference/, training/, serving/ and cli/. A module imports its own layer or lower
ones, lazily or not (imports under TYPE_CHECKING count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import lenet5

PACKAGE = Path(lenet5.__file__).parent
LAYERS = ("", "data", "inference", "training", "serving", "cli")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for target in targets:
            if target in modules:
                found.add(target)
    return {t for t in found if t.startswith("lenet5")}


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS):
        return LAYERS.index(parts[1])
    return 0


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    # A package's __init__ is imported with each of its modules: not an edge of its own.
    return {m: {t for t in ts if t != m and not m.startswith(t + ".")} for m, ts in graph.items()}


def test_the_checks_see_the_package() -> None:
    graph = _graph()
    assert "lenet5.training.loop" in graph["lenet5.training.finetune"]
    assert _layer("lenet5.config") == 0 and _layer("lenet5.serving.app") == 4
    assert _layer("lenet5.data") == 1 and _layer("lenet5.cli.train") == 5


def test_imports_run_one_way() -> None:
    entry = {"lenet5", "lenet5.__main__"}  # the API and `python -m lenet5` reach every layer
    upward = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module not in entry
        for target in targets
        if target not in entry and _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


def test_rooms_stay_small() -> None:
    too_big = []
    for name, path in _modules().items():
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES:
            too_big.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{name}.{node.name}: {length} lines")
    assert too_big == []
