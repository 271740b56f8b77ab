"""A checkpoint's path checked before anything loads it, without PyTorch, so that the CLI refuses a wrong path
at once (`cli.main.ARGUMENT_CHECKS`) and the checkpoint reader says the same thing."""

from __future__ import annotations

import os
from pathlib import Path

from mnistlab.common.errors import CheckpointError


def check_checkpoint_file(path: str | os.PathLike) -> Path:
    """`path` as a Path if it is a file; otherwise `CheckpointError` saying what to pass instead."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(entry.name for entry in path.glob("*.pt"))
        which = f"e.g. {path / inside[0]}" if inside else "it holds none"
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; pass one of its .pt files ({which})")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass the .pt file a training run wrote")
    return path
