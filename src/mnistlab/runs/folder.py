"""The run folder's layout, in one place: file names, metrics.json, predictions.npz, checkpoints, state/ and the lock.

    RUN_DIR/
      metrics.json          every number of the run (see study.run_compare)
      predictions.npz       per-image test outputs of every model and seed (see run_arrays)
      report.md, report.html and the figures named below
      <model>.pt            checkpoints; <model>-seed<N>.pt when the run has several seeds
      state/plan.json       what the run computes, checked by --resume
      state/<model>-seed<N>.epoch.pt   the last finished epoch of a job in progress
      state/<model>-seed<N>.json/.npz  a finished job's record and test outputs (the json is written last)
      .lock                 held by the process writing the folder (deleted when it is done)

A tuning run (mnistlab tune) writes its own files, named below: tune.db (the
Optuna study, SQLite), best.toml, trials.csv, tune.md and two figures.

Every file is written atomically, so a run killed at any instant (even by
SIGKILL) leaves each file either as before or complete; `--resume` then skips
finished jobs and continues a half-trained one from its last epoch.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from mnistlab.common.atomic import atomic_path, write_text_atomic
from mnistlab.common.errors import ConfigError, MnistlabError
from mnistlab.runs.metrics_check import check_metrics
from mnistlab.runs.arrays import RunArrays

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npz"
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
ACCURACY_PLOT = "accuracy_plot.png"
DISAGREEMENT_PLOT = "disagreements.png"
SHIFT_SWEEP_PLOT = "shift_sweep.png"
ROTATION_SWEEP_PLOT = "rotation_sweep.png"
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


def reliability_plot_name(model_name: str) -> str:
    """File name of a model's reliability diagram (before and after temperature scaling)."""
    return f"reliability_{model_name}.png"


@contextlib.contextmanager
def locked(run_dir: str | os.PathLike, create: bool = True) -> Iterator[Path]:
    """Hold `run_dir`'s lock until the block ends; a second holder gets `ConfigError`. With `create`, make the
    folder first if needed; without, a missing folder is a `ConfigError`.

    An OS file lock (flock) on `.lock`, which holds the holder's pid: the kernel releases it when the
    process exits or dies, so a killed run never leaves a stale lock behind. The holder deletes `.lock`
    before releasing it, so no lock file stays in the folder; a process that locked a file that has
    since been deleted (or replaced) finds out by comparing it with the path, and tries again.
    """
    run_dir = Path(run_dir)
    if not create and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder; pass a folder written by mnistlab compare")
    check_folder_writable(run_dir)
    for _ in range(100):  # each retry means another process took and dropped the lock meanwhile
        handle = _open_lock_file(run_dir)
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise ConfigError(f"{run_dir}: another mnistlab run (pid {holder}) is writing this folder; "
                                  f"wait for it to finish or choose another --out") from None
            if not _is_current(handle, run_dir / LOCK_FILE):
                continue  # locked a file its last holder deleted: it locks nothing now
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield run_dir
            finally:
                (run_dir / LOCK_FILE).unlink(missing_ok=True)  # while still held: see above
                fcntl.flock(handle, fcntl.LOCK_UN)
            return
    raise ConfigError(f"{run_dir}: its lock changed hands too often; wait for the other mnistlab runs to finish")


def _open_lock_file(run_dir: Path):
    try:
        return open(run_dir / LOCK_FILE, "a+", encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{run_dir}: cannot create its lock file ({error.strerror}); choose another folder") from None


def _is_current(handle, path: Path) -> bool:
    """Is the open `handle` still the file at `path` (not deleted, not replaced)?"""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


RUN_MARKERS = {"compare": f"{STATE_DIR}/{PLAN_FILE}", "tune": TUNE_DATABASE}  # the file that makes a folder a run
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a model name as a plan may hold it, safe in a file name


@contextlib.contextmanager
def claimed(run_dir: str | os.PathLike, kind: str, resume: bool = False, force: bool = False) -> Iterator[Path]:
    """Lock `run_dir` for a `kind` ("compare" or "tune") run, refusing to take a folder that is not its own.

    Fine: a new or empty folder; with `resume`, a run of this kind (the caller checks it is the same run);
    with `force`, a run of this kind, whose own files are deleted first (nothing else in the folder is).
    Refused, before anything is created: a folder that holds other files, and an earlier run of this kind
    without `resume` or `force`. The check is repeated under the lock, where no other run can start.
    """
    check_run_folder(run_dir, kind, resume, force)
    with locked(run_dir) as folder:
        if check_run_folder(folder, kind, resume, force) and force:
            remove_run_files(folder, kind)
        yield folder


def check_run_folder(run_dir: str | os.PathLike, kind: str, resume: bool, force: bool) -> bool:
    """Raise `ConfigError` unless a `kind` run may write `run_dir` (see `claimed`); return whether it holds one.

    Reads only: callers check before slow work (loading a dataset), and `claimed` again under the lock.
    """
    if resume and force:
        raise ConfigError("--resume continues the run in --out and --force starts it afresh; give one of them")
    run_dir, marker = Path(run_dir), RUN_MARKERS[kind]
    if not run_dir.exists():
        if resume:
            raise ConfigError(f"{run_dir}: nothing to resume (no such folder); run without --resume")
        return False
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder; choose another --out")
    if (run_dir / marker).is_file():
        if not (resume or force):
            raise ConfigError(f"{run_dir}: holds an earlier {kind} run; continue it with --resume, start it afresh "
                              f"with --force (deletes that run's files), or choose another --out")
        return True
    try:
        others = sorted(entry.name for entry in run_dir.iterdir() if not _is_own_leftover(entry.name))
    except OSError as error:
        raise ConfigError(f"{run_dir}: cannot list this folder ({error.strerror}); choose another --out") from None
    if others:
        raise ConfigError(f"{run_dir}: {'nothing to resume: it' if resume else 'it'} is not empty ({others[0]}"
                          f"{f' and {len(others) - 1} more' if len(others) > 1 else ''}) and holds no mnistlab "
                          f"{kind} run (no {marker}); choose a new or empty folder for --out")
    if resume:
        raise ConfigError(f"{run_dir}: nothing to resume (no {marker}); run without --resume")
    return False


def _is_own_leftover(name: str) -> bool:
    """A file an interrupted run may leave in a folder that holds no run yet: its lock, a write test, a temporary."""
    return name in (LOCK_FILE, TUNE_ASK_LOCK, ".write-test") or (name.startswith(".") and name.endswith(".part"))


def run_files(run_dir: str | os.PathLike, kind: str) -> list[Path]:
    """The files a `kind` run in `run_dir` wrote, by name (those present): what `--force` deletes.

    A compare run's checkpoints and per-model figures are named after the models and seeds in its plan.
    """
    run_dir = Path(run_dir)
    if kind == "tune":
        names = [TUNE_BEST, TUNE_TRIALS, TUNE_SUMMARY, TUNE_HISTORY_PLOT, TUNE_IMPORTANCE_PLOT, TUNE_ASK_LOCK,
                 f"{TUNE_DATABASE}-journal", TUNE_DATABASE]
        return [run_dir / name for name in names if (run_dir / name).is_file()]
    plan_path = run_dir / STATE_DIR / PLAN_FILE
    try:
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        models, seeds = plan["models"], plan["seeds"]
        if not (all(isinstance(name, str) and SAFE_NAME.fullmatch(name) for name in models)
                and all(type(seed) is int for seed in seeds)):
            raise ValueError("unexpected model names or seeds")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{plan_path}: unreadable ({type(error).__name__}), so the files of the earlier run are not "
                          f"known; delete them yourself or choose another --out") from None
    names = [METRICS_FILE, PREDICTIONS_FILE, REPORT_MARKDOWN, REPORT_HTML, ACCURACY_PLOT, DISAGREEMENT_PLOT,
             SHIFT_SWEEP_PLOT, ROTATION_SWEEP_PLOT]
    for name in models:
        names += [confusion_plot_name(name), confusion_plot_name(name, normalised=True), curves_plot_name(name),
                  errors_plot_name(name), reliability_plot_name(name)]
        names += [checkpoint_name(name, seed, len(seeds) > 1) for seed in seeds]
    state = [path for pattern in STATE_PATTERNS for path in (run_dir / STATE_DIR).glob(pattern)]
    return [run_dir / name for name in names if (run_dir / name).is_file()] + state + [plan_path]


def remove_run_files(run_dir: str | os.PathLike, kind: str) -> None:
    """Delete the files of the earlier `kind` run in `run_dir` (see `run_files`); the plan or database goes last."""
    for path in run_files(run_dir, kind):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # still holds something of the user's: it stays
        (Path(run_dir) / STATE_DIR).rmdir()


def check_folder_writable(folder: str | os.PathLike) -> None:
    """Create `folder` if needed and prove a file can be written there; `ConfigError` naming the problem if not.

    Called before any training starts, so that no finished work is lost to a bad --out.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / ".write-test") as temporary:
            temporary.write_bytes(b"")
        (folder / ".write-test").unlink()
    except OSError as error:
        raise ConfigError(f"{folder}: cannot write there ({error.strerror}); choose another --out") from None


def read_metrics(run_dir: str | os.PathLike) -> dict:
    """Load `metrics.json` from a run folder; `MnistlabError` naming the file if it is missing or does not fit
    (see `metrics_check`)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        return check_metrics(json.loads(path.read_text(encoding="utf-8")), path)
    except OSError as error:
        raise MnistlabError(f"{path}: cannot read ({error.strerror}); pass a run folder written by mnistlab compare") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise MnistlabError(f"{path}: not valid JSON ({error}); rerun mnistlab compare to write it again") from None


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
    with atomic_path(_state_path(run_dir, model_name, seed, ".epoch.pt")) as temporary:
        torch.save(state, temporary)


def load_epoch_state(run_dir: str | os.PathLike, model_name: str, seed: int) -> dict | None:
    """The last saved epoch state of (model, seed), or None (also when the file is damaged: that epoch reruns)."""
    path = _state_path(run_dir, model_name, seed, ".epoch.pt")
    if not path.is_file():
        return None
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
