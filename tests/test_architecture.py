"""The package's shape: imports flow one way (no cycles, lazy imports included), and importing changes nothing."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import mnistlab

PACKAGE = Path(mnistlab.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """mnistlab modules that `path` imports anywhere: at the top, inside functions, or as `from mnistlab import x`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mnistlab":
                found |= {alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists()}
            elif node.module.startswith("mnistlab."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("mnistlab.")}
    return found - {path.stem}


def import_graph() -> dict[str, set[str]]:
    return {path.stem: imported_modules(path) for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search with colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module], _ = "open", stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[module], _ = "done", stack.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_lazy_imports_are_seen():
    source = "def f():\n    from mnistlab.report import x\n    import mnistlab.study\nfrom mnistlab import stats\n"
    path = PACKAGE.parent / "_probe_module.py"
    try:
        path.write_text(source)
        assert imported_modules(path) == {"report", "study", "stats"}
    finally:
        path.unlink()


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert graph["study"] >= {"train", "report", "run_folder"}  # the walk sees real edges
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_lower_layers_never_import_higher_ones():
    graph = import_graph()
    for low in ("models", "datasets", "config", "train", "evaluate"):
        assert not graph[low] & {"study", "cli", "report", "serve", "predict"}, low


def test_importing_every_module_leaves_the_process_alone():
    """Threads, deterministic mode, umask and logger levels are the same after importing everything."""
    probe = (
        "import importlib, logging, os, pkgutil, torch, mnistlab\n"
        "def state():\n"
        "    umask = os.umask(0); os.umask(umask)\n"
        "    levels = {name: logging.getLogger(name).level for name in ('torch.onnx', 'uvicorn', 'root')}\n"
        "    return (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),\n"
        "            torch.utils.deterministic.fill_uninitialized_memory, umask, levels)\n"
        "before = state()\n"
        "for module in pkgutil.iter_modules(mnistlab.__path__):\n"
        "    if module.name != '__main__':\n"
        "        importlib.import_module('mnistlab.' + module.name)\n"
        "assert state() == before, (before, state())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert result.returncode == 0, result.stderr[-2000:]
