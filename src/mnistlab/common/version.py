"""The package version, one definition for the package, checkpoints and reports (pyproject.toml has the same)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/mnistlab in a checkout


@functools.lru_cache(maxsize=1)
def source_commit() -> str | None:
    """The git commit of mnistlab's own source (`-dirty` with uncommitted changes), or None when not run from a
    checkout (an installed wheel, no git). Recorded with every run, so a result names the code that made it."""
    try:
        top = subprocess.run(["git", "-C", str(PACKAGE_DIR), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() / "src" / "mnistlab" != PACKAGE_DIR:
            return None  # not mnistlab's checkout (e.g. a virtual environment inside someone's repository)
        described = subprocess.run(["git", "-C", str(PACKAGE_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
                                   capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return described.stdout.strip() or None if described.returncode == 0 else None
