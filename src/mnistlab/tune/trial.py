"""One trial of a `mnistlab tune` study: draw its settings, train them with per-epoch pruning, record how it ended.

The study's driver (`tune.search.run_trials`) alone starts and records trials; each
trains wherever the run's executor puts it (this process, a local worker, a Ray task):

    trial, values = ask_trial(study, task, slot)          # the driver: the sampler seeded by (seed, slot)
    outcome, accuracy = run_trial_task(context, task, trial_id, values, storage)   # the task
    tell_trial(study, trial, task, slot, outcome, accuracy)                         # the driver

From the second epoch on, a median pruner stops a trial whose validation accuracy is
below the median of the finished trials' at the same epoch.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from mnistlab.models.spec import ModelSpec
from mnistlab.data.datasets import Dataset
from mnistlab.data.folders import open_dataset
from mnistlab.common.errors import MnistlabError, TrainingDiverged, first_line
from mnistlab.training.config import model_config
from mnistlab.training.train import train
from mnistlab.tune.space import SearchSpace

STUDY_NAME = "mnistlab-tune"
STARTUP_TRIALS = 5  # trials drawn at random before TPE models the results
PRUNER_STARTUP_TRIALS = 3  # trials that must finish before the pruner stops any
# The first epoch's accuracy says mostly how many steps a batch size allows (a batch of 64 takes four times as
# many as one of 256), so a pruner judging it would favour small batches; it judges from the second epoch on.
PRUNE_FROM_EPOCH = 2
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # trials that use up the budget


@dataclass(frozen=True)
class TuneTask:
    """What every trial of a study shares: the model, the user's settings, the space, the seed and the budget."""

    model: ModelSpec  # a user's file travels in it as source text, to workers and Ray tasks alike
    settings: dict
    space: SearchSpace
    seed: int
    trials: int
    device: str = "cpu"
    progress: bool = False


    @property
    def model_name(self) -> str:
        return self.model.label


def median_pruner() -> optuna.pruners.MedianPruner:
    """The pruner every study loads: it judges trials from epoch PRUNE_FROM_EPOCH on, once a few have finished."""
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNE_FROM_EPOCH)


def counted_trials(study: optuna.Study) -> int:
    """Trials that use up the budget: finished or running (interrupted ones are not counted)."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


def ask_trial(study: optuna.Study, task: TuneTask, slot: int) -> tuple[optuna.Trial, dict]:
    """Start the study's `slot`-th trial (from 0); draw its settings with a sampler seeded by (seed, slot)."""
    study.sampler = optuna.samplers.TPESampler(seed=trial_seed(task.seed, slot), n_startup_trials=STARTUP_TRIALS)
    trial = study.ask()
    return trial, task.space.suggest(trial)


def trial_seed(seed: int, slot: int) -> int:
    """The sampler seed of the study's `slot`-th trial (counting from 0): independent streams per trial."""
    return int(np.random.SeedSequence([seed, slot]).generate_state(1)[0])


def train_trial(trial: optuna.Trial, task: TuneTask, dataset: Dataset, values: dict) -> tuple[str, float | None]:
    """Train with the drawn `values`, reporting validation accuracy each epoch to the study.

    Returns ("complete", last epoch's accuracy), ("pruned", None) or ("diverged", None).
    """
    config = model_config(task.model, {**task.space.fixed, **task.settings, **values})

    def report(state: dict) -> None:
        record = state["history"][-1]
        trial.report(record["val_accuracy"], record["epoch"])
        if trial.should_prune():
            raise optuna.TrialPruned()  # out of train(): the remaining epochs never run

    try:
        result = train(task.model, dataset, config, progress=False, on_epoch_end=report, device=task.device)
    except optuna.TrialPruned:
        return "pruned", None
    except TrainingDiverged:  # a real outcome of these settings (too high a rate): scored as stopped early
        return "diverged", None
    return "complete", result.history[-1]["val_accuracy"]


def tell_trial(study: optuna.Study, trial: optuna.Trial, task: TuneTask, slot: int, outcome: str,
               accuracy: float | None) -> None:
    """Record how the trial ended (a diverged one counts as pruned, and is marked); print its progress line."""
    if outcome == "complete":
        study.tell(trial, accuracy)
    else:
        if outcome == "diverged":
            trial.set_user_attr("diverged", True)
        study.tell(trial, state=TrialState.PRUNED)
    if task.progress:
        tqdm.write(describe_trial(task, slot, outcome, study.trials[trial.number]))


def load_trial_context(dataset_name: str, data_dir) -> dict:
    """What every trial reads, built once in each local worker process: the dataset, verified."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a worker process: its logging is its own
    return {"dataset": open_dataset(dataset_name, data_dir, progress=False)}


def run_trial_task(context: dict, task: TuneTask, trial_id: int, values: dict,
                   storage: str | tuple[str, int]) -> tuple[str, float | None]:
    """An executor's task: train one trial's drawn `values` and report each epoch to the study at `storage`
    (a database URL, or the (host, port) of its gRPC proxy); return (outcome, accuracy) for the driver to tell."""
    if isinstance(storage, str):
        study_storage = optuna.storages.RDBStorage(storage)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the proxy is new in Optuna 4.2
            study_storage = optuna.storages.GrpcStorageProxy(host=storage[0], port=storage[1])
    try:
        # The driver drew the settings already; this study object only reports and consults the pruner.
        study = optuna.load_study(study_name=STUDY_NAME, storage=study_storage, pruner=median_pruner(),
                                  sampler=optuna.samplers.RandomSampler())
        return train_trial(optuna.Trial(study, trial_id), dataclasses.replace(task, device=context["device"]),
                           context["dataset"], values)
    finally:
        if isinstance(storage, str):
            study_storage.engine.dispose()  # this task's own connections to the database
        else:
            study_storage.close()


def trial_failed(label: str, error: BaseException) -> MnistlabError:
    """A trial's own error (a bug, not the settings) as one line naming the trial, e.g. "trial 3 failed (...)"."""
    return MnistlabError(f"{label} failed ({type(error).__name__}: {first_line(error)}); finished trials are kept, "
                         f"continue with --resume")


def describe_trial(task: TuneTask, slot: int, outcome: str, trial: optuna.trial.FrozenTrial) -> str:
    """One progress line, e.g. "cnn trial 3 (4 of 12): pruned after epoch 1, val_acc 0.9712 (learning_rate=0.003, ...)"."""
    reported = trial.intermediate_values
    score = f", val_acc {reported[max(reported)]:.4f}" if reported else ""
    params = ", ".join(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
                       for name, value in trial.params.items())
    return (f"{task.model_name} trial {trial.number} ({slot + 1} of {task.trials}): {outcome} after epoch "
            f"{len(reported)}{score} ({params})")
