"""The tool's jobs as library functions: compare models into a run folder, train one, evaluate one.

    from mnistlab.study import run_compare
    metrics = run_compare(["ann", "cnn"], {}, "runs/demo", seeds=[0, 1, 2])
    # seed protocol on MNIST: ANN about 97.4%, CNN about 98.9% test accuracy; the CNN's lead is significant

A comparison is a set of jobs, one per (model, seed); each trains, tests and
saves its checkpoint and its finished state, so an interrupted run resumes
job by job (and epoch by epoch within a job).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mnistlab.analysis import STATISTICS_METHODS, compare_models, summarise_model
from mnistlab.checkpoint import library_versions, load_checkpoint, save_checkpoint
from mnistlab.config import TrainConfig, load_config
from mnistlab.custom_data import open_dataset
from mnistlab.datasets import DATASETS, Dataset
from mnistlab.errors import CheckpointError, ConfigError
from mnistlab.evaluate import Evaluation, evaluate
from mnistlab.models import RECIPES, check_model_names, count_parameters
from mnistlab.report import write_report
from mnistlab.run_arrays import build_run_arrays
from mnistlab.run_folder import (PREDICTIONS_FILE, check_folder_writable, check_plan, checkpoint_name,
                                 load_epoch_state, load_finished, locked, save_epoch_state, save_finished,
                                 write_metrics, write_plan, write_run_arrays)
from mnistlab.runtime import machine_record
from mnistlab.train import TrainResult, train


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


def model_config(model_name: str, settings: dict) -> TrainConfig:
    """The config a model trains with: the study's defaults, then its registered recipe, then the user's `settings`."""
    return load_config(recipe=RECIPES[model_name], **settings)


def resolve_configs(model_names: Sequence[str], settings: dict) -> dict[str, TrainConfig]:
    """Each model's config, resolved once; refuses unknown or repeated names and models on different datasets."""
    check_model_names(list(model_names))
    repeated = sorted({name for name in model_names if list(model_names).count(name) > 1})
    if repeated:
        raise ConfigError(f"model(s) {', '.join(repeated)} given more than once; list each model once")
    configs = {name: model_config(name, settings) for name in model_names}
    datasets = {config.dataset for config in configs.values()}
    if len(datasets) > 1:
        raise ConfigError(f"the models would train on different datasets ({', '.join(sorted(datasets))}); "
                          f"compare models on one dataset")
    return configs


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
    `seeds` defaults to the one seed in the config. With `resume`, (model, seed)
    pairs finished in `out_dir` are not trained again and a half-trained one
    continues from its last epoch. The folder is locked while the run writes it.
    Returns the metrics dict written to `out_dir/metrics.json`.
    """
    configs = resolve_configs(model_names, settings)
    first = configs[model_names[0]]
    seeds = list(seeds) if seeds is not None else [first.seed]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds {seeds} are invalid; give distinct integers >= 0, e.g. --seeds 5 or --seeds 0,1,2")
    jobs = [(name, dataclasses.replace(configs[name], seed=seed)) for name in model_names for seed in seeds]
    dataset = open_dataset(first.dataset, data_dir, progress=progress)
    with locked(out_dir) as out_dir:
        plan = {"models": list(model_names), "seeds": seeds, "dataset": dataset.checksums,
                "threads": torch.get_num_threads(),
                "configs": {f"{name}-seed{config.seed}": config.to_dict() for name, config in jobs}}
        if resume:
            check_plan(out_dir, plan)
        else:
            write_plan(out_dir, plan)
        finished = {}
        for name, config in jobs:
            done = load_finished(out_dir, name, config.seed) if resume else None
            finished[name, config.seed] = done or run_job(name, config, dataset, out_dir, len(seeds) > 1,
                                                          progress, resume)
        metrics = summarise_run(model_names, seeds, configs, dataset, finished)
        write_run_arrays(out_dir, build_run_arrays(
            dataset.test_labels,
            {name: np.stack([finished[name, seed][1]["predicted"] for seed in seeds]) for name in model_names},
            {name: np.stack([finished[name, seed][1]["confidence"] for seed in seeds]) for name in model_names},
            dataset.test_images))
        write_metrics(out_dir, metrics)
        write_report(out_dir, metrics)
    return metrics


def summarise_run(model_names, seeds, configs: dict[str, TrainConfig], dataset: Dataset, finished: dict) -> dict:
    """metrics.json of a run from its finished jobs: per model over seeds, pairwise comparisons, provenance."""
    labels = dataset.test_labels
    predicted = {name: np.stack([finished[name, seed][1]["predicted"] for seed in seeds]) for name in model_names}
    models = {}
    for name in model_names:
        models[name] = summarise_model([finished[name, seed][0] for seed in seeds], labels, predicted[name],
                                       dataset.class_names)
        models[name]["config"] = dataclasses.replace(configs[name], seed=seeds[0]).to_dict()
    first_record = finished[model_names[0], seeds[0]][0]
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seeds": seeds,
        "dataset": dataset_record(dataset, first_record["train_size"], first_record["validation_size"]),
        "machine": machine_record(),
        "versions": library_versions(),
        "models": models,
        "statistics": STATISTICS_METHODS,
        "comparisons": compare_models(list(model_names), seeds, labels.astype(np.uint8), predicted),
        "predictions": PREDICTIONS_FILE,
    }


def run_job(
    model_name: str, config: TrainConfig, dataset: Dataset, out_dir: Path, several_seeds: bool, progress: bool,
    resume: bool,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Train and test one (model, seed), saving epoch state as it goes; return (record, per-image test outputs)."""
    resume_state = load_epoch_state(out_dir, model_name, config.seed) if resume else None
    checkpoint = checkpoint_name(model_name, config.seed, several_seeds)
    result, evaluation, scores = train_and_save(
        model_name, config, dataset, out_dir / checkpoint, progress, test=True, resume_state=resume_state,
        on_epoch_end=lambda state: save_epoch_state(out_dir, model_name, config.seed, state))
    record = {
        "seed": config.seed,
        **{key: scores[key] for key in ("test_accuracy", "test_loss", "train_seconds", "params", "history")},
        "train_size": result.train_size,
        "validation_size": result.validation_size,
        "checkpoint": checkpoint,
    }
    outputs = {"predicted": evaluation.predictions.astype(np.uint8),
               "confidence": evaluation.probabilities.max(axis=1).astype(np.float32)}
    save_finished(out_dir, model_name, config.seed, record, outputs)
    return record, outputs


def train_and_save(
    model_name: str, config: TrainConfig, dataset: Dataset, checkpoint_path: Path, progress: bool, test: bool = False,
    resume_state: dict | None = None, on_epoch_end=None,
) -> tuple[TrainResult, Evaluation | None, dict]:
    """Train one model, test it on the test split if `test`, save its checkpoint; return (result, evaluation, scores)."""
    result = train(model_name, dataset, config, progress=progress, resume_state=resume_state, on_epoch_end=on_epoch_end)
    evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels, dataset.class_names) if test else None
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              **(evaluation.metrics if evaluation else {}), "history": result.history}
    save_checkpoint(checkpoint_path, result.model, model_name, config.to_dict(),
                    dataset_record(dataset, result.train_size, result.validation_size), scores)
    return result, evaluation, scores


def train_checkpoint(
    model_name: str,
    settings: dict,
    out_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict:
    """Train one model (the test split untouched) and save it to `out_path`; return its record."""
    config = resolve_configs([model_name], settings)[model_name]
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ConfigError(f"{out_path}: is a folder; --out takes the checkpoint file to write, e.g. {out_path / model_name}.pt")
    check_folder_writable(out_path.parent)  # before training, so that no finished training is lost
    dataset = open_dataset(config.dataset, data_dir, progress=progress)
    return train_and_save(model_name, config, dataset, out_path, progress)[2]


def evaluate_checkpoint(
    path: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True,
    dataset: str | None = None,
) -> dict:
    """Test a checkpoint on the test split of its dataset (or of `dataset`, a registered name or folder)."""
    model, state = load_checkpoint(path)
    name = dataset or state["dataset"]["name"]
    if dataset is None and name not in DATASETS:
        raise CheckpointError(f"{path}: was trained on {name[:80]!r}, not a registered dataset; "
                              f"pass --dataset with the folder (or name) to test it on")
    data = open_dataset(name, data_dir, progress=progress)
    evaluation = evaluate(model, data.test_images, data.test_labels, data.class_names)
    return {"model": state["model_name"], "dataset": data.name, "params": count_parameters(model),
            **evaluation.metrics}
