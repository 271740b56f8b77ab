"""Resumable runs: the plan, per-epoch training state and finished (model, seed) results in `RUN_DIR/state/`.

Every file is written atomically, so a run killed at any instant (even by
SIGKILL) leaves each file either as before or complete. `--resume` then skips
the (model, seed) pairs with a finished result and continues a half-trained
one from its last completed epoch, ending with the same numbers as a run that
was never interrupted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from mnistlab.atomic import atomic_path, write_text_atomic
from mnistlab.errors import ConfigError

STATE_DIR = "state"
PLAN_FILE = "plan.json"


def _state_path(run_dir, model_name: str, seed: int, suffix: str) -> Path:
    return Path(run_dir) / STATE_DIR / f"{model_name}-seed{seed}{suffix}"


def write_plan(run_dir: str | os.PathLike, plan: dict) -> None:
    """Start a fresh run's state: forget any earlier run's progress, record what this run will compute."""
    folder = Path(run_dir) / STATE_DIR
    for pattern in ("*-seed*.json", "*-seed*.npz", "*-seed*.epoch.pt"):
        for stale in folder.glob(pattern):  # only the files this module writes
            stale.unlink()
    write_text_atomic(Path(run_dir) / STATE_DIR / PLAN_FILE, json.dumps(plan, indent=2, sort_keys=True) + "\n")


def check_plan(run_dir: str | os.PathLike, plan: dict) -> None:
    """Raise `ConfigError` unless `run_dir` holds a run started with exactly this plan."""
    path = Path(run_dir) / STATE_DIR / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {STATE_DIR}/{PLAN_FILE}); run without --resume")
    saved = json.loads(path.read_text(encoding="utf-8"))
    plan = json.loads(json.dumps(plan))  # as it reads back from JSON: tuples become lists
    if saved != plan:
        changed = sorted(key for key in set(saved) | set(plan) if saved.get(key) != plan.get(key))
        raise ConfigError(
            f"{run_dir}: was started with different {', '.join(changed)}; resume with the original flags "
            f"or start a new run folder"
        )


def save_epoch_state(run_dir: str | os.PathLike, model_name: str, seed: int, state: dict) -> None:
    """Save a `train.training_state` dict, replacing the previous epoch's."""
    with atomic_path(_state_path(run_dir, model_name, seed, ".epoch.pt")) as temporary:
        torch.save(state, temporary)


def load_epoch_state(run_dir: str | os.PathLike, model_name: str, seed: int) -> dict | None:
    """The last saved epoch state of (model, seed), or None."""
    path = _state_path(run_dir, model_name, seed, ".epoch.pt")
    return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None


def save_finished(
    run_dir: str | os.PathLike, model_name: str, seed: int, record: dict, predicted: np.ndarray, confidence: np.ndarray
) -> None:
    """Mark (model, seed) done: its test outputs, then its record (written last: it is the completion mark)."""
    with atomic_path(_state_path(run_dir, model_name, seed, ".npz")) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, predicted=predicted, confidence=confidence)
    write_text_atomic(_state_path(run_dir, model_name, seed, ".json"), json.dumps(record, indent=2) + "\n")
    _state_path(run_dir, model_name, seed, ".epoch.pt").unlink(missing_ok=True)


def load_finished(run_dir: str | os.PathLike, model_name: str, seed: int) -> tuple[dict, np.ndarray, np.ndarray] | None:
    """(record, predicted, confidence) of a finished (model, seed), or None."""
    record_path = _state_path(run_dir, model_name, seed, ".json")
    if not record_path.is_file():
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    with np.load(_state_path(run_dir, model_name, seed, ".npz"), allow_pickle=False) as arrays:
        return record, arrays["predicted"], arrays["confidence"]
