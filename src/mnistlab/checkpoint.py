"""Self-describing checkpoints: weights plus everything needed to rebuild and trust them.

A checkpoint is a `torch.save` dict of plain types and tensors, so it loads with
`weights_only=True` (no arbitrary code runs when a checkpoint is opened).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnistlab import __version__
from mnistlab.atomic import atomic_path
from mnistlab.errors import CheckpointError
from mnistlab.models import MODELS, build_model

FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    """Versions that can change a run's numbers, recorded with every run."""
    return {
        "mnistlab": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    model_name: str,
    config: dict,
    dataset: dict,
    metrics: dict,
    model_arguments: dict | None = None,
) -> None:
    """Write a checkpoint atomically. `dataset` holds its name, class names and payload checksums."""
    state = {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "model_arguments": model_arguments or {},
        "state_dict": {key: value.contiguous() for key, value in model.state_dict().items()},
        "config": config,
        "dataset": dataset,
        "metrics": metrics,
        "versions": library_versions(),
    }
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Rebuild the model from a checkpoint; return (model in eval mode, the checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass the .pt file a training run wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types (pickle, zip, runtime) for a bad file
        raise CheckpointError(
            f"{path}: not a readable mnistlab checkpoint ({type(error).__name__}); train again or pass another file"
        ) from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not an mnistlab checkpoint (format version {FORMAT_VERSION} expected)")
    if state["model_name"] not in MODELS:
        raise CheckpointError(
            f"{path}: model {state['model_name']!r} is not registered in this mnistlab; known: {', '.join(MODELS)}"
        )
    model = build_model(state["model_name"], **state["model_arguments"])
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit model {state['model_name']!r} ({first_line})") from None
    return model.eval(), state
