"""The tool's jobs as library functions: compare models into a run folder, train one, evaluate one.

    from mnistlab.study import run_compare
    metrics = run_compare(["ann", "cnn"], {"seed": 0}, "runs/demo")
    # seed protocol on MNIST: ANN about 97.5%, CNN about 98.9% test accuracy
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Sequence

import torch

from mnistlab.checkpoint import library_versions, load_checkpoint, save_checkpoint
from mnistlab.config import TrainConfig, load_config
from mnistlab.datasets import Dataset, load_dataset
from mnistlab.evaluate import evaluate
from mnistlab.models import RECIPES, check_model_names, count_parameters
from mnistlab.report import write_metrics, write_report
from mnistlab.train import TrainResult, train


def default_run_dir(kind: str) -> Path:
    """`runs/<timestamp>-<kind>` under the current directory."""
    return Path("runs") / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{kind}"


def dataset_record(dataset: Dataset, result: TrainResult) -> dict:
    """What a run records about its data: name, classes, payload checksums and split sizes."""
    return {
        "name": dataset.name,
        "class_names": list(dataset.class_names),
        "checksums": dataset.checksums,
        "train_size": result.train_size,
        "validation_size": result.validation_size,
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
) -> dict:
    """Train and test each model; write checkpoints, metrics.json, figures and report.md to `out_dir`.

    `settings` are the user's TrainConfig choices (see `config.read_settings`);
    each model fills the rest from its recipe, then the study's defaults.
    Returns the metrics dict that was written to `out_dir/metrics.json`.
    """
    check_model_names(list(model_names))
    base_config = load_config(**settings)
    configs = {name: model_config(name, settings) for name in model_names}
    out_dir = Path(out_dir)
    dataset = load_dataset(base_config.dataset, data_dir, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    models, record = {}, None
    for name in model_names:
        config = configs[name]
        result = train(name, dataset, config, progress=progress)
        evaluation = evaluate(result.model, dataset.test_images, dataset.test_labels, dataset.class_names)
        record = dataset_record(dataset, result)
        models[name] = {
            "params": count_parameters(result.model),
            "train_seconds": result.train_seconds,
            **evaluation.metrics,
            "history": result.history,
            "config": config.to_dict(),
            "checkpoint": f"{name}.pt",
        }
        save_checkpoint(out_dir / f"{name}.pt", result.model, name, config.to_dict(), record,
                        {key: value for key, value in models[name].items() if key not in ("checkpoint", "config")})
    metrics = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": base_config.to_dict(),
        "dataset": record,
        "machine": machine_record(),
        "versions": library_versions(),
        "models": models,
    }
    write_metrics(out_dir, metrics)
    write_report(out_dir, metrics)
    return metrics


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
    save_checkpoint(out_path, result.model, model_name, config.to_dict(), dataset_record(dataset, result), metrics)
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
