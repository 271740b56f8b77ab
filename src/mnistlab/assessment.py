"""One trained model, assessed beyond clean accuracy: calibration, corruptions, shift and rotation, non-digits.

Ties `calibration`, `robustness` and `ood` together for one (model, seed), using
the validation split the model was trained with (rebuilt from its config, as
`train.split_indices` draws it) for everything that is fitted: the temperature
and the "not sure" threshold. The test split is only scored.

    model, state = load_checkpoint("runs/demo/cnn.pt")
    result = assess_model(model_logits_fn(model), dataset, TrainConfig(**state["config"]),
                          {"fashion-mnist": fashion.test_images})
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from mnistlab import calibration, ood, robustness
from mnistlab.config import TrainConfig
from mnistlab.datasets import Dataset
from mnistlab.train import split_indices


@dataclass
class Assessment:
    """Scores (JSON-ready in `scores`) and the arrays behind them, for tables over seeds and figures."""

    scores: dict  # calibration before/after temperature, corruption accuracies, sweeps, not-a-digit scores
    correct: dict[str, np.ndarray]  # per corruption (and "clean"): (N,) per-image correctness, for McNemar
    test_probabilities: np.ndarray  # (N, classes) unscaled softmax on the clean test set, for seed ensembles
    shift_accuracy: np.ndarray  # (len(robustness.SHIFT_PIXELS),)
    rotation_accuracy: np.ndarray  # (len(robustness.ROTATION_DEGREES),)
    reliability: dict[str, dict]  # "before" / "after" temperature scaling: calibration.reliability_bins tables


def assess_model(
    logits_fn: robustness.LogitsFunction,
    dataset: Dataset,
    config: TrainConfig,
    non_digits: dict[str, np.ndarray] | None = None,
    corruption_seed: int = 0,
) -> Assessment:
    """Score one trained model on `dataset`'s test split, its corrupted copies and the `non_digits` image sets.

    `config` is the model's training config (it fixes the validation split);
    `non_digits` maps a name (e.g. "fashion-mnist") to uint8 images (N, 28, 28).
    """
    _, validation_part = split_indices(dataset.train_labels, config)
    validation_logits = np.asarray(logits_fn(dataset.train_images[validation_part]), dtype=np.float64)
    validation_labels = dataset.train_labels[validation_part].astype(np.int64)
    test_labels = dataset.test_labels.astype(np.int64)
    test_logits = np.asarray(logits_fn(dataset.test_images), dtype=np.float64)
    temperature = calibration.temperature_report(validation_logits, validation_labels, test_logits, test_labels)
    test_probabilities = softmax(test_logits, axis=1)
    scaled = calibration.apply_temperature(test_logits, temperature["temperature"])

    correct = robustness.corruption_correctness(logits_fn, dataset.test_images, test_labels, seed=corruption_seed)
    shifts = robustness.shift_sweep(logits_fn, dataset.test_images, test_labels)
    rotations = robustness.rotation_sweep(logits_fn, dataset.test_images, test_labels)

    threshold = ood.choose_threshold(ood.max_softmax(softmax(validation_logits, axis=1)))
    digit_confidence = ood.max_softmax(test_probabilities)
    not_a_digit = {name: ood.not_a_digit_scores(digit_confidence, ood.max_softmax(softmax(logits_fn(images), axis=1)),
                                                threshold)
                   for name, images in (non_digits or {}).items()}
    scores = {
        "calibration": temperature,
        "corruption_accuracy": {name: float(rows.mean()) for name, rows in correct.items()},
        "shift_sweep": {"pixels": list(robustness.SHIFT_PIXELS), "accuracy": shifts.tolist()},
        "rotation_sweep": {"degrees": list(robustness.ROTATION_DEGREES), "accuracy": rotations.tolist()},
        "not_a_digit": not_a_digit,
    }
    reliability = {"before": calibration.reliability_bins(test_probabilities, test_labels),
                   "after": calibration.reliability_bins(scaled, test_labels)}
    return Assessment(scores, correct, test_probabilities.astype(np.float32), shifts, rotations, reliability)
