"""One trained (model, seed) assessed beyond clean accuracy: calibration, corruptions, shift and rotation, non-digits.

A `compare` job calls `assess_job` right after testing its model, so the work
runs where the job runs (in order, in local workers or on Ray) and comes back
in the job's record and outputs; `study.add_robustness` runs `robustness_record`
on the checkpoints of a finished run (`mnistlab report RUN_DIR --robustness`).

Everything fitted uses the validation split the model was trained with
(rebuilt from its config, as `data.splits.split_indices` draws it): the temperature
and the "not sure" threshold. The test split is only scored. The calibration
scores are computed from the float16 log-probabilities the run folder keeps
(`run_arrays.stored_log_probabilities`), so they recompute exactly from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from torch import nn

from mnistlab.evaluation import calibration
from mnistlab.evaluation import ood
from mnistlab.evaluation import robustness
from mnistlab.training.config import TrainConfig
from mnistlab.data.datasets import Dataset, find_local_copy, load_test_images
from mnistlab.runs.arrays import stored_log_probabilities, stored_probabilities
from mnistlab.data.splits import split_indices

NON_DIGIT_SETS = ("fashion-mnist", "kmnist")  # test sets scored as "not a digit" when a local copy is found
CORRUPTION_SEED = 0  # one seed for every model and training seed: all see the same corrupted images


@dataclass
class JobAssessment:
    """What `assess_job` adds to a job's record (JSON-ready), outputs (arrays) and checkpoint metrics."""

    record: dict  # "calibration"; "not_a_digit" when non-digit sets were given; "robustness" when asked for
    outputs: dict[str, np.ndarray]  # "log_probabilities" (N, C) float16; "corruption_correct" (K, N) bool
    not_sure_threshold: float  # maximum softmax probability below which a prediction is flagged "not sure"


def validation_logits(logits_fn: robustness.LogitsFunction, dataset: Dataset,
                      config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(logits (V, C) float64, labels (V,) int64) on the validation split the model was trained with."""
    _, validation_part = split_indices(dataset.train_labels, config.validation_fraction, config.seed,
                                      config.limit_train, config.train_size)
    logits = np.asarray(logits_fn(dataset.train_images[validation_part]), dtype=np.float64)
    return logits, dataset.train_labels[validation_part].astype(np.int64)


def not_sure_threshold(logits: np.ndarray) -> float:
    """The "not sure" threshold from validation `logits`: the top probability `ood.KEEP_DIGITS` of them reach."""
    return ood.choose_threshold(ood.max_softmax(ood.softmax(logits)))


def calibration_record(test_log_probabilities: np.ndarray, test_labels: np.ndarray, temperature: float) -> dict:
    """Scores before and after temperature scaling, from stored float16 log-probabilities (JSON-ready).

    Dividing log-probabilities by T gives the same softmax as dividing the logits
    (softmax ignores a constant per row), so "after" also rebuilds from the run folder.
    """
    log_probabilities = np.asarray(test_log_probabilities, dtype=np.float64)
    return {
        "temperature": temperature,
        "before": calibration.calibration_scores(stored_probabilities(test_log_probabilities), test_labels),
        "after": calibration.calibration_scores(calibration.apply_temperature(log_probabilities, temperature),
                                                test_labels),
    }


def variants_for(images: np.ndarray) -> robustness.ImageVariants:
    """The corrupted and rotated copies of `images` that every model and seed is scored on, made as first used."""
    return robustness.ImageVariants(images, CORRUPTION_SEED)


def robustness_record(logits_fn: robustness.LogitsFunction, images: np.ndarray, labels: np.ndarray,
                      variants: robustness.ImageVariants | None = None) -> tuple[dict, np.ndarray]:
    """(JSON-ready accuracies on each corruption and along both sweeps, per-image correctness (K, N) bool).

    `variants` (`variants_for(images)`) shares the corrupted and rotated images between models.
    """
    variants = variants_for(images) if variants is None else variants
    correct = robustness.corruption_correctness(logits_fn, images, labels, seed=CORRUPTION_SEED, variants=variants)
    record = {
        "corruptions": list(correct),
        "corruption_accuracy": {name: float(rows.mean()) for name, rows in correct.items()},
        "shift_accuracy": robustness.shift_sweep(logits_fn, images, labels).tolist(),
        "rotation_accuracy": robustness.rotation_sweep(logits_fn, images, labels, variants=variants).tolist(),
    }
    return record, np.stack(list(correct.values()))


def not_a_digit_record(logits_fn: robustness.LogitsFunction, digit_probabilities: np.ndarray, threshold: float,
                       non_digits: dict[str, np.ndarray]) -> dict:
    """Per non-digit set: AUROC of the maximum softmax probability, digits kept and non-digits flagged."""
    digit_confidence = ood.max_softmax(digit_probabilities)
    return {name: ood.not_a_digit_scores(digit_confidence, ood.max_softmax(ood.softmax(logits_fn(images))),
                                         threshold)
            for name, images in non_digits.items()}


def non_digit_sets(dataset_name: str, data_dir: str | os.PathLike | None) -> dict[str, np.ndarray]:
    """Test images of each `NON_DIGIT_SETS` entry with a local copy, for MNIST runs only (never downloads)."""
    if dataset_name != "mnist":
        return {}
    return {name: load_test_images(name, data_dir, download=False, progress=False)
            for name in NON_DIGIT_SETS if find_local_copy(name, data_dir) is not None}


def assess_job(model: nn.Module, dataset: Dataset, config: TrainConfig, test_logits: np.ndarray,
               with_robustness: bool = False, non_digits: dict[str, np.ndarray] | None = None,
               variants: robustness.ImageVariants | None = None) -> JobAssessment:
    """Assess a freshly trained model whose test logits are `test_logits` (N, C); `variants` as `robustness_record`."""
    logits_fn = robustness.model_logits_fn(model, config.precision)
    labels = dataset.test_labels.astype(np.int64)
    validation, validation_labels = validation_logits(logits_fn, dataset, config)
    log_probabilities = stored_log_probabilities(test_logits)
    threshold = not_sure_threshold(validation)
    record = {"calibration": calibration_record(
        log_probabilities, labels, calibration.fit_temperature(validation, validation_labels))}
    outputs = {"log_probabilities": log_probabilities}
    if non_digits:
        record["not_a_digit"] = not_a_digit_record(logits_fn, stored_probabilities(log_probabilities), threshold,
                                                   non_digits)
    if with_robustness:
        record["robustness"], outputs["corruption_correct"] = robustness_record(logits_fn, dataset.test_images,
                                                                                labels, variants)
    return JobAssessment(record, outputs, threshold)
