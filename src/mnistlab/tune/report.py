"""What a finished (or stopped) tuning study leaves in its run folder: best.toml, trials.csv, two figures, tune.md.

Everything here is read from the Optuna study, so rerunning it (as `--resume`
does) rewrites the same files from the same trials. No number here comes from
the test split: the study never read it.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from mnistlab.common.atomic import write_text_atomic
from mnistlab.reporting.plots import save_figure
from mnistlab.training.config import TrainConfig
from mnistlab.runs.folder import (TUNE_BEST, TUNE_DATABASE, TUNE_HISTORY_PLOT, TUNE_IMPORTANCE_PLOT, TUNE_SUMMARY,
                                 TUNE_TRIALS)
from mnistlab.training.runtime import machine_record

NOT_CARRIED = ("seed", "limit_train")  # part of how the study ran, not of the settings it found


def write_tune_outputs(run_dir: Path, study: optuna.Study, task, config: TrainConfig) -> dict:
    """Write the study's outputs into `run_dir`; return a summary (best trial, its settings, counts, importances)."""
    trials = study.get_trials(deepcopy=False)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    best = max(complete, key=lambda trial: (trial.value, -trial.number)) if complete else None
    importances, importance_note = param_importances(study, task.seed)
    best_settings = None
    if best is not None:
        best_settings = {"dataset": config.dataset, "epochs": config.epochs, **task.space.fixed,
                         **{key: value for key, value in task.settings.items() if key not in NOT_CARRIED},
                         **best.params}
        finished = sum(trial_outcome(trial) in ("complete", "pruned", "diverged") for trial in trials)
        write_text_atomic(run_dir / TUNE_BEST, best_toml(task.model_name, best, best_settings, finished, config))
    write_text_atomic(run_dir / TUNE_TRIALS, trials_csv(trials, list(task.space.parameters)))
    plot_optimization_history(trials, f"{task.model_name}: validation accuracy per trial", run_dir / TUNE_HISTORY_PLOT)
    if importances:
        plot_param_importances(importances, f"{task.model_name}: {importance_note}", run_dir / TUNE_IMPORTANCE_PLOT)
    summary = {
        "model": task.model_name,
        "trials": {state: sum(trial_outcome(trial) == state for trial in trials)
                   for state in ("complete", "pruned", "diverged", "interrupted")},
        "best_trial": best.number if best else None,
        "best_val_accuracy": best.value if best else None,
        "best_settings": best_settings,
        "importances": importances,
        "importance_method": importance_note,
    }
    write_text_atomic(run_dir / TUNE_SUMMARY, summary_markdown(summary, task, config))
    return summary


def trial_outcome(trial: FrozenTrial) -> str:
    """complete, pruned, diverged (stopped by a non-finite loss), interrupted (its process was killed) or running."""
    if trial.user_attrs.get("diverged"):
        return "diverged"
    return {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
            TrialState.FAIL: "interrupted"}.get(trial.state, "running")


def param_importances(study: optuna.Study, seed: int) -> tuple[dict[str, float], str]:
    """fANOVA importance of each searched field for validation accuracy (seeded), and how it was computed.

    Empty where there is too little to say: fewer than two complete trials, or no field that varied.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    method = f"fANOVA importance over {len(complete)} complete trials (seed {seed})"
    try:
        importances = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed))
    except (ValueError, RuntimeError) as error:  # Optuna's way of saying the trials cannot support it
        return {}, f"no importances: {error}"
    if len(complete) < 2 or not importances:
        return {}, f"no importances: {len(complete)} complete trial(s) are too few"
    return {name: float(value) for name, value in importances.items()}, method


def best_toml(model_name: str, best: FrozenTrial, settings: dict, finished: int, config: TrainConfig) -> str:
    """A `[train]` table for `compare --config MODEL=best.toml`, with comments saying where it came from."""
    subset = f"{config.limit_train:,} training images" if config.limit_train else "the full training split"
    lines = [f"# mnistlab tune {model_name}: trial {best.number}, the best of {finished} finished, reached validation "
             f"accuracy {100 * best.value:.2f}% after {config.epochs} epoch(s)",
             f"# (seed {config.seed}, {subset}, {config.validation_fraction:g} held out for validation).",
             f"# Use it: mnistlab compare --config {model_name}=best.toml", "", "[train]"]
    first = [key for key in ("dataset", "epochs") if key in settings]
    for key in first + sorted(set(settings) - set(first)):
        lines.append(f"{key} = {toml_value(settings[key])}")
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    """A TOML literal for a setting: strings as basic strings, numbers as Python writes them (round-trips floats)."""
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    return repr(value)


def trials_csv(trials: list[FrozenTrial], parameter_names: list[str]) -> str:
    """Every trial: number, outcome, validation accuracy, epochs run, seconds, and the settings it drew."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "state", "val_accuracy", "epochs_run", "seconds", *parameter_names])
    for trial in trials:
        reported = trial.intermediate_values
        value = trial.value if trial.value is not None else (reported[max(reported)] if reported else None)
        seconds = trial.duration.total_seconds() if trial.duration is not None else None
        writer.writerow([trial.number, trial_outcome(trial), "" if value is None else f"{value:.6f}", len(reported),
                         "" if seconds is None else f"{seconds:.1f}",
                         *[trial.params.get(name, "") for name in parameter_names]])
    return buffer.getvalue()


def plot_optimization_history(trials: list[FrozenTrial], title: str, path: Path) -> None:
    """Each trial's validation accuracy (pruned ones at their last reported epoch), and the best so far."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    best, best_line = None, []
    for outcome, marker in (("complete", "o"), ("pruned", "x")):
        points = [(trial.number, 100 * trial.intermediate_values[max(trial.intermediate_values)])
                  for trial in trials if trial_outcome(trial) == outcome and trial.intermediate_values]
        if points:
            axes.scatter(*zip(*points), marker=marker, label=outcome)
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            best = trial.value if best is None else max(best, trial.value)
        if best is not None:
            best_line.append((trial.number, 100 * best))
    if best_line:
        axes.step(*zip(*best_line), where="post", color="black", alpha=0.6, label="best complete so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title(title)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def plot_param_importances(importances: dict[str, float], title: str, path: Path) -> None:
    """A horizontal bar per searched field: its share of the explained variance in validation accuracy."""
    names = list(importances)[::-1]  # most important on top
    figure = Figure(figsize=(6, 1.2 + 0.5 * len(names)))
    axes = figure.add_subplot()
    axes.barh(names, [importances[name] for name in names])
    axes.set_xlabel("importance (share of variance explained)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3, axis="x")
    save_figure(figure, path)


def summary_markdown(summary: dict, task, config: TrainConfig) -> str:
    """tune.md: how the study ran, its best trial and the settings it found, the importances, the files."""
    machine = machine_record()
    counts = ", ".join(f"{count} {state}" for state, count in summary["trials"].items() if count)
    lines = [
        f"# Tuning {task.model_name}",
        "",
        f"Written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by mnistlab tune, Optuna "
        f"{optuna.__version__}: TPE sampler (seed {task.seed}), a median pruner on the validation accuracy from "
        f"epoch 2 on. Budget: {task.trials} trials of up to {config.epochs} epoch(s) on {config.dataset} "
        f"({config.limit_train or 'all'} training images, {config.validation_fraction:g} held out for validation). "
        f"The test split was not read.",
        "",
        f"Trials: {counts}. Machine: {machine['cpu_model']} ({machine['cpu_capability']}).",
        "",
    ]
    if summary["best_trial"] is None:
        lines += ["No trial completed, so there is no best.toml: narrow the space (see trials.csv).", ""]
    else:
        lines += [f"## Best: trial {summary['best_trial']}, validation accuracy "
                  f"{100 * summary['best_val_accuracy']:.2f}%", "",
                  "| setting | searched over | best |", "|---|---|---|"]
        for name, parameter in task.space.parameters.items():
            value = summary["best_settings"][name]
            lines.append(f"| {name} | {parameter.describe()} | {value:.4g} |" if isinstance(value, float)
                         else f"| {name} | {parameter.describe()} | {value} |")
        fixed = {**task.space.fixed, **task.settings}
        lines += ["", "Fixed: " + (", ".join(f"{key} = {value}" for key, value in fixed.items()) or "nothing") + ".", "",
                  f"Use it: `mnistlab compare --models {task.model_name} --config {task.model_name}={TUNE_BEST}`", ""]
    lines += ["## Parameter importance", "", summary["importance_method"] + ".", ""]
    lines += [f"- {name}: {value:.2f}" for name, value in summary["importances"].items()]
    lines += ["", f"Files: {TUNE_BEST}, {TUNE_TRIALS}, {TUNE_HISTORY_PLOT}"
              f"{', ' + TUNE_IMPORTANCE_PLOT if summary['importances'] else ''}; the study itself: {TUNE_DATABASE} "
              f"(Optuna, SQLite), which `mnistlab tune --resume` continues.", ""]
    return "\n".join(lines)
