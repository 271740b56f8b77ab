"""`mnistlab tune MODEL`: an Optuna search of a model's training settings, scored on the validation split only.

    from mnistlab.tune import run_tune
    summary = run_tune("cnn", {"epochs": 3}, "runs/tune-cnn", trials=12)
    # then: mnistlab compare --models ann,cnn --config cnn=runs/tune-cnn/best.toml

Each trial (see `tune_trial`) trains the model under settings drawn from the search
space (see `tune_space`) and reports its validation accuracy after every epoch; from the
second epoch on, a median pruner stops a trial whose accuracy is below the
median of the finished trials' at the same epoch. A trial's score is its last
epoch's validation accuracy; the test split is never read. The study lives in the run folder (Optuna's SQLite
storage), so a killed run continues with `resume=True`: finished trials are
kept, one that was running starts again.

Reproducible: trial k draws from a TPE sampler seeded by (seed, k) that sees the
trials finished before it, so the same seed, data and thread count give the same
trials, in one go or resumed after a kill. With several workers, or on a Ray
cluster (`ray_address`, see `tune_ray`), trials run side by side and each sees
whichever trials have finished: a valid search, but not the same one twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from mnistlab.atomic import atomic_path
from mnistlab.custom_data import open_dataset
from mnistlab.datasets import Dataset
from mnistlab.errors import ConfigError, MnistlabError
from mnistlab.jobs import default_devices, stop_pool
from mnistlab.models import RECIPES
from mnistlab.run_folder import TUNE_ASK_LOCK, TUNE_DATABASE, check_run_folder, claimed
from mnistlab.runtime import apply_runtime, check_workers, configured_runtime, job_threads, resolve_device
from mnistlab.study import resolve_configs
from mnistlab.tune_report import write_tune_outputs
from mnistlab.tune_space import build_space
from mnistlab.tune_trial import (STUDY_NAME, TuneTask, ask_trial, counted_trials, median_pruner, run_trial,
                                 trial_failed)

MAX_TRIALS = 10_000


def run_tune(
    model_name: str,
    settings: dict,
    out_dir: str | os.PathLike,
    trials: int,
    data_dir: str | os.PathLike | None = None,
    space_file: str | os.PathLike | None = None,
    resume: bool = False,
    workers: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    ray_address: str | None = None,
    force: bool = False,
) -> dict:
    """Run (or with `resume`, continue) a study of `trials` trials in `out_dir`; write its outputs; return a summary.

    `settings` are the user's TrainConfig choices (they are fixed, not searched); the
    seed in them drives both the sampler and every trial's training. `workers` > 1
    runs trials in that many local processes of `threads` threads each; with
    `ray_address`, trials run as tasks on that Ray cluster, at most `workers` at once
    (default: as many as its CPUs allow). On resume, `trials` may be raised to extend
    the study. `out_dir` must be new or empty, or hold a tune run: continued with
    `resume`, or with `force` started afresh after deleting that run's own files.
    """
    if not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"--trials {trials} is invalid; give an integer from 1 to {MAX_TRIALS:,}")
    if ray_address and workers is not None and not 1 <= workers <= MAX_TRIALS:
        raise ConfigError(f"--workers {workers} is invalid; give an integer from 1 to {MAX_TRIALS:,} (trials at once "
                          f"on the cluster)")
    if not ray_address:
        check_workers(workers)
    config = resolve_configs([model_name], settings)[model_name]
    space = build_space(model_name, RECIPES[model_name], settings, space_file)
    torch_device = resolve_device(device)
    processes = workers or 1
    threads = job_threads(threads, processes, bool(ray_address))
    check_run_folder(out_dir, "tune", resume, force)  # before the dataset is read (or downloaded)
    dataset = open_dataset(config.dataset, data_dir, progress=progress)
    task = TuneTask(model_name, dict(settings), space, config.seed, trials, str(torch_device), progress)
    with claimed(out_dir, "tune", resume, force) as out_dir:
        plan = {"model": model_name, "dataset": dataset.checksums, "config": config.to_dict(), "space": space.to_dict()}
        storage_url = open_study(out_dir, plan, resume)
        if ray_address:
            from mnistlab.tune_ray import run_trials_on_ray  # Ray is an optional extra

            run_trials_on_ray(task, storage_url, dataset, ray_address, threads, workers, out_dir)
        elif processes == 1:
            with configured_runtime(threads):
                run_trials(task, storage_url, dataset, out_dir)
        else:
            run_workers(task, storage_url, config.dataset, data_dir, out_dir, processes, threads,
                        default_devices(torch_device, processes))
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url)
        return write_tune_outputs(out_dir, study, task, config)


def open_study(run_dir: Path, plan: dict, resume: bool) -> str:
    """Create the study in `run_dir` (or check it holds this `plan`, with `resume`); return the storage URL.

    On resume, trials left running by a killed process are marked failed: they do not
    count towards the budget, and the next trial takes their place.
    """
    path = run_dir / TUNE_DATABASE
    url = f"sqlite:///{path.resolve()}"
    if not resume:
        if path.exists():
            raise ConfigError(f"{path}: holds a study already; continue it with --resume or choose another --out")
        with atomic_path(path) as temporary:  # a kill before the study is complete leaves no database behind
            storage = optuna.storages.RDBStorage(f"sqlite:///{temporary.resolve()}")
            study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
            study.set_user_attr("plan", plan)
            storage.engine.dispose()
        return url
    if not path.is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {TUNE_DATABASE}); run without --resume")
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=url)
    except (KeyError, ValueError, sqlalchemy.exc.SQLAlchemyError):
        raise ConfigError(f"{path}: not a study written by mnistlab tune; choose another --out") from None
    saved, plan = study.user_attrs.get("plan", {}), json.loads(json.dumps(plan))  # as read back from storage
    if saved != plan:
        changed = sorted(key for key in set(saved) | set(plan) if saved.get(key) != plan.get(key))
        raise ConfigError(f"{run_dir}: the study was started with different {', '.join(changed)}; resume with the "
                          f"original model, flags and space file, start it afresh with --force, or choose "
                          f"another --out")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
    return url


def run_trials(task: TuneTask, storage_url: str, dataset: Dataset, run_dir: Path) -> None:
    """Start trials until the study holds `task.trials` of them, finished or running; several processes may share it."""
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url, pruner=median_pruner())
    while True:
        with file_lock(Path(run_dir) / TUNE_ASK_LOCK):  # count and start as one step: no process overshoots
            slot = counted_trials(study)
            if slot >= task.trials:
                return
            trial, values = ask_trial(study, task, slot)
        run_trial(study, trial, values, task, dataset, slot)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on `path` for the block, waiting for it if another process holds it."""
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _worker_main(task: TuneTask, storage_url: str, dataset_name: str, data_dir, run_dir: str, threads: int) -> None:
    """A worker process: its runtime and quiet Optuna logging (it is an entry point), the dataset, then trials."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle; it stops the workers
    apply_runtime(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_trials(task, storage_url, open_dataset(dataset_name, data_dir, progress=False), Path(run_dir))


def run_workers(task: TuneTask, storage_url: str, dataset_name: str, data_dir, run_dir: Path, workers: int,
                threads: int, devices: list[str]) -> None:
    """`workers` processes, each running trials from the shared study until the budget is used up."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or locks inherited
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    futures = []
    try:
        futures = [pool.submit(_worker_main, dataclasses.replace(task, device=devices[index % len(devices)]),
                               storage_url, dataset_name, data_dir, str(run_dir), threads) for index in range(workers)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()
    except BrokenProcessPool:
        raise MnistlabError(f"a tune worker process died (out of memory?); finished trials are kept in "
                            f"{run_dir / TUNE_DATABASE}, continue with --resume") from None
    except MnistlabError:
        raise
    except Exception as error:  # a trial's own failure in a worker, as one line
        raise trial_failed("a trial", error) from None
    finally:
        stop_pool(pool, kill=not all(future.done() for future in futures))
