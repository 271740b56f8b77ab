"""A run's assessment over seeds and models, for metrics.json: calibration, seed ensembles, non-digits, robustness.

Each finished job's record already holds its own scores (`assessment.assess_job`);
they also appear per seed in metrics.json under `models.<name>.seeds`. Here they
are averaged over seeds, the seed ensemble is scored from the stored
log-probabilities, and the robustness results of all models are put side by
side with the corruption table's paired tests (`robustness.compare_corruptions`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mnistlab.evaluation import calibration
from mnistlab.evaluation import robustness
from mnistlab.evaluation.assessment import CORRUPTION_SEED
from mnistlab.runs.arrays import stored_probabilities

SCORES = ("accuracy", "nll", "ece", "brier")  # the keys of `calibration.calibration_scores`


def _mean(values) -> float:
    return float(np.mean(values))


def summarise_calibration(records: Sequence[dict]) -> dict:
    """Mean over seeds of the temperature and of the scores before and after temperature scaling."""
    entries = [record["calibration"] for record in records]
    return {
        "bins": calibration.BINS,
        "temperature_fitted_on": "validation split",
        "temperature": _mean([entry["temperature"] for entry in entries]),
        **{stage: {key: _mean([entry[stage][key] for entry in entries]) for key in SCORES}
           for stage in ("before", "after")},
    }


def summarise_not_a_digit(records: Sequence[dict]) -> dict:
    """Per non-digit set: the mean over seeds of each `ood.not_a_digit_scores` entry."""
    sets = records[0]["not_a_digit"]
    return {name: {key: _mean([record["not_a_digit"][name][key] for record in records]) for key in sets[name]}
            for name in sets}


def summarise_model_assessment(records: Sequence[dict], outputs: Sequence[dict], labels: np.ndarray) -> dict:
    """The assessment entries of one model in metrics.json: "calibration", "ensemble" (2+ seeds), "not_a_digit"."""
    summary = {"calibration": summarise_calibration(records)}
    if len(records) > 1:
        seed_probabilities = np.stack([stored_probabilities(output["log_probabilities"]) for output in outputs])
        summary["ensemble"] = calibration.ensemble_scores(seed_probabilities, labels.astype(np.int64))
    if "not_a_digit" in records[0] and records[0]["not_a_digit"]:
        summary["not_a_digit"] = summarise_not_a_digit(records)
    return summary


def sweep_summary(rows: Sequence[Sequence[float]]) -> dict:
    """Accuracy along a sweep over seeds: "mean" and "std" (the band of the figure) per amount, and "per_seed"."""
    mean, spread = robustness.sweep_band(rows)
    return {"mean": mean.tolist(), "std": spread.tolist(), "per_seed": [list(row) for row in rows]}


def summarise_robustness(model_names: Sequence[str], seeds: Sequence[int], records: dict[str, list[dict]],
                         correct: dict[str, np.ndarray]) -> dict:
    """metrics.json's "robustness": per model the corruption accuracies, the paired tests, and both sweeps.

    `records[model]` are the seeds' `robustness` records and `correct[model]` their per-image
    correctness (S, K, N), in `seeds` order; the K rows follow `records[...]["corruptions"]`.
    """
    names = records[model_names[0]][0]["corruptions"]
    table = {model: {name: np.asarray(correct[model])[:, index] for index, name in enumerate(names)}
             for model in model_names}  # model -> corruption -> (S, N)
    return {
        "corruption_seed": CORRUPTION_SEED,
        "corruptions": names,
        "models": {model: robustness.summarise_corruptions(table[model]) for model in model_names},
        "comparisons": robustness.compare_corruptions(list(model_names), list(seeds), table)
        if len(model_names) > 1 else [],
        "shift_sweep": {"pixels": list(robustness.SHIFT_PIXELS), "directions": list(robustness.SHIFT_DIRECTIONS),
                        "models": {model: sweep_summary([record["shift_accuracy"] for record in records[model]])
                                   for model in model_names}},
        "rotation_sweep": {"degrees": list(robustness.ROTATION_DEGREES),
                           "models": {model: sweep_summary([record["rotation_accuracy"] for record in records[model]])
                                      for model in model_names}},
    }
