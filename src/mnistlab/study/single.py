"""One model at a time: train one into a checkpoint (`mnistlab train`), test one checkpoint (`mnistlab evaluate`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from mnistlab.common.atomic import check_output_file
from mnistlab.common.errors import CheckpointError, ConfigError, MnistlabError, first_line
from mnistlab.data.datasets import dataset_record
from mnistlab.data.registry import DATASETS
from mnistlab.data.folders import open_dataset
from mnistlab.evaluation.assessment import not_sure_threshold, validation_logits
from mnistlab.evaluation.evaluate import evaluate
from mnistlab.evaluation.robustness import model_logits_fn
from mnistlab.models import count_parameters
from mnistlab.models.contract import USER_CODE_ERRORS, check_model
from mnistlab.models.spec import ModelSpec
from mnistlab.reporting.card import card_path, write_model_card
from mnistlab.runs.claim import check_folder_writable
from mnistlab.study.plan import resolve_configs, resolve_models
from mnistlab.tracking.hooks import Trackers
from mnistlab.training.checkpoint import library_versions, load_checkpoint, save_checkpoint
from mnistlab.training.runtime import resolve_device
from mnistlab.training.train import train


def train_checkpoint(
    model: str | ModelSpec,
    settings: dict,
    out_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
    device: str = "cpu",
    overwrite: bool = False,
    trackers: Trackers | None = None,
) -> dict:
    """Train one model (a registered name or a spec, see `models.spec`), the test split untouched, and save it
    to `out_path`, its model card beside it; return its record.

    An existing file at `out_path` (or at its card's path) is replaced only with `overwrite` (checked before training).
    `trackers` (see `tracking.open_trackers`) log the checkpoint once it is written.
    """
    [spec] = resolve_models([model])
    config = resolve_configs([spec], settings)[spec.label]
    trackers = trackers if trackers is not None else Trackers([])
    out_path = Path(out_path)
    check_output_file(out_path, "--out", force=overwrite, example=f"{spec.label}.pt")
    check_output_file(card_path(out_path), "--out's model card", force=overwrite, example=f"{spec.label}.pt.md")
    check_folder_writable(out_path.parent)  # before training, so that no finished training is lost
    dataset = open_dataset(config.dataset, data_dir, progress=progress)
    check_model(spec, len(dataset.class_names))
    try:
        result = train(spec, dataset, config, progress=progress, device=resolve_device(device))
    except USER_CODE_ERRORS as error:  # a model of the user's own that passed the check and failed in training
        if spec.builtin or isinstance(error, MnistlabError):
            raise
        raise MnistlabError(f"model {spec}: training failed ({type(error).__name__}: {first_line(error)}); fix the "
                            f"model (the contract: docs/models.md)") from None
    validation, _ = validation_logits(model_logits_fn(result.model, config.precision), dataset, config)
    scores = {"params": count_parameters(result.model), "train_seconds": result.train_seconds,
              "history": result.history, "not_sure_threshold": not_sure_threshold(validation)}
    record = dataset_record(dataset, result.train_size, result.validation_size)
    save_checkpoint(out_path, result.model, spec, config.to_dict(), record, scores)
    write_model_card(out_path)  # <checkpoint>.md beside it
    with contextlib.closing(trackers):
        trackers.trained(out_path, {"model_name": spec.label, "config": config.to_dict(), "dataset": record,
                                    "metrics": scores, "versions": library_versions()})
    return scores


def evaluate_checkpoint(
    path: str | os.PathLike, data_dir: str | os.PathLike | None = None, progress: bool = True,
    dataset: str | None = None, device: str = "cpu", allow_class_mismatch: bool = False, trust_code: bool = False,
) -> dict:
    """Test a checkpoint on the test split of its dataset (or of `dataset`, a registered name or folder).

    A dataset whose classes are some of the checkpoint's (by name: a folder of 3/, 5/, 7/ for an MNIST model) is
    scored with its labels mapped to the checkpoint's classes. One with other classes is refused (its accuracy would
    pair unrelated classes) unless `allow_class_mismatch`; then labels and outputs are matched by index. Either
    way the result's "note" says so."""
    model, state = load_checkpoint(path, trust_code=trust_code)
    model.to(resolve_device(device))
    name = dataset or state["dataset"]["name"]
    if dataset is None and name not in DATASETS:
        raise CheckpointError(f"{path}: was trained on {name[:80]!r}, not a registered dataset; "
                              f"pass --dataset with the folder (or name) to test it on")
    data = open_dataset(name, data_dir, progress=progress)
    trained_on, labels, class_names, note = state["dataset"]["class_names"], data.test_labels, data.class_names, None
    if list(data.class_names) != trained_on and set(data.class_names) <= set(trained_on):
        position = {class_name: index for index, class_name in enumerate(trained_on)}
        labels = np.array([position[class_name] for class_name in data.class_names])[data.test_labels]
        class_names = tuple(trained_on)
        note = (f"{data.name} has {len(data.class_names)} of the checkpoint's {len(trained_on)} classes; its labels "
                f"are matched to them by name")
    elif list(data.class_names) != trained_on:
        mismatch = (f"{path} was trained on classes {describe_classes(trained_on)} but {data.name} has "
                    f"{describe_classes(data.class_names)}")
        if not allow_class_mismatch:
            raise ConfigError(f"{mismatch}: its accuracy there would pair unrelated classes; pass "
                              f"--allow-class-mismatch to score it anyway (labels and outputs matched by index)")
        note = f"{mismatch}; scored by class index"
    evaluation = evaluate(model, data.test_images, labels, class_names)
    result = {"model": state["model_name"], "dataset": data.name, "params": count_parameters(model),
              **evaluation.metrics}
    return result if note is None else {**result, "note": note}


def describe_classes(names) -> str:
    """A short account of a class list for one-line messages: its count and first few names."""
    shown = ", ".join(map(repr, list(names)[:4])) + (", ..." if len(names) > 4 else "")
    return f"{len(names)} ({shown})"
