"""The package's shape: its layers (import-linter contracts in pyproject.toml) hold, and importing changes nothing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mnistlab

PACKAGE = Path(mnistlab.__file__).parent
ROOT = PACKAGE.parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(source_root: Path) -> subprocess.CompletedProcess:
    """Run import-linter with the project's contracts over the package found under `source_root`."""
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(source_root)})


def test_the_layer_contracts_hold():
    result = lint_imports(PACKAGE.parent)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("low, high", [("data/idx.py", "mnistlab.cli.main"),
                                       ("models/registry.py", "mnistlab.training.train"),
                                       ("evaluation/stats.py", "mnistlab.vision.preprocess"),
                                       ("vision/predict.py", "fastapi")])
def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path, low, high):
    """The contracts are not vacuous: one upward import, or a core module importing an extra, even inside a
    function, fails the check."""
    shutil.copytree(PACKAGE, tmp_path / "mnistlab", ignore=shutil.ignore_patterns("__pycache__", "static"))
    module = tmp_path / "mnistlab" / low
    module.write_text(module.read_text(encoding="utf-8") + f"\n\ndef _probe():\n    import {high}\n",
                      encoding="utf-8")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and high in result.stdout


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
        "for module in pkgutil.walk_packages(mnistlab.__path__, 'mnistlab.'):\n"
        "    if not module.name.endswith('__main__'):\n"
        "        importlib.import_module(module.name)\n"
        "assert state() == before, (before, state())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert result.returncode == 0, result.stderr[-2000:]
