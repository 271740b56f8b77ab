"""Lean installs: a command whose extra is missing exits 2 with the install line.

That the core imports no extra is an import-linter contract (pyproject.toml, tests/test_architecture.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnistlab.common.extras import EXTRAS

# Runs the CLI with the given top-level modules made unimportable, as in an install without their extra.
WITHOUT = """
import sys
for module in {modules!r}:
    sys.modules[module] = None  # `import module` now raises ImportError
from mnistlab.cli.main import main
sys.exit(main({argv!r}))
"""


def run_without(modules, argv, tmp_path):
    code = WITHOUT.format(modules=list(modules), argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("extra, argv", [
    ("serve", ["serve", "--checkpoints", "nowhere"]),
    ("tune", ["tune", "cnn", "--trials", "1"]),
    ("onnx", ["export", "model.pt"]),
    ("mlflow", ["compare", "--models", "ann", "--out", "run", "--mlflow", "file:./mlruns"]),
    ("tensorboard", ["train", "ann", "--out", "ann.pt", "--tensorboard", "tb"]),
])
def test_a_missing_extra_is_one_line_with_the_install_command(extra, argv, tmp_path):
    result = run_without(EXTRAS[extra], argv, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"pip install 'mnistlab[{extra}]'" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written
