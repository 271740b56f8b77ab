"""Who may write a run folder: its lock, and the claim compare and tune lay on their --out before writing.

A folder is claimed when it is new or empty, or holds a run of the same kind that
the user continues (`resume`) or starts afresh (`force`, which deletes only that
run's own files, see `run_files`); anything else is refused before any work, so a
command never writes into, or deletes from, a folder it did not create.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Iterator

from filelock import lock_descriptor, unlock_descriptor

from mnistlab.common.atomic import atomic_path
from mnistlab.common.errors import ConfigError
from mnistlab.runs.folder import (ACCURACY_PLOT, ATTRIBUTIONS_FILE, COMPARISON_FILE, COST_PLOT, DISAGREEMENT_PLOT,
                                  HARD_DIGITS_PLOT, LOCK_FILE, METRICS_FILE, PLAN_FILE, PREDICTIONS_FILE, REPORT_HTML,
                                  REPORT_MARKDOWN, ROTATION_SWEEP_PLOT, SHIFT_SWEEP_PLOT, STATE_DIR, STATE_PATTERNS,
                                  TUNE_ASK_LOCK, TUNE_BEST, TUNE_DATABASE, TUNE_HISTORY_PLOT, TUNE_IMPORTANCE_PLOT,
                                  TUNE_SUMMARY, TUNE_TRIALS, model_file_names)


@contextlib.contextmanager
def locked(run_dir: str | os.PathLike, create: bool = True) -> Iterator[Path]:
    """Hold `run_dir`'s lock until the block ends; a second holder gets `ConfigError`. With `create`, make the
    folder first if needed; without, a missing folder is a `ConfigError`.

    An OS file lock on `.lock` (filelock's primitive on our own descriptor: flock on POSIX, LockFileEx
    on Windows), which holds the holder's pid: the kernel releases it when the process exits or dies, so
    a killed run never leaves a stale lock behind. The holder deletes `.lock` before releasing it, so no
    lock file stays in the folder; a process that locked a file that has since been deleted (or replaced)
    finds out by comparing it with the path, and tries again. (Windows deletes no open file: there `.lock`
    goes after the release, when no other process has it open, and the lock's byte hides the pid from others.)
    """
    run_dir = Path(run_dir)
    if not create and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run folder; pass a folder written by mnistlab compare")
    check_folder_writable(run_dir)
    for _ in range(100):  # each retry means another process took and dropped the lock meanwhile
        handle = _open_lock_file(run_dir)
        with handle:
            if not lock_descriptor(handle.fileno(), blocking=False):
                holder = _read_holder(handle)
                raise ConfigError(f"{run_dir}: another mnistlab run (pid {holder}) is writing this folder; "
                                  f"wait for it to finish or choose another --out")
            if not _is_current(handle, run_dir / LOCK_FILE):
                continue  # locked a file its last holder deleted: it locks nothing now
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield run_dir
            finally:
                deleted = _delete(run_dir / LOCK_FILE)  # while still held: see above
                unlock_descriptor(handle.fileno())
                if not deleted:  # Windows: now, closed; it stays while another process has it open
                    handle.close()
                    _delete(run_dir / LOCK_FILE)
            return
    raise ConfigError(f"{run_dir}: its lock changed hands too often; wait for the other mnistlab runs to finish")


def _open_lock_file(run_dir: Path):
    try:
        return open(run_dir / LOCK_FILE, "a+", encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{run_dir}: cannot create its lock file ({error.strerror}); choose another folder") from None


def _read_holder(handle) -> str:
    """The pid the lock's holder wrote, or "unknown" (not written yet, or unreadable: Windows locks the byte)."""
    try:
        handle.seek(0)
        return handle.read().strip() or "unknown"
    except OSError:
        return "unknown"


def _delete(path: Path) -> bool:
    """Delete `path` if it is there; False where the OS refuses (Windows deletes no file that is open)."""
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        return False
    return True


def _is_current(handle, path: Path) -> bool:
    """Is the open `handle` still the file at `path` (not deleted, not replaced)?"""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


RUN_MARKERS = {"compare": f"{STATE_DIR}/{PLAN_FILE}", "tune": TUNE_DATABASE,
               "compare-runs": COMPARISON_FILE}  # the file that makes a folder a run
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a model name as a plan may hold it, safe in a file name


@contextlib.contextmanager
def claimed(run_dir: str | os.PathLike, kind: str, resume: bool = False, force: bool = False) -> Iterator[Path]:
    """Lock `run_dir` for a `kind` ("compare", "tune" or "compare-runs") run, refusing to take a folder that is not its own.

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
            again = "" if kind == "compare-runs" else "continue it with --resume, "
            raise ConfigError(f"{run_dir}: holds an earlier {kind} run; {again}start it afresh "
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
    if kind == "compare-runs":
        return [run_dir / name for name in (REPORT_MARKDOWN, REPORT_HTML, COMPARISON_FILE) if (run_dir / name).is_file()]
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
             SHIFT_SWEEP_PLOT, ROTATION_SWEEP_PLOT, COST_PLOT, HARD_DIGITS_PLOT, ATTRIBUTIONS_FILE]
    for name in models:
        names += model_file_names(name, seeds)
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
