"""`mnistlab tune MODEL`: an Optuna search of a model's training settings, scored on the validation split only.

    from mnistlab.tune.search import run_tune
    summary = run_tune("cnn", {"epochs": 3}, "runs/tune-cnn", trials=12)
    # then: mnistlab compare --models ann,cnn --config cnn=runs/tune-cnn/best.toml

Each trial (see `tune.trial`) trains the model under settings drawn from the search
space (see `tune.space`) and reports its validation accuracy after every epoch; from the
second epoch on, a median pruner stops a trial whose accuracy is below the
median of the finished trials' at the same epoch. A trial's score is its last
epoch's validation accuracy; the test split is never read. The study lives in the run folder (Optuna's SQLite
storage), so a killed run continues with `resume=True`: finished trials are
kept, one that was running starts again.

Reproducible: trial k draws from a TPE sampler seeded by (seed, k) that sees the
trials finished before it, so the same seed, data and thread count give the same
trials, in one go or resumed after a kill. With several workers, or on a Ray
cluster (`ray_address`), trials run side by side (see `study.executor`) and each sees
whichever trials have finished: a valid search, but not the same one twice.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Iterator

import optuna
import sqlalchemy.exc
from optuna.trial import TrialState

from mnistlab.common.atomic import atomic_path
from mnistlab.data.folders import open_dataset
from mnistlab.data.datasets import Dataset
from mnistlab.common.errors import ConfigError, MnistlabError
from mnistlab.study.executor import ContextLoader, Placement, TaskFailed, open_executor
from mnistlab.study.jobs import default_devices
from mnistlab.models.contract import check_model
from mnistlab.models.spec import ModelSpec
from mnistlab.runs.folder import TUNE_DATABASE
from mnistlab.runs.claim import check_run_folder, claimed
from mnistlab.training.runtime import check_workers, job_threads, resolve_device
from mnistlab.study.plan import resolve_configs, resolve_models
from mnistlab.tracking.hooks import Trackers
from mnistlab.tune.report import trial_outcome, write_tune_outputs
from mnistlab.tune.space import build_space
from mnistlab.tune.trial import (STUDY_NAME, TuneTask, ask_trial, counted_trials, load_trial_context, median_pruner,
                                 run_trial_task, tell_trial, trial_failed)
from mnistlab.tune.ray_trials import facing_address, study_server, without_test_split

MAX_TRIALS = 10_000


def run_tune(
    model: str | ModelSpec,
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
    trackers: Trackers | None = None,
) -> dict:
    """Run (or with `resume`, continue) a study of `trials` trials in `out_dir`; write its outputs; return a summary.

    `settings` are the user's TrainConfig choices (they are fixed, not searched); the
    seed in them drives both the sampler and every trial's training. `workers` > 1
    runs trials in that many local processes of `threads` threads each; with
    `ray_address`, trials run as tasks on that Ray cluster, at most `workers` at once
    (default: as many as its CPUs allow). On resume, `trials` may be raised to extend
    the study. `out_dir` must be new or empty, or hold a tune run: continued with
    `resume`, or with `force` started afresh after deleting that run's own files. `trackers`
    (see `tracking.open_trackers`) log the study and each trial once the outputs are written.
    """
    if not 1 <= trials <= MAX_TRIALS:
        raise ConfigError(f"--trials {trials} is invalid; give an integer from 1 to {MAX_TRIALS:,}")
    if ray_address and workers is not None and not 1 <= workers <= MAX_TRIALS:
        raise ConfigError(f"--workers {workers} is invalid; give an integer from 1 to {MAX_TRIALS:,} (trials at once "
                          f"on the cluster)")
    if not ray_address:
        check_workers(workers)
    [spec] = resolve_models([model])
    config = resolve_configs([spec], settings)[spec.label]
    space = build_space(spec.label, spec.recipe, settings, space_file)
    if ray_address and importlib.util.find_spec("grpc") is None:  # the study's proxy needs it: say so first
        raise ConfigError("tune --ray needs grpcio; install it with: pip install 'mnistlab[ray]'")
    torch_device = resolve_device(device)
    processes = 1 if ray_address else workers or 1
    placement = Placement(workers=processes, threads=job_threads(threads, processes, bool(ray_address)),
                          device=str(torch_device), devices=tuple(default_devices(torch_device, processes)),
                          ray_address=ray_address, ray_at_once=workers)
    check_run_folder(out_dir, "tune", resume, force)  # before the dataset is read (or downloaded)
    dataset = open_dataset(config.dataset, data_dir, progress=progress)
    check_model(spec, len(dataset.class_names))
    task = TuneTask(spec, dict(settings), space, config.seed, trials, str(torch_device), progress)
    with claimed(out_dir, "tune", resume, force) as out_dir:
        plan = {"model": spec.label, "dataset": dataset.checksums, "config": config.to_dict(), "space": space.to_dict()}
        if not spec.builtin or spec.label != spec.target:  # only then: plans of built-in studies stay as they were
            plan["model_spec"] = spec.to_record(with_source=False)
        storage_url = open_study(out_dir, plan, resume)
        run_trials(task, storage_url, dataset, placement, ContextLoader(load_trial_context, (config.dataset, data_dir)),
                   out_dir)
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url)
        summary = write_tune_outputs(out_dir, study, task, config)
        with contextlib.closing(trackers if trackers is not None else Trackers([])) as tracking:
            tracking.tune_finished(out_dir, study_record(study, plan, summary))
        return summary


def study_record(study: optuna.Study, plan: dict, summary: dict) -> dict:
    """The study as plain data for the trackers: its plan, best value, and every trial's outcome and values."""
    return {**plan, "best_value": summary["best_val_accuracy"], "trials": [
        {"number": trial.number, "state": trial_outcome(trial), "value": trial.value, "params": trial.params,
         "intermediate": dict(trial.intermediate_values)} for trial in study.get_trials(deepcopy=False)]}


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


def run_trials(task: TuneTask, storage_url: str, dataset: Dataset, placement: Placement, loader: ContextLoader,
               run_dir: Path) -> None:
    """Start trials until the study holds `task.trials`, as many at once as `placement` allows; tell each outcome.

    This process alone counts, draws (the sampler seeded by (seed, slot)) and records trials,
    so the budget is never overshot; the trials train wherever `placement` says and report
    each epoch to the study (through its gRPC proxy on Ray) so that the pruner can stop them.
    """
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage_url, pruner=median_pruner())
    context = {"dataset": without_test_split(dataset) if placement.ray_address else dataset,
               "device": task.device}
    hint = f"finished trials are kept in {run_dir / TUNE_DATABASE}, continue with --resume"
    running: dict[int, optuna.Trial] = {}  # trial number -> trial, while it trains (after an error or Ctrl-C
    # such trials stay "running" in the study, and --resume marks them failed and starts others in their place)
    with open_executor(placement, context, loader, hint) as executor, \
            trial_storage(executor, storage_url, placement.ray_address) as storage:
        while True:
            while len(executor.running()) < executor.capacity and (slot := counted_trials(study)) < task.trials:
                trial, values = ask_trial(study, task, slot)
                running[trial.number] = trial
                # Trial ids have no public accessor; the task needs it to report to this trial.
                executor.submit((trial.number, slot), run_trial_task, task, trial._trial_id, values, storage)
            if not running:
                return
            try:
                (number, slot), (outcome, accuracy) = executor.next_finished()
            except TaskFailed as failure:
                number, _ = failure.key
                study.tell(running.pop(number), state=TrialState.FAIL)
                if isinstance(failure.cause, MnistlabError):
                    raise MnistlabError(f"trial {number}: {failure.cause}") from None
                raise trial_failed(f"trial {number}", failure.cause) from None
            tell_trial(study, running.pop(number), task, slot, outcome, accuracy)


@contextlib.contextmanager
def trial_storage(executor, storage_url: str, ray_address: str | None) -> Iterator[str | tuple[str, int]]:
    """Where a trial's task reaches the study: the SQLite URL on this machine, or, on Ray, the (host, port) of
    the study's gRPC proxy, served from this process for the block."""
    if not ray_address:
        yield storage_url
        return
    with study_server(storage_url, facing_address(executor.ray, ray_address)) as server:
        yield server
