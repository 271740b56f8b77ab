"""The tool's jobs as library functions: compare models into a run folder, train one, evaluate one.

    from mnistlab.study import run_compare
    metrics = run_compare(["ann", "cnn"], {}, "runs/demo", seeds=[0, 1, 2])
    # seed protocol on MNIST: ANN about 97.5%, CNN about 98.9% test accuracy; the CNN's lead is significant
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mnistlab.analysis import STATISTICS_METHODS, compare_models, summarise_model
from mnistlab.checkpoint import library_versions, load_checkpoint, save_checkpoint
from mnistlab.config import TrainConfig, load_config
from mnistlab.datasets import Dataset, load_dataset
from mnistlab.errors import ConfigError
from mnistlab.evaluate import evaluate
from mnistlab.models import RECIPES, check_model_names, count_parameters
from mnistlab.report import write_metrics, write_report
from mnistlab.resume import check_plan, load_epoch_state, load_finished, save_epoch_state, save_finished, write_plan
from mnistlab.run_arrays import PREDICTIONS_FILE, build_run_arrays, write_run_arrays
from mnistlab.train import train


def default_run_dir(kind: str) -> Path:
    """`runs/<timestamp>-<kind>` under the current directory."""
    return Path("runs") / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{kind}"


def dataset_record(dataset: Dataset, train_size: int, validation_size: int) -> dict:
    """What a run records about its data: name, classes, payload checksums and split sizes."""
    return {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "checksums": dataset.checksums,
        "train_size": train_size,
        "validation_size": validation_size,
        "test_size": len(dataset.test_labels),
    }


def machine_record() -> dict:
    """The machine a run's timings come from."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
    }


def model_config(model_name: str, settings: dict) -> TrainConfig:
    """The config a model trains with: defaults, then its registered recipe, then the user's `settings`."""
    return load_config(recipe=RECIPES[model_name], **settings)


def run_compare(
    model_names: Sequence[str],
    settings: dict,
    out_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    seeds: Sequence[int] | None = None,
    resume: bool = False,
) -> dict:
    """Train and test each model once per seed; write checkpoints, metrics.json, predictions.npz and reports.

    `settings` are the user's TrainConfig choices (see `config.read_settings`);
    each model fills the rest from its recipe, then the study's defaults.
    `seeds` defaults to the one seed in `settings`. With `resume`, (model, seed)
    pairs finished in `out_dir` are not trained again and a half-trained one
    continues from its last epoch. Returns the metrics dict written to `out_dir/metrics.json`.
    """
    check_model_names(list(model_names))
    base_config = load_config(**settings)
    seeds = list(seeds) if seeds is not None else [base_config.seed]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds {seeds} are invalid; give distinct integers >= 0, e.g. --seeds 5 or --seeds 0,1,2")
    configs = {(name, seed): model_config(name, {**settings, "seed": seed}) for name in model_names for seed in seeds}
    out_dir = Path(out_dir)
    dataset = load_dataset(base_config.dataset, data_dir, progress=progress)
    plan = {"models": list(model_names), "seeds": seeds, "dataset": dataset.checksums,
            "configs": {f"{name}-seed{seed}": config.to_dict() for (name, seed), config in configs.items()}}
    if resume:
        check_plan(out_dir, plan)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_plan(out_dir, plan)
    records = {name: [] for name in model_names}
    predicted = {name: [] for name in model_names}
    confidence = {name: [] for name in model_names}
    for name in model_names:
        for seed in seeds:
            checkpoint = f"{name}.pt" if len(seeds) == 1 else f"{name}-seed{seed}.pt"
            finished = load_finished(out_dir, name, seed) if resume else None
            if finished is None:
                finished = train_one_seed(name, configs[name, seed], dataset, out_dir, checkpoint, progress, resume)
            for collected, value in zip((records, predicted, confidence), finished):
                collected[name].append(value)
    record = dataset_record(dataset, records[model_names[0]][0]["train_size"], records[model_names[0]][0]["validation_size"])
    arrays = build_run_arrays(dataset.test_labels, {name: np.stack(rows) for name, rows in predicted.items()},
                              {name: np.stack(rows) for name, rows in confidence.items()}, dataset.test_images)
    models = {}
    for name in model_names:
        models[name] = summarise_model(records[name], arrays.labels, arrays.predicted[name], dataset.class_names)
        models[name]["config"] = configs[name, seeds[0]].to_dict()
    metrics = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": load_config(**{**settings, "seed": seeds[0]}).to_dict(),
        "seeds": seeds,
        "dataset": record,
        "machine": machine_record(),
        "versions": library_versions(),
        "models": models,
        "statistics": STATISTICS_METHODS,
        "comparisons": compare_models(list(model_names), seeds, arrays.labels, arrays.predicted),
        "predictions": PREDICTIONS_FILE,
    }
    write_run_arrays(out_dir, arrays)
    write_metrics(out_dir, metrics)
    write_report(out_dir, metrics)
    return metrics


def train_one_seed(
    model_name: str, config: TrainConfig, dataset: Dataset, out_dir: Path, checkpoint: str, progress: bool, resume: bool
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Train and test one (model, seed), saving epoch state as it goes; return (record, predicted, confidence)."""
    resume_state = load_epoch_state(out_dir, model_name, config.seed) if resume else None
    result = train(model_name, dataset, config, progress=progress, resume_state=resume_state,
                   on_epoch_end=lambda state: save_epoch_state(out_dir, model_name, config.seed, state))
    evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels, dataset.class_names)
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              **evaluation.metrics, "history": result.history}
    save_checkpoint(out_dir / checkpoint, result.model, model_name, config.to_dict(),
                    dataset_record(dataset, result.train_size, result.validation_size), scores)
    record = {
        "seed": config.seed,
        **{key: scores[key] for key in ("test_accuracy", "test_loss", "train_seconds", "params", "history")},
        "train_size": result.train_size,
        "validation_size": result.validation_size,
        "checkpoint": checkpoint,
    }
    predicted = evaluation.predictions.astype(np.uint8)
    confidence = evaluation.probabilities.max(axis=1).astype(np.float32)
    save_finished(out_dir, model_name, config.seed, record, predicted, confidence)
    return record, predicted, confidence


def train_checkpoint(
    model_name: str,
    settings: dict,
    out_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Train one model (the test split untouched) and save it to `out_path`; return its record."""
    check_model_names([model_name])
    config = model_config(model_name, settings)
    dataset = load_dataset(config.dataset, data_dir, progress=progress)
    result = train(model_name, dataset, config, progress=progress)
    metrics = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
               "history": result.history}
    save_checkpoint(out_path, result.model, model_name, config.to_dict(),
                    dataset_record(dataset, result.train_size, result.validation_size), metrics)
    return metrics


def evaluate_checkpoint(
    path: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True
) -> dict:
    """Test a checkpoint on the test split of the dataset it was trained on; return the metrics."""
    model, state = load_checkpoint(path)
    dataset = load_dataset(state["dataset"]["name"], data_dir, progress=progress)
    evaluation = evaluate(model, dataset.test_images, dataset.test_labels, dataset.class_names)
    return {"model": state["model_name"], "dataset": dataset.name, "params": count_parameters(model),
            **evaluation.metrics}
