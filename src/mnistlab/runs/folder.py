"""The run folder's layout, in one place: file names, metrics.json, predictions.npz, checkpoints, state/ and the lock.

    RUN_DIR/
      metrics.json          every number of the run (see study.run_compare)
      predictions.npz       per-image test outputs of every model and seed (see run_arrays)
      attributions.npz      with compare --explain: each model's attribution maps (see explain.run_attributions)
      report.md, report.html and the figures named below
      <model>.pt            checkpoints; <model>-seed<N>.pt when the run has several seeds
      state/plan.json       what the run computes, checked by --resume
      state/<model>-seed<N>.epoch.pt   the last finished epoch of a job in progress
      state/<model>-seed<N>.json/.npz  a finished job's record and test outputs (the json is written last)
      .lock                 held by the process writing the folder (deleted when it is done)

A tuning run (mnistlab tune) writes its own files, named below: tune.db (the
Optuna study, SQLite), best.toml, trials.csv, tune.md and two figures. A
comparison across runs (mnistlab compare-runs) writes comparison.json,
report.md and report.html. Every checkpoint has its model card beside it,
`<checkpoint>.md` (reporting.card).

Every file is written atomically, so a run killed at any instant (even by
SIGKILL) leaves each file either as before or complete; `--resume` then skips
finished jobs and continues a half-trained one from its last epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from mnistlab.common.atomic import atomic_path, write_text_atomic
from mnistlab.common.errors import ConfigError, MnistlabError
from mnistlab.runs.metrics_check import METRICS_FILE, read_metrics  # noqa: F401 (their home; named here with the layout)
from mnistlab.runs.arrays import RunArrays

PREDICTIONS_FILE = "predictions.npz"
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
ACCURACY_PLOT = "accuracy_plot.png"
DISAGREEMENT_PLOT = "disagreements.png"
COST_PLOT = "accuracy_vs_cost.png"
SHIFT_SWEEP_PLOT = "shift_sweep.png"
ROTATION_SWEEP_PLOT = "rotation_sweep.png"
HARD_DIGITS_PLOT = "hard_digits.png"
ATTRIBUTIONS_FILE = "attributions.npz"
STATE_DIR = "state"
PLAN_FILE = "plan.json"
LOCK_FILE = ".lock"
TUNE_DATABASE = "tune.db"  # the Optuna study (SQLite): every trial, what --resume continues
TUNE_ASK_LOCK = ".tune-ask.lock"  # left by tune runs of earlier versions (their workers drew trials under it)
TUNE_BEST = "best.toml"
TUNE_TRIALS = "trials.csv"
TUNE_SUMMARY = "tune.md"
TUNE_HISTORY_PLOT = "optimization_history.png"
TUNE_IMPORTANCE_PLOT = "param_importances.png"
COMPARISON_FILE = "comparison.json"  # mnistlab compare-runs' result, beside its report.md and report.html
STATE_PATTERNS = ("*-seed*.json", "*-seed*.npz", "*-seed*.epoch.pt")  # the files of STATE_DIR besides the plan


def checkpoint_name(model_name: str, seed: int, several_seeds: bool) -> str:
    """File name of a (model, seed) checkpoint: `<model>.pt`, or `<model>-seed<N>.pt` in a multi-seed run."""
    return f"{model_name}-seed{seed}.pt" if several_seeds else f"{model_name}.pt"


def confusion_plot_name(model_name: str, normalised: bool = False) -> str:
    """File name of a model's confusion-matrix figure."""
    return f"cm_{model_name}{'_normalised' if normalised else ''}.png"


def curves_plot_name(model_name: str) -> str:
    """File name of a model's loss and accuracy curves."""
    return f"curves_{model_name}.png"


def errors_plot_name(model_name: str) -> str:
    """File name of a model's gallery of misclassified test images."""
    return f"errors_{model_name}.png"


def attribution_plot_name(model_name: str, per_class: bool = False) -> str:
    """File name of a model's attributions: for the fixed test digits, or (`per_class`) the mean of each class."""
    return f"attributions_{model_name}{'_per_class' if per_class else ''}.png"


def model_file_names(model_name: str, seeds: list[int]) -> list[str]:
    """Every file a compare run names after one model: its figures, and per seed its checkpoint and model card."""
    names = [confusion_plot_name(model_name), confusion_plot_name(model_name, normalised=True),
             curves_plot_name(model_name), errors_plot_name(model_name), reliability_plot_name(model_name),
             attribution_plot_name(model_name), attribution_plot_name(model_name, per_class=True)]
    return names + [checkpoint_name(model_name, seed, len(seeds) > 1) + suffix for seed in seeds
                    for suffix in ("", ".md")]


def write_attributions(run_dir: str | os.PathLike, columns: dict[str, np.ndarray]) -> None:
    """Write `attributions.npz` (compressed) atomically."""
    with atomic_path(Path(run_dir) / ATTRIBUTIONS_FILE) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **columns)


def read_attributions(run_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The columns of `attributions.npz`, or None when the run has none; `MnistlabError` if it is unreadable."""
    path = Path(run_dir) / ATTRIBUTIONS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise MnistlabError(f"{path}: not a readable attributions file ({error}); "
                            f"rerun mnistlab report --explain") from None


def reliability_plot_name(model_name: str) -> str:
    """File name of a model's reliability diagram (before and after temperature scaling)."""
    return f"reliability_{model_name}.png"


def write_metrics(run_dir: str | os.PathLike, metrics: dict) -> None:
    """Write `metrics.json` atomically."""
    write_text_atomic(Path(run_dir) / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


def write_run_arrays(run_dir: str | os.PathLike, arrays: RunArrays) -> None:
    """Write `predictions.npz` (compressed) atomically."""
    with atomic_path(Path(run_dir) / PREDICTIONS_FILE) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays.to_columns())


def read_run_arrays(run_dir: str | os.PathLike) -> RunArrays:
    """Load `predictions.npz`; `MnistlabError` if it is missing or unreadable."""
    path = Path(run_dir) / PREDICTIONS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            return RunArrays.from_columns({key: data[key] for key in data.files})
    except (OSError, ValueError, KeyError) as error:
        raise MnistlabError(f"{path}: not a readable predictions file ({error}); rerun mnistlab compare") from None


def _state_path(run_dir, model_name: str, seed: int, suffix: str) -> Path:
    return Path(run_dir) / STATE_DIR / f"{model_name}-seed{seed}{suffix}"


def write_plan(run_dir: str | os.PathLike, plan: dict) -> None:
    """Start a fresh run's state: forget any earlier run's progress, record what this run will compute."""
    folder = Path(run_dir) / STATE_DIR
    for pattern in STATE_PATTERNS:
        for stale in folder.glob(pattern):  # only the files this module writes
            stale.unlink()
    write_text_atomic(folder / PLAN_FILE, json.dumps(plan, indent=2, sort_keys=True) + "\n")


def read_plan(run_dir: str | os.PathLike) -> dict | None:
    """The plan a run was started with, or None when there is none or it is unreadable (`check_plan` says which)."""
    try:
        plan = json.loads((Path(run_dir) / STATE_DIR / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return plan if isinstance(plan, dict) else None


def check_plan(run_dir: str | os.PathLike, plan: dict) -> None:
    """Raise `ConfigError` unless `run_dir` holds a run started with exactly this plan."""
    path = Path(run_dir) / STATE_DIR / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {STATE_DIR}/{PLAN_FILE}); run without --resume")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: unreadable ({type(error).__name__}); the run cannot be resumed, "
                          f"start it again without --resume") from None
    plan = json.loads(json.dumps(plan))  # as it reads back from JSON: tuples become lists
    if not isinstance(saved, dict) or saved != plan:
        saved = saved if isinstance(saved, dict) else {}
        changed = sorted(key for key in set(saved) | set(plan) if saved.get(key) != plan.get(key))
        raise ConfigError(
            f"{run_dir}: was started with different {', '.join(changed)}; resume with the original flags, "
            f"start it afresh with --force, or choose another --out"
        )


def save_epoch_state(run_dir: str | os.PathLike, model_name: str, seed: int, state: dict) -> None:
    """Save a `train.training_state` dict, replacing the previous epoch's."""
    import torch  # here, not at the top: reading a run folder, and drawing its figures, needs no PyTorch

    with atomic_path(_state_path(run_dir, model_name, seed, ".epoch.pt")) as temporary:
        torch.save(state, temporary)


def load_epoch_state(run_dir: str | os.PathLike, model_name: str, seed: int) -> dict | None:
    """The last saved epoch state of (model, seed), or None (also when the file is damaged: that epoch reruns)."""
    path = _state_path(run_dir, model_name, seed, ".epoch.pt")
    if not path.is_file():
        return None
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a damaged file; the job restarts from its first epoch
        return None


def save_finished(
    run_dir: str | os.PathLike, model_name: str, seed: int, record: dict, outputs: dict[str, np.ndarray]
) -> None:
    """Mark (model, seed) done: its test outputs, then its record (written last: it is the completion mark)."""
    with atomic_path(_state_path(run_dir, model_name, seed, ".npz")) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **outputs)
    write_text_atomic(_state_path(run_dir, model_name, seed, ".json"), json.dumps(record, indent=2) + "\n")
    _state_path(run_dir, model_name, seed, ".epoch.pt").unlink(missing_ok=True)


def load_finished(run_dir: str | os.PathLike, model_name: str, seed: int) -> tuple[dict, dict[str, np.ndarray]] | None:
    """(record, test outputs) of a finished (model, seed), or None if it has not finished (or its files are damaged)."""
    record_path = _state_path(run_dir, model_name, seed, ".json")
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        with np.load(_state_path(run_dir, model_name, seed, ".npz"), allow_pickle=False) as arrays:
            return record, {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, UnicodeDecodeError):  # damaged: train the job again
        return None
