"""One model at a time: train one into a checkpoint (`mnistlab train`), test one checkpoint (`mnistlab evaluate`)."""

from __future__ import annotations

import os
from pathlib import Path

from mnistlab.common.errors import CheckpointError, ConfigError
from mnistlab.data.datasets import DATASETS, dataset_record
from mnistlab.data.folders import open_dataset
from mnistlab.evaluation.assessment import not_sure_threshold, validation_logits
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.evaluation.robustness import model_logits_fn
from mnistlab.models import count_parameters
from mnistlab.runs.folder import check_folder_writable
from mnistlab.study.compare import resolve_configs
from mnistlab.training.checkpoint import load_checkpoint, save_checkpoint
from mnistlab.training.runtime import resolve_device
from mnistlab.training.train import train


def train_checkpoint(
    model_name: str,
    settings: dict,
    out_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> dict:
    """Train one model (the test split untouched) and save it to `out_path`; return its record."""
    config = resolve_configs([model_name], settings)[model_name]
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ConfigError(f"{out_path}: is a folder; --out takes the checkpoint file to write, e.g. {out_path / model_name}.pt")
    check_folder_writable(out_path.parent)  # before training, so that no finished training is lost
    dataset = open_dataset(config.dataset, data_dir, progress=progress)
    result = train(model_name, dataset, config, progress=progress, device=resolve_device(device))
    validation, _ = validation_logits(model_logits_fn(result.model, config.precision), dataset, config)
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              "history": result.history, "not_sure_threshold": not_sure_threshold(validation)}
    save_checkpoint(out_path, result.model, model_name, config.to_dict(),
                    dataset_record(dataset, result.train_size, result.validation_size), scores)
    return scores


def evaluate_checkpoint(
    path: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True,
    dataset: str | None = None, device: str = "cpu",
) -> dict:
    """Test a checkpoint on the test split of its dataset (or of `dataset`, a registered name or folder)."""
    model, state = load_checkpoint(path)
    model.to(resolve_device(device))
    name = dataset or state["dataset"]["name"]
    if dataset is None and name not in DATASETS:
        raise CheckpointError(f"{path}: was trained on {name[:80]!r}, not a registered dataset; "
                              f"pass --dataset with the folder (or name) to test it on")
    data = open_dataset(name, data_dir, progress=progress)
    evaluation = evaluate(model, data.test_images, data.test_labels, data.class_names)
    return {"model": state["model_name"], "dataset": data.name, "params": count_parameters(model),
            **evaluation.metrics}
